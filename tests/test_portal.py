"""Portals: green-blocking calls inline in async def suspend only their task."""

from __future__ import annotations

import asyncio
import sys
import traceback

import eventlet
import eventlet.queue
import pytest
from eventlet.green import socket as green_socket

import bridge

BOUND = 10


def legacy_fetch(n: int) -> int:
    eventlet.sleep(0.01)  # green-blocking, deep in legacy code
    return n * 2


def run(coro_fn: object) -> object:
    async def main() -> object:
        return await asyncio.wait_for(coro_fn(), BOUND)  # type: ignore[operator]

    return asyncio.run(main())


def test_inline_green_sleep_suspends_only_the_task() -> None:
    @bridge.portal
    async def handler(n: int) -> int:
        return legacy_fetch(n)

    async def main() -> tuple[list[int], list[str]]:
        order: list[str] = []

        async def other() -> None:
            order.append("other task ran while the portals slept")

        results = await asyncio.gather(*(handler(i) for i in range(5)), other())
        return list(results[:5]), order

    assert run(main) == ([0, 2, 4, 6, 8], ["other task ran while the portals slept"])


def test_inline_green_socket_and_queue_calls() -> None:
    @bridge.portal
    async def handler() -> tuple[bytes, str]:
        a, b = green_socket.socketpair()
        q: eventlet.queue.Queue[str] = eventlet.queue.Queue()
        eventlet.spawn_after(0.001, b.sendall, b"over a green socket")
        eventlet.spawn_after(0.001, q.put, "from an eventlet queue")
        data = a.recv(100)  # inline green recv
        item = q.get()  # inline eventlet Queue.get
        a.close()
        b.close()
        return data, item

    assert run(handler) == (b"over a green socket", "from an eventlet queue")


def test_awaits_inside_a_portal_behave_as_usual() -> None:
    @bridge.portal
    async def handler() -> tuple[bool, object, bool]:
        await asyncio.sleep(0.001)
        task = asyncio.current_task()
        legacy_fetch(1)
        same_task = asyncio.current_task() is task
        return bridge.has_portal(), await asyncio.shield(asyncio.sleep(0, "x")), same_task

    assert run(handler) == (True, "x", True)
    assert run(lambda: asyncio.sleep(0, bridge.has_portal())) is False


def test_cancelling_the_task_reaches_the_blocked_green_call() -> None:
    log: list[str] = []

    @bridge.portal
    async def slow() -> None:
        try:
            eventlet.sleep(BOUND)
        except asyncio.CancelledError:
            log.append("CancelledError at the green call")
            raise
        finally:
            log.append("finally")

    async def main() -> bool:
        task = asyncio.ensure_future(slow())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert run(main) is True
    assert log == ["CancelledError at the green call", "finally"]


def test_a_value_handed_over_before_a_cancellation_is_not_lost() -> None:
    # eventlet wakes the blocked green call with a queue item, then the task
    # is cancelled before it resumes: the call returns the item, and the
    # cancellation lands at the task's next await.
    queue: eventlet.queue.Queue[str] = eventlet.queue.Queue()
    log: list[object] = []

    @bridge.portal
    async def consumer() -> None:
        log.append(("got", queue.get()))
        if sys.version_info >= (3, 11):
            # One cancellation request, as asyncio.timeout() counts them.
            log.append(("cancelling", asyncio.current_task().cancelling()))  # type: ignore[union-attr]
        await asyncio.sleep(0)
        log.append("not reached")

    async def main() -> bool:
        task = asyncio.ensure_future(consumer())
        while not queue.getting():
            await asyncio.sleep(0)

        def hand_over_then_cancel() -> None:
            queue.put("item")
            eventlet.sleep(0)  # the consumer's green call is woken with the item...
            task.cancel()  # ...and its task cancelled before it resumes

        await eventlet.spawn(hand_over_then_cancel)
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert run(main) is True
    assert log[0] == ("got", "item")
    assert log[1:] == ([("cancelling", 1)] if sys.version_info >= (3, 11) else [])


def test_asyncio_timeout_around_a_portal_call() -> None:
    @bridge.portal
    async def slow() -> None:
        eventlet.sleep(BOUND)

    async def main() -> str:
        try:
            await asyncio.wait_for(slow(), 0.01)
        except asyncio.TimeoutError:
            return "timed out"
        return "no timeout"

    assert run(main) == "timed out"


def test_eventlet_timeout_inside_a_portal() -> None:
    @bridge.portal
    async def handler() -> str:
        try:
            with eventlet.Timeout(0.01):
                eventlet.sleep(BOUND)
        except eventlet.Timeout:
            return "eventlet.Timeout raised at the green call"
        return "no timeout"

    assert run(handler) == "eventlet.Timeout raised at the green call"


def test_exceptions_from_a_portal_keep_their_frames() -> None:
    def failing_legacy_code() -> None:
        eventlet.sleep(0)
        raise OSError("legacy failure")

    @bridge.portal
    async def handler() -> None:
        failing_legacy_code()

    with pytest.raises(OSError, match="legacy failure") as info:
        run(handler)
    assert "failing_legacy_code" in "".join(traceback.format_tb(info.value.__traceback__))


def test_without_a_portal_the_same_call_is_refused() -> None:
    async def handler() -> int:
        return legacy_fetch(1)

    with pytest.raises(bridge.BlockingCallError, match="to_async"):
        run(handler)


def test_green_tcp_client_inline_against_a_green_server() -> None:
    listener = eventlet.listen(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        conn.sendall(conn.recv(100).upper())
        conn.close()

    @bridge.portal
    async def client() -> bytes:
        server = eventlet.spawn(serve)
        sock = eventlet.connect(listener.getsockname())
        sock.sendall(b"hello")
        reply = sock.recv(100)
        sock.close()
        server.wait()
        return reply

    assert run(client) == b"HELLO"
    listener.close()
