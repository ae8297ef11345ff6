"""The migration paths against what teams pick instead (threads), side by side in one run.

Usage::

    python bench/alternatives.py                    # everything, 5 repetitions (~35 min)
    python bench/alternatives.py --quick            # 10 and 100 clients, 1 repetition
    python bench/alternatives.py --markdown --json out.json --plots docs/images
    python bench/alternatives.py --from-json out.json --markdown --plots docs/images
    make bench-alternatives                         # installs the [bench] extra, then runs

Part 1, HTTP: one legacy WSGI application (``bench/alt_app.py``: each request waits on a
backend over a real socket for 20 ms and reads a row from SQLite) served five ways
(``--servers``):

1. ``eventlet-epolls`` -- ``eventlet.wsgi`` on eventlet's epolls hub (today);
2. ``eventlet-bridge`` -- ``eventlet.wsgi`` on ``bridge.hub`` (step one of a migration);
3. ``bridge-aiohttp`` -- ``bridge.wsgi.handler`` inside aiohttp (step two);
4. ``aiohttp-native`` -- the handler rewritten as a native aiohttp handler (the end);
5. ``cheroot-10`` -- cheroot with the 10 threads Ironic runs its API with (cheroot's
   default: ``ironic/common/wsgi_service.py`` sets no size), ``cheroot-100`` (the 100
   requests at once an eventlet-era oslo.service WSGI process served,
   ``wsgi_default_pool_size``) and ``cheroot-1000`` (one thread per client at the top
   concurrency): the threads path. These three listen with a backlog of 1,024 and keep
   every keep-alive connection, as the other ways do; ``cheroot-10-ironic`` is Ironic's
   server exactly, with cheroot's backlog of 5 (1,000 clients connecting at once overflow
   it: SYNs are dropped and retried after 1 s, 3 s, 7 s) and its keep-alive limit of 10
   (it answers all but 10 idle connections with ``Connection: close``).

Not run by default: ``bridge-aiohttp-uvloop`` and ``aiohttp-native-uvloop`` (3 and 4 on
uvloop). Each at ``--clients`` 10, 100 and 1,000 concurrent keep-alive clients
(``bench/alt_load.py``, its own process, a closed loop bounded in time): requests/s,
p50 and p99 latency, errors (a request unanswered after ``--timeout`` 10 s is one),
peak RSS and thread count of the server process, its CPU time per request; ratios
against (1) and (5).

Part 2, conductor: ``--jobs`` N jobs submitted at once, each opening a session to a BMC
and making 5 calls of 20 ms (``bench/alt_conductor.py``): ``green-epolls`` and
``green-bridge`` (a GreenPool of N on either hub), ``asyncio`` (a TaskGroup of N tasks),
``threads-300`` (futurist's ThreadPoolExecutor with 300 workers, Ironic's
``[conductor]workers_pool_size``) and ``threads-N`` (one thread per job).

Method, as ``bench/hub.py``'s: every measurement runs in fresh processes (server or
conductor, and load generator); the backend (``bench/alt_backend.py``) is one process for
the whole run. Configurations are interleaved: for each repetition and each concurrency
every configuration runs once, round-robin, the order rotated by one per repetition, so
drift and noisy neighbours hit all alike. Tables give medians over the repetitions and
the min..max spread of the median's metric; ratios are of medians. Errors are never
hidden: a failed measurement is an error cell with its reason. Needs Linux (/proc) and
the ``[bench]`` extra (cheroot, futurist, matplotlib for ``--plots``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import alt_app
import alt_plot
import alt_report
import alt_run
from reporting import machine_info


@dataclass(frozen=True)
class Server:
    """One way to serve the application (part 1)."""

    name: str
    path: int  # the number: 1..5
    way: str  # alt_server.py's first argument
    hub: str | None = None
    threads: int = 0  # cheroot's pool
    backlog: int = 1024  # cheroot's listen backlog (the other ways always use 1024)
    keepalive_limit: int = 0  # cheroot's keep_alive_conn_limit (0: none, as the others)
    loop: str = "asyncio"
    needs: tuple[str, ...] = ()

    def arguments(self, backend_port: int, db: Path) -> list[str]:
        args = [self.way, "--backend", str(backend_port), "--db", str(db), "--loop", self.loop]
        args += ["--threads", str(self.threads or 10), "--backlog", str(self.backlog)]
        return [*args, "--keepalive-limit", str(self.keepalive_limit)]


@dataclass(frozen=True)
class Conductor:
    """One way to run the conductor's jobs (part 2); pool 0 = one worker per job."""

    name: str
    mode: str  # alt_conductor.py's first argument
    hub: str | None = None
    pool: int = 0
    needs: tuple[str, ...] = ()


