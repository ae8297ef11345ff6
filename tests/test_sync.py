"""Primitives for both worlds (bridge/_sync/): one object, two faces, one FIFO queue."""

from __future__ import annotations

import asyncio
import queue as stdlib_queue
from collections.abc import Callable
from queue import Empty, Full

import eventlet
import greenlet
import pytest

import bridge
from bridge import BoundedSemaphore
from bridge._core import current_hub

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


# -- regressions: misuse and interleavings (issue 8) --------------------------------


def _yield_until(predicate: Callable[[], bool]) -> None:
    """From green code: let the loop run (tasks and greenthreads) until ``predicate()``.

    Bounded: each round is one pass of the loop; a predicate still false after
    100 rounds fails the test instead of hanging it.
    """
    for _ in range(100):
        if predicate():
            return
        bridge.await_(asyncio.sleep(0))
    raise AssertionError(f"still not true after 100 loop rounds: {predicate}")


def test_green_release_of_an_unlocked_lock_raises_and_admits_one_holder(
    hub_mode: RunInMode,
) -> None:
    # issue 8, item 3: it succeeded and raised the permit count to 2.
    def scenario() -> tuple[bool, bool, bool]:
        lock = bridge.Lock()
        with pytest.raises(RuntimeError, match="unlocked"):
            lock.green.release()
        first = lock.green.acquire(blocking=False)
        second = lock.green.acquire(blocking=False)
        return first, second, lock.locked()

    assert hub_mode(scenario) == (True, False, True)


def test_lock_handed_to_a_waiter_cannot_be_released_again_from_either_face() -> None:
    async def main() -> bool:
        lock = bridge.Lock()
        await lock.acquire()
        waiter = asyncio.ensure_future(lock.acquire())
        await asyncio.sleep(0)  # parked
        lock.release()  # the waiter is woken: the lock is its, though it has not run yet
        for release in (lock.release, lock.green.release):
            with pytest.raises(RuntimeError, match="unlocked"):
                release()
        await asyncio.wait_for(waiter, BOUND)
        return lock.locked()

    assert asyncio.run(main()) is True


def test_semaphore_waiter_woken_alongside_others_keeps_its_place_before_a_newcomer() -> None:
    # Two releases woke A and B; A, resuming with a permit to spare in the old
    # code, woke C too, which then found none and re-parked behind D.
    async def main() -> list[str]:
        sem = bridge.Semaphore(0)
        order: list[str] = []

        async def acquire(name: str) -> None:
            await sem.acquire()
            order.append(name)

        parked = []
        for name in "ABC":
            parked.append(asyncio.ensure_future(acquire(name)))
            await asyncio.sleep(0)
        sem.release()
        sem.release()
        await asyncio.sleep(0)  # A and B resume
        loop = asyncio.get_running_loop()
        loop.call_soon(sem.release)  # for C...
        loop.call_soon(sem.release)  # ...then for D, who arrives now, before C resumes
        await acquire("D")
        await asyncio.wait_for(asyncio.gather(*parked), BOUND)
        return order

    assert asyncio.run(main()) == ["A", "B", "C", "D"]


def test_queue_getter_woken_alongside_others_keeps_its_place_before_a_newcomer() -> None:
    async def main() -> list[tuple[str, int]]:
        q: bridge.Queue[int] = bridge.Queue()
        got: list[tuple[str, int]] = []

        async def get(name: str) -> None:
            got.append((name, await q.get()))

        parked = []
        for name in "ABC":
            parked.append(asyncio.ensure_future(get(name)))
            await asyncio.sleep(0)
        q.put_nowait(1)
        q.put_nowait(2)
        await asyncio.sleep(0)  # A and B resume
        loop = asyncio.get_running_loop()
        loop.call_soon(q.put_nowait, 3)
        loop.call_soon(q.put_nowait, 4)
        await get("D")
        await asyncio.wait_for(asyncio.gather(*parked), BOUND)
        return got

    assert asyncio.run(main()) == [("A", 1), ("B", 2), ("C", 3), ("D", 4)]


