"""Benchmark eventlet hubs side by side: epolls, eventlet's asyncio hub, and bridge.hub.

Usage::

    python bench/hub.py                      # full run: every workload, every config, 5 reps
    python bench/hub.py --quick              # smoke test: counts / 10, 1 repetition
    python bench/hub.py --only tcp_echo,wsgi --configs epolls,asyncio,bridge --repeat 9
    python bench/hub.py --markdown           # tables as markdown, for docs/performance.md
    python bench/hub.py --json results.json  # every raw sample, plus machine info

Configurations (``--configs``, comma separated; default all):

* ``epolls`` -- ``EVENTLET_HUB=epolls``, eventlet's default hub on Linux (owner mode).
* ``asyncio`` -- ``EVENTLET_HUB=asyncio``, eventlet's own asyncio hub (owner mode).
* ``bridge`` -- ``EVENTLET_HUB=bridge.hub``, green main program; the hub creates and runs its
  own asyncio loop.
* ``bridge-guest`` -- ``EVENTLET_HUB=bridge.hub`` inside ``asyncio.run(main())``, where ``main``
  does ``gt = eventlet.spawn(workload); await gt``: the hub joins the running loop.
* ``bridge-uvloop`` -- as ``bridge``, after ``uvloop.install()``.
* ``bridge-uvloop-guest`` -- as ``bridge-guest``, under ``uvloop.run(main())``.

Workloads (``--only``, comma separated; default all). Full counts, ``--quick`` divides by 10:

* ``sleep0`` -- 100k ``eventlet.sleep(0)`` from one greenthread: the cost of one trip through
  the hub. Reported as sleeps/s.
* ``spawn`` -- 20k sequential ``eventlet.spawn(f).wait()`` with a trivial ``f``: greenthread
  creation, first switch, exit and wake-up of the waiter.
* ``queue`` -- 50k ping-pong round trips between two greenthreads over two
  ``eventlet.queue.Queue`` s: pure green switching through the hub, no I/O.
* ``tcp_echo`` -- 20k round trips of 64 bytes over one loopback TCP connection between a
  green client and a green echo server in the same process: readiness notification
  (epoll / ``add_reader``) latency.
* ``timers`` -- 10k hub timers (``schedule_call_global``) with seeded random delays in
  [0, 50 ms], half of them cancelled right after scheduling; the time until every
  non-cancelled timer fired. timers/s is bounded by the 50 ms window (<= ~200k/s at 10k
  timers), so the notes column also gives the time spent scheduling and cancelling (the
  burst, during which the hub cannot run), and how late timers fired after their deadline
  or after the burst, whichever is later (median and p99).
* ``wsgi`` -- ``eventlet.wsgi`` serving a tiny app in-process, loaded by 20 concurrent green
  HTTP/1.1 keep-alive clients x 250 requests each over raw green sockets: requests/s.
* ``scale`` -- 10k, 50k and 100k greenthreads, each sleeping a seeded random delay in
  [0, 1 s]; wall time until all are done, and peak RSS growth per greenthread. In the guest
  configs, N/10 asyncio tasks (10k at 100k) additionally ``await`` one greenthread each; they
  count in the time and the memory. Printed as a separate sub-table: "overhead" is the wall
  time beyond the longest sleep, and "x linear" divides overhead per greenthread by that at
  the smallest N (1.0 = linear; clearly above 1 = time grows faster than linearly).

Method. Each (config, workload, count, repetition) runs in its own fresh subprocess
(``bench/workloads.py``), so no hub, loop, cache or allocator state leaks between runs; the
child times only the workload itself with ``time.perf_counter`` (imports, hub creation and
setup such as binding sockets are excluded) and reports JSON on stdout. Runs are
interleaved: for each repetition and each workload, every config runs once, round-robin,
and the config order is rotated by one for each repetition, so slow drift and noisy
neighbours on a shared machine hit all configs alike. Tables give the median over the
repetitions, the min..max spread relative to the median, and ratios of medians to
``epolls`` and to eventlet's ``asyncio`` hub (above 1 = faster). A child that exits
non-zero, prints no result or exceeds ``--timeout`` becomes an error cell; so does a uvloop
config whose hub did not run on a uvloop loop, and a guest config whose hub was not on the
running loop. After a timeout, that (config, workload) is skipped in later repetitions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# bench/reporting.py: this script's folder is on sys.path
from reporting import machine_info, ratio, render, spread

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CHILD = BENCH_DIR / "workloads.py"
RESULT_MARKER = "BENCH_RESULT "  # must match bench/workloads.py
BASELINES = ("epolls", "asyncio")


@dataclass(frozen=True)
class Config:
    name: str
    hub: str  # value of EVENTLET_HUB
    mode: str = "owner"  # "owner": green main program; "guest": inside asyncio.run()
    loop: str = "asyncio"  # "asyncio" or "uvloop"


CONFIGS: tuple[Config, ...] = (
    Config("epolls", "epolls"),
    Config("asyncio", "asyncio"),
    Config("bridge", "bridge.hub"),
    Config("bridge-guest", "bridge.hub", mode="guest"),
    Config("bridge-uvloop", "bridge.hub", loop="uvloop"),
    Config("bridge-uvloop-guest", "bridge.hub", mode="guest", loop="uvloop"),
)


@dataclass(frozen=True)
class Workload:
    name: str
    counts: tuple[int, ...]
    quick_counts: tuple[int, ...]
    unit: str


WORKLOADS: tuple[Workload, ...] = (
    Workload("sleep0", (100_000,), (10_000,), "sleeps"),
    Workload("spawn", (20_000,), (2_000,), "spawn+wait"),
    Workload("queue", (50_000,), (5_000,), "round trips"),
    Workload("tcp_echo", (20_000,), (2_000,), "round trips"),
    Workload("timers", (10_000,), (1_000,), "timers"),
    Workload("wsgi", (5_000,), (1_000,), "requests"),
    Workload("scale", (10_000, 50_000, 100_000), (1_000, 5_000, 10_000), "greenthreads"),
)
SCALE = "scale"


@dataclass(frozen=True)
class Job:
    workload: str
    count: int


@dataclass
class Cell:
    """All repetitions of one (job, config)."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def median(self, key: str) -> float | None:
        values = [float(s[key]) for s in self.samples if key in s]
        return statistics.median(values) if values else None

    def rates(self) -> list[float]:
        return [s["ops"] / s["seconds"] for s in self.samples if s["seconds"] > 0]

    def median_rate(self) -> float | None:
        rates = self.rates()
        return statistics.median(rates) if rates else None

    def error_summary(self) -> str:
        if not self.errors:
            return ""
        total = len(self.errors) + len(self.samples)
        return f"{len(self.errors)}/{total} failed: {self.errors[0]}"


