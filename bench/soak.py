"""Soak: the mixed-world churn for minutes, sampling what must not grow.

Usage::

    python bench/soak.py --minutes 5                     # guest mode, stdlib loop
    python bench/soak.py --minutes 30 --mode owner --loop uvloop --interval 30
    python bench/soak.py --service --minutes 5           # the example service's cluster

``--service`` hands the rest of the command line to ``bench/soak_service.py``
(mixed load on the example service's processes; its ``--help`` says more).

Runs ``stress/churn.py``'s operations (green and asyncio clients and servers,
HTTP and raw TCP, TLS, subprocess pipes, timeouts and cancellations, every
close path; see its docstring) in this process, in intervals. Each interval
starts the servers, runs operations until its time is up, stops the servers
and lets every handler finish, then samples the process *at rest*: open fds,
RSS, greenthreads alive (a gc scan for GreenThread objects not dead, without
the parked carriers of ``bridge.to_async``, shown apart), tasks alive
(``asyncio.all_tasks``), and the churn's full leak check against the state
after warm-up. Sampling at rest makes fds, greenthreads and tasks exact:
any growth is a leak, not an operation in flight.

The verdict compares the last third of the intervals after warm-up with the
first third: fds, greenthreads and tasks must not grow at all, RSS not by
more than ``--rss-slack`` (a percentage; the allocator keeps some memory).
The exit status is 0 only if nothing grew, no operation failed, and nothing
reached the loop's or the hub's error handlers.

The churn module lives in ``stress/`` (neither ``tests/`` nor ``bench/``):
the test runs it by path, this script puts that directory on ``sys.path``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "stress"))

import churn  # noqa: E402

MAX_MINUTES = 24 * 60


@dataclass
class Sample:
    """The process at rest after one interval."""

    seconds: float
    ops: int  # cumulative
    errors: int  # cumulative: failed operations, incidents, leak findings
    fds: int
    rss: int
    greenthreads: int
    parked: int
    tasks: int


def _parked_carriers(c: churn.Churn) -> int:
    import bridge._core

    return len(bridge._core.slots_of(c.hub).carriers)


def soak(args: argparse.Namespace, tls_dir: str) -> int:
    """The green main of a soak; returns the exit status."""
    c = churn.Churn(
        seed=args.seed,
        mode=args.mode,
        loop_kind=args.loop,
        tls_dir=tls_dir,
        concurrency=args.concurrency,
    )
    c.install_observers()
    churn.warm_up(c)
    base = c.snapshot()
    ops = churn.generate(args.seed)
    started = time.monotonic()
    end = started + args.minutes * 60
    samples: list[Sample] = []
    leaks: list[str] = []
    seen: set[str] = set()
    print(
        f"soak: mode={args.mode} loop={churn.loop_kind_of(c.loop)} seed={args.seed} "
        f"concurrency={args.concurrency} {args.minutes} min in {args.interval:g}s intervals; "
        f"at rest after warm-up: {len(base.fds)} fds, {base.rss / 2**20:.1f} MiB RSS",
        flush=True,
    )
    print(
        f"{'t(s)':>7} {'ops':>8} {'ops/s':>7} {'errors':>6} {'fds':>5} {'RSS MiB':>8} "
        f"{'gthreads':>8} {'parked':>6} {'tasks':>5}",
        flush=True,
    )
    done_before = 0
    while time.monotonic() < end:
        interval_start = time.monotonic()
        c.start_servers()
        c.run_ops(ops, until=min(end, interval_start + args.interval))
        c.stop_servers()
        now = c.snapshot()
        for line in c.leaks(base, now):
            if line not in seen:  # a leak that stays is reported once
                seen.add(line)
                leaks.append(f"after {time.monotonic() - started:.0f}s: {line}")
        sample = Sample(
            seconds=time.monotonic() - started,
            ops=c.ops_done,
            errors=len(c.failures) + c.incident_count + len(leaks),
            fds=len(now.fds),
            rss=now.rss,
            greenthreads=len(now.greenthread_ids),
            parked=_parked_carriers(c),
            tasks=len(now.task_ids),
        )
        samples.append(sample)
        rate = (sample.ops - done_before) / max(1e-9, time.monotonic() - interval_start)
        done_before = sample.ops
        print(
            f"{sample.seconds:7.0f} {sample.ops:8d} {rate:7.0f} {sample.errors:6d} "
            f"{sample.fds:5d} {sample.rss / 2**20:8.1f} {sample.greenthreads:8d} "
            f"{sample.parked:6d} {sample.tasks:5d}",
            flush=True,
        )
        if len(c.failures) >= churn.MAX_FAILURES:
            print(f"stopping early: {len(c.failures)} operations failed", flush=True)
            break
    c.close()
    return report(args, c, samples, leaks)


def grew(samples: list[Sample], warmup: int, rss_slack: float) -> list[str]:
    """What grew from the first third to the last third of the samples after warm-up."""
    steady = samples[warmup:]
    if len(steady) < 3:
        return []  # too short to tell; the verdict says so
    third = max(1, len(steady) // 3)
    first, last = steady[:third], steady[-third:]
    found = []
    for name in ("fds", "greenthreads", "tasks"):
        before = max(getattr(s, name) for s in first)
        after = max(getattr(s, name) for s in last)
        if after > before:
            found.append(f"{name}: {before} -> {after}")
    before_rss = statistics.median(s.rss for s in first)
    after_rss = statistics.median(s.rss for s in last)
    if after_rss > before_rss * (1 + rss_slack / 100):
        found.append(
            f"RSS: {before_rss / 2**20:.1f} -> {after_rss / 2**20:.1f} MiB "
            f"(more than {rss_slack:g}%)"
        )
    return found


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith(("File ", "^", "operations in"))]
    return errors[-1] if errors else (lines[-1] if lines else "")


def report(
    args: argparse.Namespace, c: churn.Churn, samples: list[Sample], leaks: list[str]
) -> int:
    problems = grew(samples, args.warmup, args.rss_slack)
    steady = len(samples) - args.warmup
    lines = []
    for f in c.failures[: None if args.verbose else 10]:
        detail = churn._indent(f.detail) if args.verbose else "    " + _last_line(f.detail)
        lines.append(f"FAILED {f.op.describe()} [{f.error}]\n{detail}")
    for text in c.incidents[: None if args.verbose else 10]:
        where = text.split(":", 1)[0]
        lines.append(f"INCIDENT {text if args.verbose else where + ': ' + _last_line(text)}")
    lines.extend(f"LEAK {text}" for text in leaks[:20])
    lines.extend(f"GREW {text}" for text in problems)
    ok = not (c.failures or c.incident_count or leaks or problems)
    if steady < 3:
        lines.append(
            f"too short to judge growth: {steady} intervals after {args.warmup} of warm-up "
            "(need 3); run longer or with a shorter --interval"
        )
    total = samples[-1].ops if samples else 0
    verdict = "PASS" if ok else "FAIL"
    lines.append(
        f"{verdict}: {total} operations, {len(c.failures)} failed, {c.incident_count} "
        f"incidents, {len(leaks)} leak findings; "
        + ("nothing grew" if not problems else "grew: " + "; ".join(problems))
    )
    print("\n".join(lines), flush=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--service" in argv:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import soak_service

        return int(soak_service.main([arg for arg in argv if arg != "--service"]))
    parser = argparse.ArgumentParser(
        description="The mixed-world churn for minutes: ops, errors, fds, RSS, greenthreads "
        "and tasks over time; fails if anything grew or failed."
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="how long (default 5)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds per sample")
    parser.add_argument("--warmup", type=int, default=2, help="intervals not judged")
    parser.add_argument("--mode", choices=("owner", "guest"), default="guest")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rss-slack", type=float, default=5.0, help="RSS growth allowed, %%")
    parser.add_argument("--verbose", action="store_true", help="full tracebacks in the report")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be more than 0 and at most {MAX_MINUTES} (a day)")
    if args.interval <= 0 or args.interval > args.minutes * 60:
        parser.error("--interval must be more than 0 seconds and at most the whole run")
    if args.warmup < 0 or args.concurrency < 1 or args.rss_slack < 0:
        parser.error("--warmup and --rss-slack must be >= 0, --concurrency >= 1")
    with tempfile.TemporaryDirectory() as tls_dir:
        status: Any = churn.run_in_mode(args.mode, args.loop, lambda: soak(args, tls_dir))
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