_AIOHTTP = ("aiohttp",)
_UVLOOP = ("aiohttp", "uvloop")


def _cheroot(name: str, threads: int, backlog: int = 1024, keepalive_limit: int = 0) -> Server:
    return Server(
        name,
        5,
        "cheroot",
        threads=threads,
        backlog=backlog,
        keepalive_limit=keepalive_limit,
        needs=("cheroot",),
    )


SERVERS: tuple[Server, ...] = (
    Server("eventlet-epolls", 1, "eventlet-wsgi", hub="epolls"),
    Server("eventlet-bridge", 2, "eventlet-wsgi", hub="bridge.hub"),
    Server("bridge-aiohttp", 3, "bridge-aiohttp", hub="bridge.hub", needs=_AIOHTTP),
    Server("aiohttp-native", 4, "aiohttp-native", needs=_AIOHTTP),
    _cheroot("cheroot-10", 10),
    _cheroot("cheroot-100", 100),
    _cheroot("cheroot-1000", 1000),
    # Ironic's server exactly: cheroot's defaults, backlog 5 and keep-alive limit 10 included.
    _cheroot("cheroot-10-ironic", 10, backlog=5, keepalive_limit=10),
    Server("bridge-aiohttp-uvloop", 3, "bridge-aiohttp", hub="bridge.hub", loop="uvloop",
           needs=_UVLOOP),
    Server("aiohttp-native-uvloop", 4, "aiohttp-native", loop="uvloop", needs=_UVLOOP),
)  # fmt: skip
DEFAULT_SERVERS = SERVERS[:8]
CONDUCTORS: tuple[Conductor, ...] = (
    Conductor("green-epolls", "green", hub="epolls"),
    Conductor("green-bridge", "green", hub="bridge.hub"),
    Conductor("asyncio", "asyncio"),
    Conductor("threads-300", "threads", pool=300, needs=("futurist",)),
    Conductor("threads-N", "threads", needs=("futurist",)),
)
# Ratio baselines: eventlet today, and the threads path as Ironic configures it.
HTTP_BASELINES = ("eventlet-epolls", "cheroot-10")
# Whose versions the report gives.
PACKAGES = ("eventlet", "greenlet", "aiohttp", "cheroot", "futurist", "uvloop")
CONDUCTOR_BASELINES = ("green-epolls", "threads-300")


@dataclass
class Cell:
    """Every repetition of one (configuration, size): results and error strings."""

    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


Results = dict[tuple[str, int], Cell]  # (configuration name, clients or jobs)


def missing_modules(needs: Sequence[str]) -> list[str]:
    return [name for name in needs if importlib.util.find_spec(name) is None]