Results = dict[tuple[Job, str], Cell]


# --------------------------------------------------------------------------- running


def child_env(config: Config) -> dict[str, str]:
    env = dict(os.environ)
    env["EVENTLET_HUB"] = config.hub
    # bridge.hub must be importable from the checkout even without an editable install.
    paths = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONHASHSEED"] = "0"
    return env


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "no output"


def run_child(config: Config, job: Job, timeout: float) -> dict[str, Any] | str:
    """Run one job in a fresh process; return its result dict or an error message."""
    command = [
        sys.executable,
        str(CHILD),
        job.workload,
        str(job.count),
        "--mode",
        config.mode,
        "--loop",
        config.loop,
    ]
    try:
        proc = subprocess.run(
            command,
            env=child_env(config),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        where = " at exit, after its result" if RESULT_MARKER in _text(exc.stdout) else ""
        return f"timeout after {timeout:g}s{where}"
    result = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
            break
    if proc.returncode != 0:
        return f"exit {proc.returncode}: {_last_line(proc.stderr)}"
    if result is None:
        return f"no result: {_last_line(proc.stderr + proc.stdout)}"
    if config.loop == "uvloop" and "uvloop" not in result.get("loop_class", ""):
        return f"not on uvloop: hub loop was {result.get('loop_class')}"
    if result.get("hub_on_running_loop") is False:
        return f"hub did not join the running loop (hub loop: {result.get('loop_class')})"
    return result


def plan_jobs(workloads: Iterable[Workload], quick: bool) -> list[Job]:
    return [
        Job(w.name, count) for w in workloads for count in (w.quick_counts if quick else w.counts)
    ]


def run_all(jobs: list[Job], configs: list[Config], repeat: int, timeout: float) -> Results:
    results: Results = {(job, c.name): Cell() for job in jobs for c in configs}
    total = repeat * len(jobs) * len(configs)
    done = 0
    timed_out: set[tuple[Job, str]] = set()
    for rep in range(repeat):
        shift = rep % len(configs)
        order = configs[shift:] + configs[:shift]
        for job in jobs:
            for config in order:
                cell = results[(job, config.name)]
                done += 1
                if (job, config.name) in timed_out:
                    # A hang is usually deterministic; don't spend the timeout again.
                    outcome: dict[str, Any] | str = "skipped after an earlier timeout"
                else:
                    outcome = run_child(config, job, timeout)
                    if isinstance(outcome, str) and outcome.startswith("timeout"):
                        timed_out.add((job, config.name))
                if isinstance(outcome, str):
                    cell.errors.append(outcome)
                    shown = f"ERROR {outcome}"
                else:
                    cell.samples.append(outcome)
                    shown = f"{outcome['ops'] / outcome['seconds']:,.0f}/s"
                    shown += f" ({outcome['seconds']:.3f}s)"
                progress = f"[{done}/{total}] rep {rep + 1}/{repeat}"
                print(
                    f"{progress} {job.workload}({job.count}) {config.name}: {shown}",
                    file=sys.stderr,
                )
    return results


# --------------------------------------------------------------------------- reporting


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def throughput_table(
    results: Results, jobs: list[Job], configs: list[Config], markdown: bool
) -> str:
    headers = ["workload", "config", "ops/s (median)", "vs epolls", "vs asyncio", "spread", "notes"]
    units = {w.name: w.unit for w in WORKLOADS}
    rows = []
    for job in jobs:
        if job.workload == SCALE:
            continue
        base = {
            name: results[(job, name)].median_rate() for name in BASELINES if (job, name) in results
        }
        for config in configs:
            cell = results[(job, config.name)]
            rate = cell.median_rate()
            notes = []
            burst = cell.median("burst_seconds")
            late50, late99 = cell.median("late_p50_ms"), cell.median("late_p99_ms")
            if burst is not None and late50 is not None and late99 is not None:
                late = f"late p50 {late50:.2f} ms, p99 {late99:.2f} ms"
                notes.append(f"scheduling {burst * 1e3:.0f} ms; {late}")
            if cell.errors:
                notes.append(cell.error_summary())
            rows.append(
                [
                    f"{job.workload} ({job.count:,} {units[job.workload]})",
                    config.name,
                    "error" if rate is None else _rate(rate),
                    ratio(rate, base.get("epolls")),
                    ratio(rate, base.get("asyncio")),
                    spread(cell.rates()),
                    "; ".join(notes),
                ]
            )
    return render(headers, rows, markdown)


def scale_table(results: Results, jobs: list[Job], configs: list[Config], markdown: bool) -> str:
    scale_jobs = [job for job in jobs if job.workload == SCALE]
    headers = [
        "config",
        "greenthreads",
        "wall s (median)",
        "overhead s",
        "overhead us/gt",
        "x linear",
        "spawn us/gt",
        "bytes/gt",
        "wall vs epolls",
        "wall vs asyncio",
        "notes",
    ]
    rows = []
    for config in configs:
        first_per_gt: float | None = None
        for job in scale_jobs:
            cell = results[(job, config.name)]
            wall = cell.median("seconds")
            overhead = cell.median("overhead_seconds")
            per_gt = None if overhead is None else overhead / job.count * 1e6
            if first_per_gt is None:
                first_per_gt = per_gt
            spawn = cell.median("spawn_seconds")
            rss = cell.median("bytes_per_greenthread")
            notes = []
            awaiters = cell.median("asyncio_awaiters")
            if awaiters:
                notes.append(f"+{awaiters:,.0f} asyncio tasks awaiting greenthreads")
            if cell.errors:
                notes.append(cell.error_summary())
            walls = {
                name: results[(job, name)].median("seconds")
                for name in BASELINES
                if (job, name) in results
            }
            rows.append(
                [
                    config.name,
                    f"{job.count:,}",
                    "error" if wall is None else f"{wall:.3f}",
                    "-" if overhead is None else f"{overhead:.3f}",
                    "-" if per_gt is None else f"{per_gt:.1f}",
                    "-" if per_gt is None or not first_per_gt else f"{per_gt / first_per_gt:.2f}",
                    "-" if spawn is None else f"{spawn / job.count * 1e6:.1f}",
                    "-" if rss is None else f"{rss:,.0f}",
                    # time ratios: above 1 = slower than the baseline
                    ratio(wall, walls.get("epolls")),
                    ratio(wall, walls.get("asyncio")),
                    "; ".join(notes),
                ]
            )
    return render(headers, rows, markdown, left=1)


def header_text(info: dict[str, Any], args: argparse.Namespace, markdown: bool) -> str:
    loadavg = info["loadavg"]
    items = [
        f"machine: {info['nproc']} CPUs ({info['usable_cpus']} usable), {info['cpu']}",
        f"platform: {info['platform']}",
        f"python {info['python']}, "
        + ", ".join(f"{name} {version}" for name, version in info["packages"].items()),
        f"repetitions: {args.repeat}{' (quick counts)' if args.quick else ''},"
        f" per-child timeout {args.timeout:g}s,"
        f" load average at start {', '.join(f'{x:.2f}' for x in loadavg) if loadavg else '?'}",
    ]
    if markdown:
        return "\n".join(f"- {item}" for item in items)
    return "\n".join(items)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark eventlet hubs side by side (see the module docstring).",
    )
    parser.add_argument("--repeat", type=int, help="repetitions per config (default 5, quick 1)")
    parser.add_argument("--quick", action="store_true", help="counts / 10, 1 repetition")
    parser.add_argument(
        "--only", help="comma-separated workloads: " + ",".join(w.name for w in WORKLOADS)
    )
    parser.add_argument(
        "--configs", help="comma-separated configs: " + ",".join(c.name for c in CONFIGS)
    )
    parser.add_argument("--json", metavar="PATH", help="write all samples and medians as JSON")
    parser.add_argument("--markdown", action="store_true", help="print tables as markdown")
    parser.add_argument(
        "--timeout", type=float, help="per-child timeout, s (default 120, quick 60)"
    )
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.timeout is None:
        args.timeout = 60.0 if args.quick else 120.0

    def pick(option: str | None, known: Sequence[Any], what: str) -> list[Any]:
        if not option:
            return list(known)
        by_name = {item.name: item for item in known}
        names = [name.strip() for name in option.split(",") if name.strip()]
        unknown = [name for name in names if name not in by_name]
        if unknown:
            parser.error(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(by_name)})")
        return [by_name[name] for name in names]

    args.workloads = pick(args.only, WORKLOADS, "workload")
    args.config_list = pick(args.configs, CONFIGS, "config")
    return args


