"""Documentation example: the adapters, both ways. Included in docs/adapters.md."""

import asyncio
import os

os.environ.setdefault("EVENTLET_HUB", "bridge.hub")

import eventlet

import bridge


# A legacy green function, deep in a module not migrated yet.
def legacy_get_quota(project: str) -> int:
    eventlet.sleep(0.01)  # stands in for green socket I/O
    return 42


# A migrated async function, in a module already on asyncio.
async def fetch_usage(project: str) -> int:
    await asyncio.sleep(0.01)  # stands in for an aiohttp call
    return 7


# Async code calls green code: the function runs in a greenthread.
async def check_project(project: str) -> bool:
    quota = await bridge.to_async(legacy_get_quota)(project)
    return await fetch_usage(project) <= quota


# Green code calls async code: the coroutine runs as a task on the hub's loop;
# only the calling greenthread waits.
def legacy_report(project: str) -> str:
    usage = bridge.await_(fetch_usage(project))
    return f"{project}: {usage} of {legacy_get_quota(project)}"


def test_async_calls_green() -> None:
    assert asyncio.run(check_project("demo")) is True


def test_green_calls_async() -> None:
    assert legacy_report("demo") == "demo: 7 of 42"


def test_green_calls_async_from_a_greenthread_under_asyncio_run() -> None:
    async def main() -> str:
        return await eventlet.spawn(legacy_report, "demo")

    assert asyncio.run(main()) == "demo: 7 of 42"
