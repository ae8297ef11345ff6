"""bridge.spawn_async: a task managed from green code with GreenThread's methods."""

from __future__ import annotations

import asyncio

import eventlet
import greenlet
import pytest

import bridge

from .conftest import RunInMode

BOUND = 10


async def compute(x: int) -> int:
    await asyncio.sleep(0.001)
    return x * 10


def test_wait_returns_the_result_and_link_is_called(hub_mode: RunInMode) -> None:
    def scenario() -> tuple[int, list[object], bool]:
        handle = bridge.spawn_async(compute, 4)
        linked: list[object] = []
        handle.link(lambda h, tag: linked.append((tag, h.wait())), "done")
        with eventlet.Timeout(BOUND):
            result = handle.wait()
        eventlet.sleep(0)
        return result, linked, handle.dead

    assert hub_mode(scenario) == (40, [("done", 40)], True)


def test_kill_cancels_the_task_and_waits_for_its_cleanup(hub_mode: RunInMode) -> None:
    def scenario() -> list[str]:
        log: list[str] = []

        async def slow() -> None:
            try:
                await asyncio.sleep(BOUND)
            finally:
                await asyncio.sleep(0)
                log.append("cleaned up")

        handle = bridge.spawn_async(slow)
        eventlet.sleep(0.01)
        with eventlet.Timeout(BOUND):
            handle.kill()
        assert handle.dead
        with pytest.raises(greenlet.GreenletExit):
            handle.wait()  # as for a killed greenthread
        return log

    assert hub_mode(scenario) == ["cleaned up"]


def test_wait_raises_the_tasks_exception(hub_mode: RunInMode) -> None:
    async def failing() -> None:
        raise ValueError("task failed")

    def scenario() -> str:
        handle = bridge.spawn_async(failing)
        with pytest.raises(ValueError, match="task failed"):
            handle.wait()
        return repr(handle)

    assert "dead" in hub_mode(scenario)


def test_a_timeout_around_wait_leaves_the_task_running(hub_mode: RunInMode) -> None:
    def scenario() -> int:
        handle = bridge.spawn_async(compute, 1)
        with eventlet.Timeout(0, False):
            handle.wait()
        return handle.wait()

    assert hub_mode(scenario) == 10


def test_unlink_removes_a_link() -> None:
    handle = bridge.spawn_async(compute, 1)
    calls: list[object] = []
    handle.link(calls.append)
    assert handle.unlink(calls.append) is True
    assert handle.unlink(calls.append) is False
    handle.wait()
    eventlet.sleep(0)
    assert calls == []


def test_task_handle_has_no_public_constructor() -> None:
    with pytest.raises(TypeError, match="spawn_async"):
        bridge.TaskHandle()
