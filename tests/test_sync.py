"""Primitives for both worlds (bridge/_sync.py): one object, two faces, one FIFO queue."""

from __future__ import annotations

import asyncio
import queue as stdlib_queue

import eventlet
import greenlet
import pytest

import bridge

from .conftest import RunInMode

BOUND = 10


def test_green_producer_feeds_async_consumer_through_a_bounded_queue() -> None:
    q: bridge.Queue[int | None] = bridge.Queue(maxsize=2)

    def producer() -> None:
        for i in range(20):
            q.green.put(i)  # blocks the greenthread while the queue is full
        q.green.put(None)

    async def main() -> list[int]:
        eventlet.spawn(producer)
        received = []
        while (item := await asyncio.wait_for(q.get(), BOUND)) is not None:
            received.append(item)
        return received

    assert asyncio.run(main()) == list(range(20))


def test_async_producer_feeds_green_consumer(hub_mode: RunInMode) -> None:
    def scenario() -> list[int]:
        q: bridge.Queue[int] = bridge.Queue(maxsize=1)

        async def produce() -> None:
            for i in range(10):
                await q.put(i)

        producer = bridge.spawn_async(produce)
        with eventlet.Timeout(BOUND):
            received = [q.green.get() for _ in range(10)]
            producer.wait()
        return received

    assert hub_mode(scenario) == list(range(10))


def test_lock_is_fifo_across_both_worlds() -> None:
    lock = bridge.Lock()
    order: list[str] = []

    def green(name: str) -> None:
        with lock.green:
            order.append(name)
            eventlet.sleep(0)

    async def task(name: str) -> None:
        async with lock:
            order.append(name)
            await asyncio.sleep(0)

    async def main() -> None:
        await lock.acquire()  # hold it while the others line up, alternating worlds
        waiters: list[object] = []
        for i in range(3):
            waiters.append(eventlet.spawn(green, f"green{i}"))
            await asyncio.sleep(0)
            waiters.append(asyncio.ensure_future(task(f"async{i}")))
            await asyncio.sleep(0)
        lock.release()
        await asyncio.wait_for(asyncio.gather(*waiters), BOUND)  # type: ignore[arg-type]

    asyncio.run(main())
    assert order == ["green0", "async0", "green1", "async1", "green2", "async2"]


def test_semaphore_bounds_concurrency_across_worlds(hub_mode: RunInMode) -> None:
    def scenario() -> int:
        sem = bridge.Semaphore(2)
        active = [0]
        peak = [0]

        def enter() -> None:
            active[0] += 1
            peak[0] = max(peak[0], active[0])

        def green() -> None:
            with sem.green:
                enter()
                eventlet.sleep(0.001)
                active[0] -= 1

        async def task() -> None:
            async with sem:
                enter()
                await asyncio.sleep(0.001)
                active[0] -= 1

        greens = [eventlet.spawn(green) for _ in range(5)]
        tasks = [bridge.spawn_async(task) for _ in range(5)]
        with eventlet.Timeout(BOUND):
            for worker in [*greens, *tasks]:
                worker.wait()
        return peak[0]

    assert hub_mode(scenario) == 2


def test_event_wakes_waiters_of_both_worlds_and_green_wait_times_out(hub_mode: RunInMode) -> None:
    def scenario() -> tuple[bool, bool, bool]:
        ev = bridge.Event()
        timed_out = ev.green.wait(0.001)
        green_waiter = eventlet.spawn(ev.green.wait, BOUND)
        async_waiter = bridge.spawn_async(ev.wait)
        eventlet.sleep(0)
        ev.set()
        with eventlet.Timeout(BOUND):
            return timed_out, green_waiter.wait(), async_waiter.wait()

    assert hub_mode(scenario) == (False, True, True)