def to_json(
    results: Results, info: dict[str, Any], args: argparse.Namespace, elapsed: float
) -> dict[str, Any]:
    return {
        "machine": info,
        "repeat": args.repeat,
        "quick": args.quick,
        "elapsed_seconds": elapsed,
        "configs": [asdict(c) for c in args.config_list],
        "results": [
            {
                "workload": job.workload,
                "count": job.count,
                "config": name,
                "median_ops_per_second": cell.median_rate(),
                "median_seconds": cell.median("seconds"),
                "samples": cell.samples,
                "errors": cell.errors,
            }
            for (job, name), cell in results.items()
        ],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine_info(("eventlet", "greenlet", "uvloop"))
    heading = "# " if args.markdown else ""
    print(f"{heading}eventlet hub benchmark")
    print(header_text(info, args, args.markdown))
    print(flush=True)

    jobs = plan_jobs(args.workloads, args.quick)
    started = time.monotonic()
    results = run_all(jobs, args.config_list, args.repeat, args.timeout)
    elapsed = time.monotonic() - started

    if any(job.workload != SCALE for job in jobs):
        title = f"Throughput (median of {args.repeat}; ratios above 1x = faster)"
        print(f"{'## ' if args.markdown else ''}{title}")
        print()
        print(throughput_table(results, jobs, args.config_list, args.markdown))
        print()
    if any(job.workload == SCALE for job in jobs):
        print(
            f"{'## ' if args.markdown else ''}Scaling: N greenthreads sleeping [0, 1 s]"
            " (median; wall ratios above 1x = slower)"
        )
        print()
        print(scale_table(results, jobs, args.config_list, args.markdown))
        print()
    children = len(jobs) * len(args.config_list) * args.repeat
    print(f"{children} child runs in {elapsed:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results, info, args, elapsed), indent=2))
        print(f"raw samples written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
