"""bridge beside libraries that run sync code in greenlets of their own, from asyncio tasks.

SQLAlchemy's asyncio extension (and greenback, and others) drive sync code from
a coroutine this way: ``greenlet_spawn(fn)`` makes a greenlet whose parent is
the greenlet running the task's step, switches into it, and whenever ``fn``
needs an awaitable (``await_only``), the child switches to that parent, which
awaits it in the task and switches back. ``spawn_sync`` and ``await_only``
below follow that pattern (SQLAlchemy's own is exercised with a real database
in ``tests/test_example_sqlalchemy.py``).

What bridge must keep: every step of a task runs in the same greenlet, the
loop's (``await_`` used to run a task's first step in the calling greenthread,
and the library's child greenlet then switched to that greenthread from a
later step); a green-blocking call in such a child greenlet is loop work, so it
raises ``BlockingCallError`` naming the portal (it used to switch to the loop's
greenlet, inside the library's machinery); inside a ``@bridge.portal``
coroutine it suspends the task instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import eventlet
import eventlet.queue
import greenlet
import pytest

import bridge

from .conftest import RunInMode


class _SyncGreenlet(greenlet.greenlet):
    """A greenlet running sync code for a coroutine (as SQLAlchemy's _AsyncIoGreenlet)."""


async def spawn_sync(fn: Callable[..., Any], *args: Any) -> Any:
    """Run sync ``fn`` in a greenlet of its own, awaiting what it hands over."""
    child = _SyncGreenlet(fn, greenlet.getcurrent())
    request = child.switch(*args)
    while not child.dead:
        try:
            value = await request
        except BaseException as exc:
            request = child.throw(exc)
        else:
            request = child.switch(value)
    return request


def await_only(awaitable: Awaitable[Any]) -> Any:
    """From sync code run by spawn_sync: await in the task that runs it."""
    current = greenlet.getcurrent()
    assert isinstance(current, _SyncGreenlet), "await_only outside spawn_sync"
    return current.parent.switch(awaitable)


def sync_query(n: int) -> int:
    # Sync library code that awaits twice, as a driver round trip would.
    await_only(asyncio.sleep(0))
    await_only(asyncio.sleep(0.001))
    return n * 10


async def query(n: int) -> int:
    return await spawn_sync(sync_query, n)


def test_green_code_awaits_a_coroutine_that_runs_sync_code_in_a_greenlet(
    hub_mode: RunInMode,
) -> None:
    # Many in a row: the await_ that start the task's first step at once and
    # the one in 64 that lets the loop start it alike.
    def scenario() -> list[int]:
        return [bridge.await_(query(n)) for n in range(70)]

    assert hub_mode(scenario) == [n * 10 for n in range(70)]


def test_greenthreads_await_such_coroutines_concurrently(hub_mode: RunInMode) -> None:
    def scenario() -> list[int]:
        pool = eventlet.GreenPool(8)
        return list(pool.imap(lambda n: bridge.await_(query(n)), range(40)))

    assert hub_mode(scenario) == [n * 10 for n in range(40)]


def green_blocking_query() -> str:
    eventlet.sleep(0.001)  # legacy code, deep inside the library's sync callback
    return "blocked green"


@pytest.mark.parametrize("started_by", ["await_", "the loop"])
def test_a_green_blocking_call_in_such_a_greenlet_is_refused_clearly(
    hub_mode: RunInMode, started_by: str
) -> None:
    async def task_body() -> str:
        try:
            return await spawn_sync(green_blocking_query)
        except bridge.BlockingCallError as exc:
            return "BlockingCallError: " + ("portal" if "portal" in str(exc) else str(exc))

    def scenario() -> str:
        if started_by == "await_":
            return bridge.await_(task_body())
        return eventlet.spawn(lambda: bridge.await_(asyncio.ensure_future(task_body()))).wait()

    assert hub_mode(scenario) == "BlockingCallError: portal"


def test_in_a_portal_such_a_greenlet_may_block_green(hub_mode: RunInMode) -> None:
    queue: eventlet.queue.LightQueue[str] = eventlet.queue.LightQueue()

    def legacy_consumer() -> str:
        eventlet.sleep(0.001)
        item = queue.get(timeout=10)  # woken by a greenthread
        await_only(asyncio.sleep(0))
        return f"{green_blocking_query()}, got {item}"

    @bridge.portal
    async def handler() -> str:
        return await spawn_sync(legacy_consumer)

    def scenario() -> str:
        eventlet.spawn_after(0.005, queue.put, "item")
        return bridge.await_(handler())

    assert hub_mode(scenario) == "blocked green, got item"
