"""The conductor-style workload of ``bench/alternatives.py``: N jobs, each a few slow calls.

Usage (normally only ``bench/alternatives.py`` starts it)::

    EVENTLET_HUB=epolls python bench/alt_conductor.py green --jobs 1000 --backend PORT
    python bench/alt_conductor.py threads --jobs 1000 --pool 300 --backend PORT

Each job is what an Ironic conductor worker does for one node: open a session to the
node's BMC (a TCP connection to ``bench/alt_backend.py``), make ``--calls`` calls one
after the other (each answered after the backend's delay, 20 ms), close the session. All
``--jobs`` jobs are submitted at once; at most ``--pool`` run at the same time.

Modes (the first argument):

* ``green`` -- ``eventlet.monkey_patch()``; an ``eventlet.GreenPool(pool)``, one
  ``spawn_n`` per job, ``waitall()``. The hub is whatever ``EVENTLET_HUB`` names.
* ``asyncio`` -- ``asyncio.run()``; one task per job in an ``asyncio.TaskGroup``
  (``gather`` before Python 3.11), a semaphore when ``--pool`` is below ``--jobs``.
* ``threads`` -- ``futurist.ThreadPoolExecutor(max_workers=pool)``, one ``submit`` per
  job, ``futurist.waiters.wait_for_all``. No eventlet patching.

``--pool 0`` means as many as there are jobs. The last line on stdout is
``CONDUCTOR_RESULT <json>``: wall time from the first submit until the last job ended,
jobs/s, job latency percentiles (submit to end), RSS before the jobs and the peak
(``VmHWM``), and the thread count at the end, before the pool is shut down (futurist's
threads only go at shutdown, so that is the peak).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

MODES = ("green", "asyncio", "threads")


def proc_status() -> dict[str, int]:
    """``VmRSS``, ``VmHWM`` (bytes) and ``Threads`` of this process, from /proc (Linux)."""
    values: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
            elif name == "Threads":
                values[name] = int(rest)
    return values


class Tally:
    """Job latencies and failures, filled from jobs in any world (appends are atomic)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def job_done(self, submitted: float) -> None:
        self.latencies.append(time.perf_counter() - submitted)

    def job_failed(self, exc: BaseException) -> None:
        self.failures.append(f"{type(exc).__name__}: {exc}")


def blocking_job(address: tuple[str, int], index: int, calls: int) -> None:
    import alt_app

    session = alt_app.BackendSession(address)
    try:
        for _ in range(calls):
            session.call(f"node-{index}")
    finally:
        session.close()


def run_green(args: argparse.Namespace, tally: Tally) -> Callable[[], None]:
    import eventlet

    eventlet.monkey_patch()
    pool = eventlet.GreenPool(args.pool)

    def job(index: int, submitted: float) -> None:
        try:
            blocking_job(args.backend, index, args.calls)
        except Exception as exc:
            tally.job_failed(exc)
        else:
            tally.job_done(submitted)

    args.before = proc_status()
    args.started = time.perf_counter()
    for index in range(args.jobs):
        pool.spawn_n(job, index, time.perf_counter())
    pool.waitall()
    args.ended = time.perf_counter()
    return lambda: None


def run_asyncio(args: argparse.Namespace, tally: Tally) -> Callable[[], None]:
    import asyncio

    import alt_app

    async def job(index: int, submitted: float, gate: asyncio.Semaphore | None) -> None:
        try:
            if gate is not None:
                await gate.acquire()
            try:
                session = await alt_app.AsyncBackendSession.open(args.backend)
                try:
                    for _ in range(args.calls):
                        await session.call(f"node-{index}")
                finally:
                    session.close()
            finally:
                if gate is not None:
                    gate.release()
        except Exception as exc:
            tally.job_failed(exc)
        else:
            tally.job_done(submitted)

    async def main() -> None:
        gate = asyncio.Semaphore(args.pool) if args.pool < args.jobs else None
        args.before = proc_status()
        args.started = time.perf_counter()
        if sys.version_info >= (3, 11):
            async with asyncio.TaskGroup() as group:
                for index in range(args.jobs):
                    group.create_task(job(index, time.perf_counter(), gate))
        else:
            await asyncio.gather(*(job(i, time.perf_counter(), gate) for i in range(args.jobs)))
        args.ended = time.perf_counter()

    asyncio.run(main())
    return lambda: None


def run_threads(args: argparse.Namespace, tally: Tally) -> Callable[[], None]:
    import futurist
    import futurist.waiters

    executor = futurist.ThreadPoolExecutor(max_workers=args.pool)

    def job(index: int, submitted: float) -> None:
        try:
            blocking_job(args.backend, index, args.calls)
        except Exception as exc:
            tally.job_failed(exc)
        else:
            tally.job_done(submitted)

    args.before = proc_status()
    args.started = time.perf_counter()
    futures = [executor.submit(job, i, time.perf_counter()) for i in range(args.jobs)]
    futurist.waiters.wait_for_all(futures)
    args.ended = time.perf_counter()
    return executor.shutdown


def _percentile_ms(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index] * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=5, help="backend calls per job")
    parser.add_argument("--pool", type=int, default=0, help="jobs at once (0: all)")
    parser.add_argument("--backend", type=int, required=True, help="backend port on 127.0.0.1")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.calls < 1 or args.pool < 0:
        parser.error("--jobs and --calls must be at least 1, --pool at least 0")
    args.pool = args.pool or args.jobs
    args.backend = ("127.0.0.1", args.backend)
    import json

    tally = Tally()
    run = {"green": run_green, "asyncio": run_asyncio, "threads": run_threads}[args.mode]
    shutdown = run(args, tally)
    seconds = args.ended - args.started
    after = proc_status()
    shutdown()
    latencies = sorted(tally.latencies)
    result: dict[str, Any] = {
        "mode": args.mode,
        "jobs": args.jobs,
        "calls": args.calls,
        "pool": args.pool,
        "seconds": seconds,
        "rate": len(latencies) / seconds,
        "p50_ms": _percentile_ms(latencies, 0.5),
        "p99_ms": _percentile_ms(latencies, 0.99),
        "failed": len(tally.failures),
        "first_failure": tally.failures[0] if tally.failures else None,
        "rss_before": args.before["VmRSS"],
        "rss_peak": after["VmHWM"],
        "threads_end": after["Threads"],
        "cpu_seconds": time.process_time(),
    }
    sys.stdout.write("CONDUCTOR_RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
