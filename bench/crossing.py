"""Microseconds per crossing between green and async code: bridge against eventlet.

Usage::

    python bench/crossing.py                 # 7 interleaved repetitions
    python bench/crossing.py --repeat 3 --markdown

Each (implementation, workload, repetition) runs in a fresh subprocess; the
repetitions are interleaved and the table shows medians. Implementations:

* ``eventlet`` -- eventlet's own adapters on its asyncio hub
  (``EVENTLET_HUB=asyncio``): green->async is
  ``eventlet.asyncio.spawn_for_awaitable(coro).wait()``, async->green is
  ``await eventlet.spawn(fn)``.
* ``bridge`` -- ``bridge.await_(coro)`` and ``await bridge.to_async(fn)()`` on
  ``EVENTLET_HUB=bridge.hub``, stdlib loop.
* ``bridge-uvloop`` -- the same on uvloop.

Bridge-only rows: the extra cost of an ``await`` inside ``@bridge.portal``
(against the same loop without a portal), and one round trip through two
``bridge.Queue`` objects between a task (async face) and a greenthread
(green face); 1e6 / that is messages per second each way.

Workloads: a trivial callee, and one that yields once (``asyncio.sleep(0)``
/ ``eventlet.sleep(0)``). green->async runs from green main (owner mode);
async->green runs from a task under ``asyncio.run`` (guest mode; eventlet's
hub runs it from a task on its own loop, the only mode it has).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

IMPLEMENTATIONS = {
    "eventlet": {"EVENTLET_HUB": "asyncio"},
    "bridge": {"EVENTLET_HUB": "bridge.hub"},
    "bridge-uvloop": {"EVENTLET_HUB": "bridge.hub", "BENCH_UVLOOP": "1"},
}
# Workloads eventlet has no counterpart for: measured on bridge only.
BRIDGE_ONLY = ("portal: extra per await", "bridge.Queue round trip")
WORKLOADS = (
    "green->async trivial",
    "green->async sleep(0)",
    "async->green trivial",
    "async->green sleep(0)",
    *BRIDGE_ONLY,
)
COUNT = 5000

CHILD = r"""
import asyncio, json, os, sys, time, warnings
warnings.simplefilter("ignore")
if os.environ.get("BENCH_UVLOOP"):
    import uvloop
    uvloop.install()
import eventlet, eventlet.asyncio
impl, workload, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
bridged = impl.startswith("bridge")
if bridged:
    import bridge
    # bridge's names load on first use; load them before any timing starts.
    bridge.Queue, bridge.await_, bridge.portal, bridge.to_async

async def trivial():
    return 1

async def yields():
    await asyncio.sleep(0)

def green_trivial():
    return 1

def green_yields():
    eventlet.sleep(0)

coro_fn = trivial if "trivial" in workload else yields
green_fn = green_trivial if "trivial" in workload else green_yields

def green_to_async():
    if bridged:
        for _ in range(count):
            bridge.await_(coro_fn())
    else:
        for _ in range(count):
            eventlet.asyncio.spawn_for_awaitable(coro_fn()).wait()

async def async_to_green():
    if bridged:
        call = bridge.to_async(green_fn)
        for _ in range(count):
            await call()
    else:
        for _ in range(count):
            await eventlet.spawn(green_fn)

async def portal_overhead():
    async def awaits():
        for _ in range(count):
            await asyncio.sleep(0)
    start = time.perf_counter()
    await bridge.portal(awaits)()
    with_portal = time.perf_counter() - start
    start = time.perf_counter()
    await awaits()
    return with_portal - (time.perf_counter() - start)

async def queue_round_trips():
    ping, pong = bridge.Queue(), bridge.Queue()
    def ponger():
        while (item := ping.green.get()) is not None:
            pong.green.put(item)
    eventlet.spawn(ponger)
    start = time.perf_counter()
    for i in range(count):
        ping.put_nowait(i)
        await pong.get()
    elapsed = time.perf_counter() - start
    ping.put_nowait(None)
    return elapsed

if workload == "portal: extra per await":
    elapsed = asyncio.run(portal_overhead())
elif workload == "bridge.Queue round trip":
    elapsed = asyncio.run(queue_round_trips())
elif workload.startswith("green->async"):
    eventlet.sleep(0)  # the hub is up before timing starts
    start = time.perf_counter()
    green_to_async()
    elapsed = time.perf_counter() - start
elif bridged:
    async def main():
        start = time.perf_counter()
        await async_to_green()
        return time.perf_counter() - start
    elapsed = asyncio.run(main())
else:
    async def timed():
        start = time.perf_counter()
        await async_to_green()
        return time.perf_counter() - start
    elapsed = eventlet.asyncio.spawn_for_awaitable(timed()).wait()
print("RESULT " + json.dumps(elapsed / count * 1e6))
"""


def run_child(impl: str, workload: str, count: int) -> float | None:
    env = dict(os.environ, **IMPLEMENTATIONS[impl])
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, impl, workload, str(count)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return float(json.loads(line[len("RESULT ") :]))
    sys.stderr.write(f"{impl} {workload} failed:\n{proc.stderr[-2000:]}\n")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    samples: dict[tuple[str, str], list[float]] = {}
    for rep in range(args.repeat):
        for workload in WORKLOADS:
            order = list(IMPLEMENTATIONS)
            order = order[rep % len(order) :] + order[: rep % len(order)]  # rotate
            for impl in order:
                if workload in BRIDGE_ONLY and not impl.startswith("bridge"):
                    continue
                value = run_child(impl, workload, args.count)
                if value is not None:
                    samples.setdefault((impl, workload), []).append(value)
        print(f"repetition {rep + 1}/{args.repeat} done", file=sys.stderr)
    header = ["crossing", *(f"{impl} µs" for impl in IMPLEMENTATIONS), "bridge speed-up"]
    rows = []
    for workload in WORKLOADS:
        medians = {
            impl: statistics.median(samples[impl, workload])
            for impl in IMPLEMENTATIONS
            if samples.get((impl, workload))
        }
        missing = "n/a" if workload in BRIDGE_ONLY else "error"
        cells = [f"{medians[i]:.1f}" if i in medians else missing for i in IMPLEMENTATIONS]
        ratio = (
            f"{medians['eventlet'] / medians['bridge']:.1f}x"
            if "eventlet" in medians and "bridge" in medians
            else "n/a"
        )
        rows.append([workload, *cells, ratio])
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(f"(median of {args.repeat} interleaved runs, {args.count} crossings each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
