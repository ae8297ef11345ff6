"""bridge.from_thread: a foreign OS thread hands work to the hub's thread."""

from __future__ import annotations

import asyncio
import threading

import eventlet
import pytest
from eventlet import tpool

import bridge

from .conftest import RunInMode

BOUND = 10


async def add(a: int, b: int) -> int:
    await asyncio.sleep(0.001)
    return a + b


def green_mul(a: int, b: int) -> int:
    eventlet.sleep(0.001)
    return a * b


async def failing() -> None:
    raise LookupError("from the hub's thread")


def in_real_thread() -> tuple[int, int, bool, str]:
    """Runs in a tpool worker: a real OS thread."""
    in_worker = threading.get_ident() != threading.main_thread().ident
    total = bridge.from_thread.run(add, 2, 3, timeout=BOUND)
    product = bridge.from_thread.run_green(green_mul, 4, 5, timeout=BOUND)
    try:
        bridge.from_thread.run(failing, timeout=BOUND)
    except LookupError as exc:
        error = str(exc)
    return total, product, in_worker, error


def test_from_a_tpool_thread_run_and_run_green(hub_mode: RunInMode) -> None:
    assert hub_mode(tpool.execute, in_real_thread) == (5, 20, True, "from the hub's thread")


def test_from_run_in_executor_under_asyncio_run() -> None:
    async def main() -> tuple[int, int, bool, str]:
        return await asyncio.wait_for(asyncio.to_thread(in_real_thread), BOUND)

    assert asyncio.run(main()) == (5, 20, True, "from the hub's thread")


def test_timeout_cancels_the_task_and_raises() -> None:
    cancelled = eventlet.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(BOUND)
        except asyncio.CancelledError:
            cancelled.send("cancelled")
            raise

    def in_thread() -> str:
        try:
            bridge.from_thread.run(slow, timeout=0.05)
        except TimeoutError:
            return "TimeoutError"
        return "no timeout"

    assert tpool.execute(in_thread) == "TimeoutError"
    with eventlet.Timeout(BOUND):
        assert cancelled.wait() == "cancelled"


def test_calling_from_the_hubs_own_thread_is_refused() -> None:
    eventlet.sleep(0)
    with pytest.raises(RuntimeError, match="hub's own thread"):
        bridge.from_thread.run(add, 1, 2)


def test_an_unknown_hub_thread_is_refused() -> None:
    def in_thread() -> str:
        try:
            bridge.from_thread.run(add, 1, 2, hub_thread=1)
        except RuntimeError as exc:
            return str(exc)
        return "ran"

    assert "has no bridge hub" in tpool.execute(in_thread)