def test_queue_nowait_and_timeouts_raise_each_worlds_exceptions(hub_mode: RunInMode) -> None:
    def scenario() -> list[str]:
        q: bridge.Queue[int] = bridge.Queue(maxsize=1)
        seen = []
        for call, exc in [
            (q.get_nowait, asyncio.QueueEmpty),
            (q.green.get_nowait, stdlib_queue.Empty),
            (lambda: q.green.get(timeout=0.001), stdlib_queue.Empty),
        ]:
            with pytest.raises(exc):
                call()
            seen.append(exc.__name__)
        q.put_nowait(1)
        for call, exc in [
            (lambda: q.put_nowait(2), asyncio.QueueFull),
            (lambda: q.green.put(2, timeout=0.001), stdlib_queue.Full),
        ]:
            with pytest.raises(exc):
                call()
            seen.append(exc.__name__)
        return seen

    assert hub_mode(scenario) == ["QueueEmpty", "Empty", "Empty", "QueueFull", "Full"]


def test_async_getter_woken_then_cancelled_passes_the_item_on() -> None:
    async def main() -> tuple[bool, int]:
        q: bridge.Queue[int] = bridge.Queue()
        first = asyncio.ensure_future(q.get())
        second = asyncio.ensure_future(q.get())
        await asyncio.sleep(0)  # both parked, first in line
        q.put_nowait(42)  # wakes the first getter...
        first.cancel()  # ...which is cancelled before it resumes
        value = await asyncio.wait_for(second, BOUND)
        return first.cancelled(), value

    assert asyncio.run(main()) == (True, 42)


def test_green_getter_woken_then_killed_passes_the_item_on() -> None:
    async def main() -> int:
        q: bridge.Queue[int] = bridge.Queue()
        green_getter = eventlet.spawn(q.green.get)
        await asyncio.sleep(0)
        async_getter = asyncio.ensure_future(q.get())
        await asyncio.sleep(0)
        q.put_nowait(7)  # wakes the green getter (first in line)...
        green_getter.kill()  # ...killed before it resumes
        with pytest.raises(greenlet.GreenletExit):
            green_getter.wait()
        return await asyncio.wait_for(async_getter, BOUND)

    assert asyncio.run(main()) == 7


def test_semaphore_waiter_woken_then_cancelled_leaks_no_permit() -> None:
    async def main() -> tuple[bool, bool]:
        sem = bridge.Semaphore(0)
        first = asyncio.ensure_future(sem.acquire())
        await asyncio.sleep(0)
        second = eventlet.spawn(sem.green.acquire, True, BOUND)
        await asyncio.sleep(0)
        sem.release()  # wakes the first...
        first.cancel()  # ...cancelled before it resumes: the permit goes to the second
        return await asyncio.wait_for(second, BOUND), sem.locked()

    assert asyncio.run(main()) == (True, True)


def test_async_faces_refuse_plain_with_and_truth_testing() -> None:
    with pytest.raises(TypeError, match=r"async with lock.*with lock\.green"), bridge.Lock():
        pass
    with pytest.raises(TypeError, match="async with semaphore"), bridge.Semaphore():
        pass
    with pytest.raises(TypeError, match="is_set"):
        bool(bridge.Event())
    with pytest.raises(ValueError, match="maxsize"):
        bridge.Queue(-1)
    with pytest.raises(RuntimeError, match="unlocked"):
        bridge.Lock().release()


def test_statistics_and_repr_show_waiters_of_both_worlds() -> None:
    async def main() -> tuple[bridge.SyncStatistics, str]:
        q: bridge.Queue[int] = bridge.Queue()
        green = eventlet.spawn(q.green.get)
        task = asyncio.ensure_future(q.get())
        await asyncio.sleep(0)
        stats, text = q.statistics(), repr(q)
        q.put_nowait(1)
        q.put_nowait(2)
        await asyncio.wait_for(task, BOUND)
        await asyncio.wait_for(green, BOUND)
        return stats, text

    stats, text = asyncio.run(main())
    assert stats == bridge.SyncStatistics(waiters=2, green_waiters=1)
    assert "getters=2" in text