def test_event_set_then_clear_wakes_every_waiter_of_both_worlds(hub_mode: RunInMode) -> None:
    # asyncio.Event and threading.Event: a waiter woken by set() returns True,
    # even if clear() came before it ran. The old code re-checked the flag and
    # parked again: a lost wake-up.
    def scenario() -> tuple[bool, bool]:
        ev = bridge.Event()
        green_waiter = eventlet.spawn(ev.green.wait, BOUND)
        async_waiter = bridge.spawn_async(ev.wait)
        _yield_until(lambda: ev.statistics().waiters == 2)
        ev.set()
        ev.clear()
        with eventlet.Timeout(BOUND):
            return green_waiter.wait(), async_waiter.wait()

    assert hub_mode(scenario) == (True, True)


def test_misuse_raises_what_asyncio_and_threading_raise_and_changes_nothing(
    hub_mode: RunInMode,
) -> None:
    def scenario() -> list[str]:
        lock = bridge.Lock()
        sem = bridge.Semaphore(0)
        bounded = BoundedSemaphore(1)
        q: bridge.Queue[int] = bridge.Queue()
        seen = []
        for call, exc, match in [
            (lock.release, RuntimeError, "unlocked"),
            (lock.green.release, RuntimeError, "unlocked"),
            (lambda: lock.green.acquire(False, 1), ValueError, "non-blocking"),
            (lambda: lock.green.acquire(True, -2), ValueError, "-1"),
            (lambda: bridge.Semaphore(-1), ValueError, ">= 0"),
            (lambda: BoundedSemaphore(-1), ValueError, ">= 0"),
            (lambda: sem.green.acquire(False, 1), ValueError, "non-blocking"),
            (lambda: sem.green.release(0), ValueError, "n >= 1"),
            (bounded.release, ValueError, "too many times"),
            (bounded.green.release, ValueError, "too many times"),
            (q.task_done, ValueError, "too many times"),
            (q.green.task_done, ValueError, "too many times"),
        ]:
            with pytest.raises(exc, match=match):
                call()
            seen.append(exc.__name__)
        # Nothing changed: one holder for the lock, none for the empty semaphore,
        # one for the bounded one.
        assert lock.green.acquire(False) and not lock.green.acquire(False)
        assert not sem.green.acquire(False)
        assert bounded.green.acquire(False) and not bounded.green.acquire(False)
        return seen

    assert hub_mode(scenario) == ["RuntimeError"] * 2 + ["ValueError"] * 10


def test_semaphore_is_unbounded_on_both_faces_and_bounded_semaphore_is_not(
    hub_mode: RunInMode,
) -> None:
    # As asyncio.Semaphore and threading.Semaphore: release() past the
    # initial value adds permits; threading's release(n) adds n.
    def scenario() -> tuple[int, int]:
        sem = bridge.Semaphore(1)
        sem.release()
        sem.green.release(2)
        taken = 0
        while sem.green.acquire(blocking=False):
            taken += 1
        bounded = BoundedSemaphore(2)
        bounded.green.acquire()
        with pytest.raises(ValueError, match="too many"):
            bounded.green.release(2)  # all or nothing, as threading's
        bounded.green.release()
        bounded_taken = 0
        while bounded.green.acquire(blocking=False):
            bounded_taken += 1
        return taken, bounded_taken

    assert hub_mode(scenario) == (4, 2)


def test_green_timeouts_that_allow_no_wait_do_not_wait(hub_mode: RunInMode) -> None:
    # threading's readings: timeout=0 (and, for Semaphore and Event, any
    # negative one) tries once; Lock's -1 means forever and is not tried here.
    def scenario() -> list[object]:
        lock = bridge.Lock()
        lock.green.acquire()
        sem = bridge.Semaphore(0)
        ev = bridge.Event()
        q: bridge.Queue[int] = bridge.Queue(maxsize=1)
        q.put_nowait(1)
        results: list[object] = [
            lock.green.acquire(timeout=0),
            sem.green.acquire(timeout=0),
            sem.green.acquire(timeout=-1),
            ev.green.wait(0),
            ev.green.wait(-1),
        ]
        with pytest.raises(stdlib_queue.Full):
            q.green.put(2, timeout=0)
        assert q.green.get(timeout=0) == 1
        with pytest.raises(stdlib_queue.Empty):
            q.green.get(timeout=-1)
        results.append(lock.statistics().waiters + sem.statistics().waiters)
        return results

    assert hub_mode(scenario) == [False, False, False, False, False, 0]


