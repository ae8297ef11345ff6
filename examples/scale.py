"""The Metal3-style scale scenario: create and delete 100 nodes while provisioning runs.

Metal3's test quickly creates and deletes 100 node resources, and it caught
a regression in Ironic's migration off eventlet (../shared/seeds/001). Here,
against a running service (``--url``), in three phases, ``--concurrency``
requests at a time:

1. enroll ``--nodes`` new nodes (``POST /v2/nodes``);
2. power each on and wait until its job finishes (``POST .../power``,
   ``GET /v2/jobs/<id>?wait=``);
3. delete each (``DELETE /v2/nodes/<name>``) and check it is gone.

All the while, ``--provisioners`` clients power the enrolled ``node-*``
nodes on and off, each waiting for its job before the next: the
provisioning that runs meanwhile. Prints seconds per phase, p50/p99 per
kind of request, and every unexpected answer (any is a failure). The test
is tests/test_example_scale.py; single process against the cluster is
bench/scale_service.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

BOUND = 60.0


class Recorder:
    """Latencies per kind of request, unexpected answers, job ids accepted."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.unexpected: list[str] = []
        self.accepted: list[str] = []

    async def call(
        self,
        session: aiohttp.ClientSession,
        kind: str,
        method: str,
        url: str,
        expected: int,
        **options: Any,
    ) -> Any:
        started = time.perf_counter()
        async with session.request(method, url, **options) as response:
            body = await response.read()
            status = response.status
        self.latencies.setdefault(kind, []).append(time.perf_counter() - started)
        if status != expected:
            self.unexpected.append(f"{method} {url}: {status} {body[:200]!r}")
            return None
        return json.loads(body) if body else None

    def summary(self) -> dict[str, dict[str, float]]:
        table = {}
        for kind, values in sorted(self.latencies.items()):
            quantiles = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
            table[kind] = {
                "count": len(values),
                "p50 ms": round(quantiles[49] * 1000, 1),
                "p99 ms": round(quantiles[98] * 1000, 1),
            }
        return table


async def power_and_wait(
    session: aiohttp.ClientSession, base: str, record: Recorder, node: str, state: str
) -> str | None:
    answer = await record.call(
        session, "power", "POST", f"{base}/v2/nodes/{node}/power", 202, json={"state": state}
    )
    if answer is None:
        return None
    record.accepted.append(answer["job"])
    job = await record.call(
        session, "wait", "GET", f"{base}/v2/jobs/{answer['job']}", 200, params={"wait": BOUND}
    )
    if job is not None and job["status"] != "done":
        record.unexpected.append(f"job {answer['job']} on {node}: {job['status']} {job['error']}")
    return None if job is None else str(job["status"])


async def run(
    base: str,
    nodes: int = 100,
    concurrency: int = 10,
    provisioners: int = 4,
    seeded: int = 32,
    prefix: str = "scale",
) -> dict[str, Any]:
    """Run the scenario against ``base``; a summary, with ``accepted`` job ids."""
    record = Recorder()
    names = [f"{prefix}-{i}" for i in range(nodes)]
    limit = asyncio.Semaphore(concurrency)
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=BOUND + 10)
    connector = aiohttp.TCPConnector(limit=concurrency + provisioners + 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def provision(index: int) -> int:
            done = 0
            while not stop.is_set():
                node = f"node-{(index + done * provisioners) % seeded}"
                await power_and_wait(session, base, record, node, "on" if done % 2 else "off")
                done += 1
            return done

        async def each(step: Callable[[str], Awaitable[object]]) -> float:
            async def limited(name: str) -> None:
                async with limit:
                    await step(name)

            started = time.perf_counter()
            await asyncio.gather(*(limited(name) for name in names))
            return round(time.perf_counter() - started, 2)

        async def enroll(name: str) -> None:
            await record.call(
                session, "create", "POST", f"{base}/v2/nodes", 201, json={"name": name}
            )

        async def power_on(name: str) -> None:
            await power_and_wait(session, base, record, name, "on")

        async def delete(name: str) -> None:
            await record.call(session, "delete", "DELETE", f"{base}/v2/nodes/{name}", 204)
            await record.call(session, "gone", "GET", f"{base}/v2/nodes/{name}", 404)

        provisioning = [asyncio.create_task(provision(i)) for i in range(provisioners)]
        started = time.perf_counter()
        phases = {
            "enroll s": await each(enroll),
            "power on s": await each(power_on),
            "delete s": await each(delete),
        }
        total = round(time.perf_counter() - started, 2)
        stop.set()
        provisioned = sum(await asyncio.gather(*provisioning))
    return {
        "nodes": nodes,
        "seconds": total,
        **phases,
        "provisioning jobs meanwhile": provisioned,
        "requests": record.summary(),
        "unexpected": record.unexpected,
        "accepted": record.accepted,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8780")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--provisioners", type=int, default=4)
    args = parser.parse_args(argv)
    summary = asyncio.run(
        run(args.url.rstrip("/"), args.nodes, args.concurrency, args.provisioners)
    )
    summary.pop("accepted")
    print(json.dumps(summary, indent=2))
    return 1 if summary["unexpected"] else 0


if __name__ == "__main__":
    sys.exit(main())
