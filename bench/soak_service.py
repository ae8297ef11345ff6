"""Soak the example service's cluster: mixed load for N minutes; nothing may grow, nothing may err.

Usage::

    python bench/soak_service.py --minutes 2          # (bench/soak.py --service, once joined)
    python bench/soak_service.py --minutes 10 --store postgresql://postgres@127.0.0.1/db

Starts the cluster (``examples/cluster.py``: one nats-server, the BMC rack,
2 API processes on one port, 2 conductor processes; every process prints
``stats`` lines, see ``examples/service/stats.py``) and loads it with
``--clients`` clients doing a mix: power requests (v2, async), status
requests (v1, legacy WSGI in greenthreads), waits on jobs, nodes enrolled
and deleted, and event streams opened and closed. Every ``--interval``
seconds it prints the interval's throughput and p99, and each process's
open fds, live greenlets, tasks and RSS.

At the end it stops the cluster (SIGTERM) and judges:

* errors: any answer but the expected ones (2xx; 404 for a node just
  deleted), any failed job, any process that did not exit 0;
* growth: for each process, the median of the last third of the run
  against that of the first third (after a warm-up interval): fds,
  greenlets, tasks and hub timers/listeners may not grow by more than the
  jitter of requests in flight (8, or 25%), RSS not by more than 10%;
* exactly once: every accepted job took effect once, from the store.

The exit status is 0 only if all three hold. ``--minutes`` is bounded (at
most 120) so that a soak always ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from cluster import Cluster, audit, wait_finished  # noqa: E402

COUNTED = ("fds", "greenlets", "tasks", "hub timers", "hub readers", "hub writers")


class Load:
    """Mixed clients; latencies and errors per interval."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.accepted: list[str] = []
        self.requests = 0
        self.stop = asyncio.Event()

    async def call(
        self, session: aiohttp.ClientSession, method: str, path: str, ok: tuple[int, ...], **kw: Any
    ) -> Any:
        started = time.perf_counter()
        try:
            async with session.request(method, self.url + path, **kw) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
            self.errors.append(f"{method} {path}: {type(exc).__name__}")
            return None
        self.latencies.append(time.perf_counter() - started)
        self.requests += 1
        if status not in ok:
            self.errors.append(f"{method} {path}: {status} {body[:120]!r}")
            return None
        return json.loads(body) if body else None

    async def client(self, session: aiohttp.ClientSession, index: int) -> None:
        n = index
        while not self.stop.is_set():
            n += 1
            node = f"node-{n % 32}"
            kind = n % 8
            if kind < 4:
                state = "on" if n % 2 else "off"
                answer = await self.call(
                    session, "POST", f"/v2/nodes/{node}/power", (202,), json={"state": state}
                )
                if answer:
                    self.accepted.append(answer["job"])
            elif kind == 4:
                await self.call(session, "GET", f"/v1/nodes/{node}", (200,))
            elif kind == 5 and self.accepted:
                job = self.accepted[-1]
                await self.call(session, "GET", f"/v2/jobs/{job}", (200,), params={"wait": "5"})
            elif kind == 6:
                name = f"soak-{index}-{n}"
                await self.call(session, "POST", "/v2/nodes", (201,), json={"name": name})
                await self.call(session, "DELETE", f"/v2/nodes/{name}", (204,))
            else:
                await self.call(session, "GET", "/v2/nodes", (200,), params={"limit": "10"})

    async def watcher(self, session: aiohttp.ClientSession) -> None:
        """Open an event stream, read some events, close it; again."""
        while not self.stop.is_set():
            try:
                async with session.get(f"{self.url}/v2/events", params={"limit": "50"}) as response:
                    async for _ in response.content:
                        if self.stop.is_set():
                            break
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                self.errors.append(f"GET /v2/events: {type(exc).__name__}")


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else 0.0
    return statistics.quantiles(values, n=100)[98] * 1000


def judge(samples: list[dict[str, Any]]) -> list[str]:
    """What grew, per process: last third against first third, after the first sample."""
    problems = []
    by_process: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        by_process.setdefault(sample["name"], []).append(sample)
    for name, series in sorted(by_process.items()):
        series = series[1:]  # warm-up
        if len(series) < 3:
            problems.append(f"{name}: too few samples to judge ({len(series)})")
            continue
        third = max(1, len(series) // 3)
        first, last = series[:third], series[-third:]
        for key in (*COUNTED, "rss kB"):
            # Medians: a sample catches however many requests are in flight at
            # that instant; a leak moves the median, the load's jitter does not.
            before = statistics.median(s[key] for s in first)
            after = statistics.median(s[key] for s in last)
            slack = before * 0.10 if key == "rss kB" else max(8, before * 0.25)
            if after > before + slack:
                problems.append(f"{name}: {key} grew from {before:g} to {after:g} (medians)")
    return problems


async def soak(args: argparse.Namespace) -> int:
    minutes = min(args.minutes, 120.0)
    interval = args.interval
    with tempfile.TemporaryDirectory(prefix="soak-service-") as tmp:
        workdir = Path(tmp)
        async with Cluster(
            workdir, store=args.store, options=[f"--stats-interval={interval}"]
        ) as cluster:
            print(f"cluster on {cluster.url}; {args.clients} clients for {minutes:g} min")
            load = Load(cluster.url)
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                workers = [
                    asyncio.create_task(load.client(session, i)) for i in range(args.clients)
                ]
                workers += [asyncio.create_task(load.watcher(session)) for _ in range(2)]
                deadline = time.monotonic() + minutes * 60
                started = time.monotonic()
                window = [time.time(), 0.0]  # the load's start and end, as the stats say time
                while time.monotonic() < deadline:
                    await asyncio.sleep(min(interval, deadline - time.monotonic()))
                    lat, load.latencies = load.latencies, []
                    seconds = time.monotonic() - started
                    started = time.monotonic()
                    line = [f"{len(lat) / seconds:7.0f} req/s  p99 {p99(lat):7.1f} ms"]
                    for process in cluster.running():
                        if process.stats:
                            s = process.stats[-1]
                            line.append(
                                f"{process.name}: fds {s['fds']} gl {s['greenlets']} "
                                f"tasks {s['tasks']} rss {s['rss kB'] // 1024}M"
                            )
                    print(" | ".join(line), flush=True)
                load.stop.set()
                window[1] = time.time()
                await asyncio.wait_for(asyncio.gather(*workers), 60)
            statuses = await wait_finished(cluster.url, load.accepted, timeout=120)
            codes = await cluster.close()
            samples = [
                s
                for p in [*cluster.apis, *cluster.conductors]
                for s in p.stats
                if window[0] <= s["time"] <= window[1]  # under load; not the drain after it
            ]
        result = await asyncio.to_thread(audit, cluster.store, load.accepted)
    failed_jobs = [job for job, status in statuses.items() if status != "done"]
    growth = judge(samples)
    errors = load.errors + [f"{name} exited {code}" for name, code in codes.items() if code]
    errors += [f"job {job} failed" for job in failed_jobs]
    print(
        f"requests: {load.requests}; jobs accepted: {len(load.accepted)}; "
        f"store: {result.by_status}; exactly once: {result.exactly_once}"
    )
    for label, items in (("ERROR", errors), ("GREW", growth), ("PROBLEM", result.problems)):
        for item in items[:20]:
            print(f"{label}: {item}")
    good = not errors and not growth and result.exactly_once
    print("nothing grew, nothing erred, every job once" if good else "SOAK FAILED")
    return 0 if good else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="at most 120")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between reports")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--store", default="", help="SQLAlchemy URL; default a SQLite file")
    return asyncio.run(soak(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