def run_http_part(args: argparse.Namespace, back: alt_run.Backend, db: Path) -> Results:
    servers: list[Server] = args.server_list
    results: Results = {(s.name, c): Cell() for s in servers for c in args.clients}
    timing = {name: getattr(args, name) for name in ("warmup", "duration", "timeout")}
    timing["connect_phase"] = args.connect_phase
    total, done = args.repeat * len(servers) * len(args.clients), 0
    for rep in range(args.repeat):
        order = servers[rep % len(servers) :] + servers[: rep % len(servers)]
        for clients in args.clients:
            for server in order:
                done += 1
                outcome = alt_run.run_http(
                    server.arguments(back.port, db), server.hub, clients, timing, back
                )
                cell = results[(server.name, clients)]
                if isinstance(outcome, str):
                    cell.errors.append(outcome)
                    shown = f"ERROR {outcome}"
                else:
                    cell.samples.append(outcome)
                    shown = alt_report.http_progress(outcome)
                print(
                    f"[{done}/{total}] rep {rep + 1} {clients} clients {server.name}: {shown}",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def run_conductor_part(args: argparse.Namespace, back: alt_run.Backend) -> Results:
    conductors: list[Conductor] = args.conductor_list
    results: Results = {(c.name, n): Cell() for c in conductors for n in args.jobs}
    total, done = args.repeat * len(conductors) * len(args.jobs), 0
    for rep in range(args.repeat):
        order = conductors[rep % len(conductors) :] + conductors[: rep % len(conductors)]
        for jobs in args.jobs:
            for conductor in order:
                done += 1
                arguments = [conductor.mode, "--jobs", str(jobs), "--calls", str(args.calls)]
                arguments += ["--pool", str(conductor.pool), "--backend", str(back.port)]
                outcome = alt_run.run_conductor(arguments, conductor.hub, args.conductor_timeout)
                cell = results[(conductor.name, jobs)]
                if isinstance(outcome, str):
                    cell.errors.append(outcome)
                    shown = f"ERROR {outcome}"
                else:
                    cell.samples.append(outcome)
                    shown = alt_report.conductor_progress(outcome)
                print(
                    f"[{done}/{total}] rep {rep + 1} {jobs} jobs {conductor.name}: {shown}",
                    file=sys.stderr,
                    flush=True,
                )
    return results


def _sizes(text: str, what: str, parser: argparse.ArgumentParser) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--{what} takes comma-separated whole numbers, not {text!r}")
    if not sizes or min(sizes) < 1:
        parser.error(f"--{what} needs at least one number, each at least 1 (got {text!r})")
    return sizes


def _pick(
    option: str | None,
    known: Sequence[Any],
    default: Sequence[Any],
    what: str,
    parser: argparse.ArgumentParser,
) -> list[Any]:
    if option is None:
        return list(default)
    if option.strip() in ("", "none"):
        return []
    by_name = {item.name: item for item in known}
    names = [name.strip() for name in option.split(",") if name.strip()]
    unknown = [name for name in names if name not in by_name]
    if unknown:
        parser.error(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(by_name)})")
    return [by_name[name] for name in names]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Migration paths against threads, side by side (see the module docstring)."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="10 and 100 clients, 100 and 1000 jobs, short windows, 1 rep",
    )
    parser.add_argument("--repeat", type=int, help="repetitions (default 5, quick 1)")
    parser.add_argument(
        "--servers", help="comma-separated, or 'none': " + ",".join(s.name for s in SERVERS)
    )
    parser.add_argument(
        "--conductors", help="comma-separated, or 'none': " + ",".join(c.name for c in CONDUCTORS)
    )
    parser.add_argument("--clients", help="concurrent clients (default 10,100,1000)")
    parser.add_argument("--jobs", help="conductor jobs (default 100,1000,3000)")
    parser.add_argument("--calls", type=int, default=5, help="backend calls per job")
    parser.add_argument("--warmup", type=float, help="s of load before the window (default 3)")
    parser.add_argument("--duration", type=float, help="measured window, s (default 10)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, s")
    parser.add_argument(
        "--connect-phase",
        type=float,
        default=30.0,
        help="at most this many s to connect all clients",
    )
    parser.add_argument(
        "--conductor-timeout", type=float, default=120.0, help="per conductor run, s"
    )
    parser.add_argument("--delay", type=float, default=0.02, help="backend delay, s")
    parser.add_argument("--markdown", action="store_true", help="tables as markdown")
    parser.add_argument("--json", metavar="PATH", help="write every sample as JSON")
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        help="no measuring: tables (and plots) from an earlier --json",
    )
    parser.add_argument("--plots", metavar="DIR", help="draw PNGs into DIR (matplotlib)")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 3.0
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    if args.warmup < 0 or args.duration <= 0 or args.timeout <= 0 or args.delay < 0:
        parser.error("--warmup and --delay must not be negative; --duration, --timeout > 0")
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    args.clients = _sizes(
        args.clients or ("10,100" if args.quick else "10,100,1000"), "clients", parser
    )
    args.jobs = _sizes(args.jobs or ("100,1000" if args.quick else "100,1000,3000"), "jobs", parser)
    args.server_list = _pick(args.servers, SERVERS, DEFAULT_SERVERS, "server", parser)
    args.conductor_list = _pick(args.conductors, CONDUCTORS, CONDUCTORS, "conductor", parser)
    if args.plots and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plots needs matplotlib: pip install -e '.[bench]'")
    if args.from_json:
        return args
    if not Path("/proc/self/status").exists():
        parser.error("this benchmark reads /proc: it runs on Linux only")
    for item in [*args.server_list, *args.conductor_list]:
        if missing := missing_modules(item.needs):
            parser.error(
                f"{item.name} needs {', '.join(missing)}, not installed here: install the"
                f" bench extra (pip install -e '.[bench]', or make bench-alternatives), or"
                f" leave {item.name} out with --servers/--conductors"
            )
    return args


