"""Load for the example service: ``python examples/loadgen.py http://127.0.0.1:8780``.

``--concurrency`` clients (aiohttp, one task each) send requests back to
back for ``--duration`` seconds, or until the service stops listening: 3 in
4 are v2 power requests (``POST /v2/nodes/<node>/power``, answered 202 by
async code), 1 in 4 a v1 status request (``GET /v1/nodes/<node>``, answered
by the legacy WSGI app in a greenthread). Prints counts, requests per
second and latency percentiles, and with ``--json`` one JSON line.

Requests the service never accepted (connection refused or closed before
an answer, as happens when it shuts down) are counted apart from errors: a
graceful shutdown answers every request it accepted. With ``--retry`` (a
cluster, where another API process takes over), a client whose connection
was refused tries again until the time is up instead of stopping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp

NODES = 32


async def client(
    session: aiohttp.ClientSession,
    base: str,
    index: int,
    deadline: float,
    results: dict[str, Any],
    progress: Callable[[int], object],
    accepted: list[str] | None,
    retry: bool,
) -> None:
    n = index
    while time.monotonic() < deadline:
        n += 1
        node = f"node-{n % NODES}"
        started = time.perf_counter()
        try:
            if n % 4:
                state = "on" if n % 2 else "off"
                url = f"{base}/v2/nodes/{node}/power"
                async with session.post(url, json={"state": state}) as response:
                    body = await response.read()
                    status = response.status
                if status == 202 and accepted is not None:
                    accepted.append(json.loads(body)["job"])
            else:
                async with session.get(f"{base}/v1/nodes/{node}") as response:
                    await response.read()
                    status = response.status
        except aiohttp.ClientConnectorError:
            results["refused"] += 1
            if not retry:
                return  # the service stopped listening
            await asyncio.sleep(0.01)  # another process of the cluster will take it
            continue
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            results["not accepted"] += 1
            continue
        results["latencies"].append(time.perf_counter() - started)
        results["status"][status] = results["status"].get(status, 0) + 1
        progress(len(results["latencies"]))


async def run(
    base: str,
    concurrency: int,
    duration: float,
    progress: Callable[[int], object] = lambda answered: None,
    *,
    accepted: list[str] | None = None,
    retry: bool = False,
) -> dict[str, Any]:
    """Load ``base``; ``progress(answered so far)`` is called after each answer.

    :param accepted: if given, the id of every job accepted (202) is appended.
    :param retry: go on after a refused connection (a cluster), rather than stop.
    """
    results: dict[str, Any] = {"refused": 0, "not accepted": 0, "status": {}, "latencies": []}
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(
            *(
                client(session, base, i, started + duration, results, progress, accepted, retry)
                for i in range(concurrency)
            )
        )
    elapsed = time.monotonic() - started
    latencies = sorted(results.pop("latencies"))
    answered = len(latencies)
    summary = {
        "answered": answered,
        "status": {str(k): v for k, v in sorted(results["status"].items())},
        "jobs accepted": results["status"].get(202, 0),
        "refused": results["refused"],
        "not accepted": results["not accepted"],
        "seconds": round(elapsed, 2),
        "requests/s": round(answered / elapsed) if elapsed else 0,
    }
    if latencies:
        quantiles = statistics.quantiles(latencies, n=100) if answered > 1 else latencies * 99
        summary["p50 ms"] = round(quantiles[49] * 1000, 2)
        summary["p99 ms"] = round(quantiles[98] * 1000, 2)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8780")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--retry", action="store_true", help="retry refused connections")
    args = parser.parse_args(argv)
    summary = asyncio.run(
        run(args.url.rstrip("/"), args.concurrency, args.duration, retry=args.retry)
    )
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>14}: {value}")
    errors = sum(v for k, v in summary["status"].items() if not k.startswith("2"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
