"""What a process of the service holds, printed every ``--stats-interval`` seconds.

One line on stdout, ``stats {json}``: open fds, resident memory, live
greenlets (greenthreads, and the greenlets SQLAlchemy's asyncio extension
makes), asyncio tasks, and the hub's timers and fd listeners. The soak
(bench/soak_service.py) reads these lines to see that nothing grows.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

import eventlet
import eventlet.hubs
import greenlet

import bridge


def snapshot(name: str, tasks: int) -> dict[str, Any]:
    hub = eventlet.hubs.get_hub()
    hub_stats = hub.statistics() if hasattr(hub, "statistics") else None
    return {
        "name": name,
        "time": round(time.time(), 3),
        "fds": len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else -1,
        "rss kB": _rss_kb(),
        "greenlets": sum(
            1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and not o.dead
        ),
        "tasks": tasks,
        "hub timers": getattr(hub_stats, "timers", -1),
        "hub readers": getattr(hub_stats, "readers", -1),
        "hub writers": getattr(hub_stats, "writers", -1),
    }


def _rss_kb() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def _print(out: TextIO, data: dict[str, Any]) -> None:
    print("stats " + json.dumps(data), file=out, flush=True)


async def report_async(name: str, interval: float, out: TextIO) -> None:
    """Report every ``interval`` seconds; run as a task (async main)."""
    while True:
        await asyncio.sleep(interval)
        _print(out, snapshot(name, len(asyncio.all_tasks())))


async def _count_tasks() -> int:
    return len(asyncio.all_tasks()) - 1  # not this one


def report_green(name: str, interval: float, out: TextIO) -> None:
    """Report every ``interval`` seconds; run in a greenthread (green main)."""
    while True:
        eventlet.sleep(interval)
        _print(out, snapshot(name, bridge.await_(_count_tasks())))