def test_queue_join_waits_for_task_done_on_both_faces(hub_mode: RunInMode) -> None:
    def scenario() -> tuple[list[int], bool, bool]:
        q: bridge.Queue[int] = bridge.Queue()
        processed: list[int] = []
        for i in range(3):
            q.green.put(i)

        async def async_joiner() -> bool:
            await q.join()
            return len(processed) == 3

        def green_joiner() -> bool:
            q.green.join()
            return len(processed) == 3

        joiners = bridge.spawn_async(async_joiner), eventlet.spawn(green_joiner)

        async def consume() -> None:
            for _ in range(3):
                item = await q.get()
                processed.append(item)
                q.task_done()

        with eventlet.Timeout(BOUND):
            bridge.spawn_async(consume).wait()
            return processed, joiners[0].wait(), joiners[1].wait()

    assert hub_mode(scenario) == ([0, 1, 2], True, True)


def test_join_of_a_queue_with_nothing_unfinished_returns_at_once() -> None:
    async def main() -> None:
        q: bridge.Queue[int] = bridge.Queue()
        await q.join()
        q.green.join()  # not a schedule point: fine on the loop
        q.put_nowait(1)
        q.get_nowait()
        q.task_done()
        await q.join()

    asyncio.run(main())


def test_green_waiter_woken_in_the_round_its_timeout_expires_takes_the_permit() -> None:
    # threading's answer: a wake-up that came in time wins over the timeout.
    async def main() -> tuple[bool, bool]:
        sem = bridge.Semaphore(0)
        green = eventlet.spawn(sem.green.acquire, True, BOUND)
        while not sem.statistics().waiters:
            await asyncio.sleep(0)
        # What the timeout= timer calls when it expires (white box: a real
        # timer cannot be made to expire in a chosen round), queued in the
        # hub's round before the wake-up.
        (waiter,) = sem._permits._waiters._waiters
        current_hub().schedule_call_global(0, waiter.time_out)
        sem.release()
        return await asyncio.wait_for(green, BOUND), sem.locked()

    assert asyncio.run(main()) == (True, True)


def test_newcomers_do_not_take_what_was_set_aside_for_a_woken_waiter() -> None:
    async def main() -> list[object]:
        seen: list[object] = []
        sem = bridge.Semaphore(0)
        acquirer = asyncio.ensure_future(sem.acquire())
        q: bridge.Queue[int] = bridge.Queue(maxsize=1)
        q.put_nowait(0)
        putter = asyncio.ensure_future(q.put(1))
        getter_q: bridge.Queue[int] = bridge.Queue()
        getter = asyncio.ensure_future(getter_q.get())
        await asyncio.sleep(0)  # all three parked
        sem.release()
        seen.append(sem.green.acquire(blocking=False))  # the permit is the acquirer's
        seen.append(q.get_nowait())  # the room is the putter's...
        for put_nowait, full in [(q.put_nowait, asyncio.QueueFull), (q.green.put_nowait, Full)]:
            with pytest.raises(full):
                put_nowait(2)
        getter_q.put_nowait(3)  # ...and the item is the getter's
        for get_nowait, empty in [
            (getter_q.get_nowait, asyncio.QueueEmpty),
            (getter_q.green.get_nowait, Empty),
        ]:
            with pytest.raises(empty):
                get_nowait()
        await asyncio.wait_for(asyncio.gather(acquirer, putter), BOUND)
        seen.append(await asyncio.wait_for(getter, BOUND))
        seen.append(q.get_nowait())
        return seen

    assert asyncio.run(main()) == [False, 0, 3, 1]


def test_a_task_cancelled_while_parked_is_skipped_by_the_next_wake_up() -> None:
    # Its future is cancelled at once, the task runs later: the permit must
    # not wait for it (asyncio.Lock skips cancelled waiters the same way).
    async def main() -> tuple[bool, bool]:
        sem = bridge.Semaphore(0)
        cancelled = asyncio.ensure_future(sem.acquire())
        await asyncio.sleep(0)
        cancelled.cancel()
        sem.release()
        newcomer = sem.green.acquire(blocking=False)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(cancelled, BOUND)
        return newcomer, sem.locked()

    assert asyncio.run(main()) == (True, True)