def to_json(
    args: argparse.Namespace,
    info: dict[str, Any],
    http: Results,
    conductor: Results,
    elapsed: float,
) -> dict[str, Any]:
    def cells(results: Results, key: str) -> list[dict[str, Any]]:
        return [
            {"config": name, key: size, "samples": cell.samples, "errors": cell.errors}
            for (name, size), cell in results.items()
        ]

    return {
        "machine": info,
        "settings": {name: getattr(args, name) for name in alt_report.SETTINGS},
        "elapsed_seconds": elapsed,
        "servers": [asdict(s) for s in args.server_list],
        "conductors": [asdict(c) for c in args.conductor_list],
        "http": cells(http, "clients"),
        "conductor": cells(conductor, "jobs"),
    }


def from_json(path: str) -> tuple[dict[str, Any], Results, Results, list[Server], list[Conductor]]:
    data = json.loads(Path(path).read_text())

    def cells(entries: list[dict[str, Any]], key: str) -> Results:
        return {(e["config"], e[key]): Cell(e["samples"], e["errors"]) for e in entries}

    servers = [Server(**{**s, "needs": tuple(s["needs"])}) for s in data["servers"]]
    conductors = [Conductor(**{**c, "needs": tuple(c["needs"])}) for c in data["conductors"]]
    return (
        data,
        cells(data["http"], "clients"),
        cells(data["conductor"], "jobs"),
        servers,
        conductors,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        data, http, conductor, servers, conductors = from_json(args.from_json)
        info, settings, elapsed = data["machine"], data["settings"], data["elapsed_seconds"]
    else:
        info = machine_info(PACKAGES)
        settings = {name: getattr(args, name) for name in alt_report.SETTINGS}
        servers, conductors = args.server_list, args.conductor_list
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="bench-alternatives-") as tmp:
            db = Path(tmp) / "nodes.db"
            alt_app.make_database(db)
            with alt_run.backend(args.delay) as back:
                http = run_http_part(args, back, db) if servers else {}
                conductor = run_conductor_part(args, back) if conductors else {}
        elapsed = time.monotonic() - started
        if args.json:
            document = to_json(args, info, http, conductor, elapsed)
            Path(args.json).write_text(json.dumps(document, indent=1) + "\n")
    report = alt_report.Report(info, settings, elapsed, args.markdown)
    print(report.header(http, conductor))
    if http:
        print(report.http_tables(http, servers, HTTP_BASELINES))
        print(report.http_goal(http, servers))
    if conductor:
        print(report.conductor_table(conductor, conductors, CONDUCTOR_BASELINES))
    if args.plots:
        for path in alt_plot.plot(http, servers, conductor, conductors, Path(args.plots)):
            print(f"plot written: {path}")
    if args.json and not args.from_json:
        print(f"raw samples written to {args.json}")
    failed = sum(len(cell.errors) for cell in [*http.values(), *conductor.values()])
    return 1 if failed and not any(c.samples for c in [*http.values(), *conductor.values()]) else 0


if __name__ == "__main__":
    sys.exit(main())
