"""Primitives for both worlds: one object, two faces, one FIFO wait queue.

A migrating service hands the same ``Queue`` to a legacy green producer and
a new async consumer. Each primitive here is one object with two faces:

* the object itself speaks asyncio (``await q.get()``, ``async with lock``,
  ``await ev.wait()``);
* its ``green`` attribute speaks eventlet / ``threading`` (``q.green.get(block,
  timeout)``, ``with lock.green``, ``ev.green.wait(timeout)``), so legacy code
  is handed ``obj.green`` unchanged.

The face is chosen by the caller, never guessed from the calling context: a
guess would block where it should await (inside a portal, async code runs in
a greenlet).

The hard part lives in :class:`_WaitQueue`, as trio keeps it in its
``ParkingLot``: one FIFO queue of parked waiters of either world. Wakers
never hand anything over; a woken waiter re-checks the primitive's state.
A waiter that is woken and then cancelled (task cancelled, greenthread
killed, a timeout) before it resumes passes its wake-up on to the next
waiter, so no item is lost and no permit leaks. A newcomer that finds
others waiting (woken or not) queues behind them, so the order is FIFO
across both worlds; and a waiter that resumes and leaves capacity behind
(a permit, an item, room) wakes the next one, so none is left parked while
it could proceed.

Not thread-safe (like asyncio's primitives): use them from the hub's
thread; other threads go through :mod:`bridge.from_thread`.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import queue as stdlib_queue
from types import TracebackType
from typing import Generic, TypeVar, final

import greenlet

from bridge._core._hub import Hub, current_hub

__all__ = ("Event", "Lock", "Queue", "Semaphore", "SyncStatistics")

T = TypeVar("T")

ASYNC_WITH_ADVICE = (
    "{name} is the async face: use `async with {var}:` in async code, or `with {var}.green:` "
    "in green code."
)


@dataclasses.dataclass(frozen=True)
class SyncStatistics:
    """A snapshot of a primitive, from its ``statistics()`` method.

    :ivar waiters: parked waiters, of both worlds (for a Queue: getters).
    :ivar green_waiters: how many of them are greenthreads.
    """

    waiters: int
    green_waiters: int


class _Parked:
    """One waiter in a :class:`_WaitQueue`.

    Invariant: ``woken`` goes from False to True once; ``wake()`` is called at
    most once per waiter, by the queue.
    """

    __slots__ = ("woken",)
    is_green = False

    def __init__(self) -> None:
        self.woken = False

    def wake(self) -> None:
        raise NotImplementedError


class _AsyncParked(_Parked):
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        super().__init__()
        self.future = future

    def wake(self) -> None:
        self.woken = True
        if not self.future.done():
            self.future.set_result(None)


class _GreenParked(_Parked):
    __slots__ = ("greenlet", "hub", "parked", "timed_out")
    is_green = True

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        self.greenlet = greenlet.getcurrent()
        self.parked = False
        self.timed_out = False

    def wake(self) -> None:
        self.woken = True
        self.hub._make_ready(self._resume)

    def time_out(self) -> None:
        self.timed_out = True
        self._resume()

    def _resume(self) -> None:
        # A greenthread that left (killed, timed out) is not switched into.
        if self.parked:
            self.greenlet.switch()


class _WaitQueue:
    """A FIFO queue of parked waiters of both worlds."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        # Insertion-ordered: FIFO, and O(1) removal of a waiter that leaves.
        self._waiters: dict[_Parked, None] = {}

    def __len__(self) -> int:
        return len(self._waiters)

    def __bool__(self) -> bool:
        return bool(self._waiters)

    def statistics(self) -> SyncStatistics:
        green = sum(1 for waiter in self._waiters if waiter.is_green)
        return SyncStatistics(waiters=len(self._waiters), green_waiters=green)

    def wake_one(self) -> bool:
        """Wake the first waiter not woken yet; False if there is none."""
        for waiter in self._waiters:
            if not waiter.woken:
                waiter.wake()
                return True
        return False

    def wake_all(self) -> None:
        for waiter in self._waiters:
            if not waiter.woken:
                waiter.wake()

    async def park_async(self) -> None:
        """Wait for a wake-up. A cancellation point."""
        waiter = _AsyncParked(asyncio.get_running_loop().create_future())
        self._waiters[waiter] = None
        try:
            await waiter.future
        except BaseException:
            if waiter.woken:
                del self._waiters[waiter]
                self.wake_one()  # woken, then cancelled: pass the wake-up on
                raise
            raise
        finally:
            self._waiters.pop(waiter, None)

    def park_green(self, timeout: float | None = None) -> bool:
        """Block the greenthread until woken (True) or ``timeout`` expires (False)."""
        hub = current_hub()
        waiter = _GreenParked(hub)
        self._waiters[waiter] = None
        timer = None if timeout is None else hub.schedule_call_global(timeout, waiter.time_out)
        waiter.parked = True
        try:
            while not (waiter.woken or waiter.timed_out):
                hub.switch()
        except BaseException:
            if waiter.woken:
                del self._waiters[waiter]
                self.wake_one()  # woken, then killed or timed out: pass it on
            raise
        finally:
            waiter.parked = False
            self._waiters.pop(waiter, None)
            if timer is not None:
                timer.cancel()
        return waiter.woken


def _deadline_timeout(timeout: float | None, started: float, hub: Hub) -> float | None:
    return None if timeout is None else max(0.0, timeout - (hub.clock() - started))


# -- Event ---------------------------------------------------------------------


@final
class Event:
    """An event flag for both worlds: ``asyncio.Event``'s API, and ``.green``'s.

    ``await ev.wait()`` in async code; ``ev.green.wait(timeout)`` in green
    code (``threading.Event``'s API, as legacy code uses it under
    ``monkey_patch``). ``set()``, ``clear()`` and ``is_set()`` work from either.
    """

    __slots__ = ("_flag", "_waiters", "green")

    def __init__(self) -> None:
        self._flag = False
        self._waiters = _WaitQueue()
        self.green = _GreenEvent(self)

    def __repr__(self) -> str:
        return f"<bridge.Event {'set' if self._flag else 'unset'} waiters={len(self._waiters)}>"

    def __bool__(self) -> bool:
        raise TypeError("use event.is_set() to test a bridge.Event")

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiter of both worlds. Not a schedule point."""
        if not self._flag:
            self._flag = True
            self._waiters.wake_all()

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> bool:
        """Wait until the flag is set. A cancellation point."""
        while not self._flag:
            await self._waiters.park_async()
        return True

    def statistics(self) -> SyncStatistics:
        return self._waiters.statistics()


@final
class _GreenEvent:
    """The green face of a :class:`Event` (``threading.Event``'s API)."""

    __slots__ = ("_event",)

    def __init__(self, event: Event) -> None:
        self._event = event

    def is_set(self) -> bool:
        return self._event._flag

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def wait(self, timeout: float | None = None) -> bool:
        """Block the greenthread until the flag is set; False on timeout."""
        event = self._event
        hub = current_hub()
        started = hub.clock()
        while not event._flag:
            if not event._waiters.park_green(_deadline_timeout(timeout, started, hub)):
                return event._flag
        return True


# -- Semaphore and Lock -------------------------------------------------------------


class _Permits:
    """Counted permits with a FIFO wait queue: the body of Semaphore and Lock."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"a semaphore's initial value must be >= 0, not {value}")
        self._value = value
        self._waiters = _WaitQueue()

    def try_acquire(self) -> bool:
        # FIFO: while others wait, a newcomer queues behind them.
        if self._value > 0 and not self._waiters:
            self._value -= 1
            return True
        return False

    def _take_after_wake(self) -> bool:
        if self._value <= 0:
            return False
        self._value -= 1
        if self._value > 0:
            self._waiters.wake_one()  # capacity left: the next may proceed too
        return True

    async def acquire_async(self) -> None:
        if self.try_acquire():
            return
        while True:
            await self._waiters.park_async()
            if self._take_after_wake():
                return

    def acquire_green(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if self.try_acquire():
            return True
        if not blocking:
            return False
        hub = current_hub()
        started = hub.clock()
        while True:
            if not self._waiters.park_green(_deadline_timeout(timeout, started, hub)):
                return False
            if self._take_after_wake():
                return True

    def release(self) -> None:
        self._value += 1
        self._waiters.wake_one()


class _PermitsAsyncFace:
    """What the async faces of Semaphore and Lock share."""

    __slots__ = ("_permits", "green")
    _name = ""  # "semaphore", "lock": for messages
    _permits: _Permits

    def __init__(self, permits: _Permits) -> None:
        self._permits = permits
        self.green = _GreenSemaphore(permits)

    def locked(self) -> bool:
        return self._permits._value == 0

    async def acquire(self) -> bool:
        """Take a permit, waiting in FIFO order. A cancellation point."""
        await self._permits.acquire_async()
        return True

    def release(self) -> None:
        """Give the permit back; wakes the first waiter of either world."""
        self._permits.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def __enter__(self) -> None:
        raise TypeError(
            ASYNC_WITH_ADVICE.format(name=f"bridge.{type(self).__name__}", var=self._name)
        )

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ raised
        pass

    def statistics(self) -> SyncStatistics:
        return self._permits._waiters.statistics()


@final
class Semaphore(_PermitsAsyncFace):
    """A semaphore for both worlds: ``asyncio.Semaphore``'s API, and ``.green``'s.

    ``async with sem`` / ``await sem.acquire()`` in async code; ``with
    sem.green`` / ``sem.green.acquire(blocking=True, timeout=None)`` in green
    code. Waiters of both worlds are served in arrival order.
    """

    __slots__ = ()
    _name = "semaphore"

    def __init__(self, value: int = 1) -> None:
        super().__init__(_Permits(value))

    def __repr__(self) -> str:
        p = self._permits
        return f"<bridge.Semaphore value={p._value} waiters={len(p._waiters)}>"


class _GreenSemaphore:
    """The green face of a :class:`Semaphore` or :class:`Lock`."""

    __slots__ = ("_permits",)

    def __init__(self, permits: _Permits) -> None:
        self._permits = permits

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a permit; block the greenthread (up to ``timeout``) unless not ``blocking``."""
        if timeout is not None and timeout < 0:
            timeout = None  # threading.Lock's "forever"
        return self._permits.acquire_green(blocking, timeout)

    def release(self) -> None:
        self._permits.release()

    def locked(self) -> bool:
        return self._permits._value == 0

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@final
class Lock(_PermitsAsyncFace):
    """A lock for both worlds: ``asyncio.Lock``'s API, and ``.green``'s.

    ``async with lock`` in async code, ``with lock.green`` in green code:
    the same lock, FIFO across both. Not reentrant.
    """

    __slots__ = ()
    _name = "lock"

    def __init__(self) -> None:
        super().__init__(_Permits(1))

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<bridge.Lock {state} waiters={len(self._permits._waiters)}>"

    def release(self) -> None:
        """Release the lock; wakes the first waiter of either world."""
        if self._permits._value:
            raise RuntimeError("release() of an unlocked bridge.Lock")
        self._permits.release()


# -- Queue ----------------------------------------------------------------------------


@final
class Queue(Generic[T]):
    """A FIFO queue for both worlds: ``asyncio.Queue``'s API, and ``.green``'s.

    ``await q.put(x)`` / ``await q.get()`` in async code; ``q.green.put(x,
    block=True, timeout=None)`` / ``q.green.get(...)`` in green code
    (eventlet's ``Queue`` API, raising ``queue.Full`` / ``queue.Empty``).
    ``maxsize=0`` is unbounded. Getters and putters of both worlds are served
    in arrival order; a getter cancelled after it was woken passes the wake-up
    on, so no item waits while a getter could take it.
    """

    __slots__ = ("_getters", "_items", "_putters", "green", "maxsize")

    def __init__(self, maxsize: int = 0) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0 (0: unbounded), not {maxsize}")
        self.maxsize = maxsize
        self._items: collections.deque[T] = collections.deque()
        self._getters = _WaitQueue()
        self._putters = _WaitQueue()
        self.green: _GreenQueue[T] = _GreenQueue(self)

    def __repr__(self) -> str:
        return (
            f"<bridge.Queue size={len(self._items)} maxsize={self.maxsize} "
            f"getters={len(self._getters)} putters={len(self._putters)}>"
        )

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def _can_put(self) -> bool:
        # FIFO: while others wait, a newcomer queues behind them.
        return not self.full() and not self._putters

    def _can_get(self) -> bool:
        return bool(self._items) and not self._getters

    def _do_put(self, item: T, *, woken: bool = False) -> None:
        self._items.append(item)
        self._getters.wake_one()
        if woken and not self.full():
            self._putters.wake_one()  # room left: the next putter may proceed too

    def _do_get(self, *, woken: bool = False) -> T:
        item = self._items.popleft()
        self._putters.wake_one()
        if woken and self._items:
            self._getters.wake_one()  # items left: the next getter may proceed too
        return item

    def put_nowait(self, item: T) -> None:
        """Put without waiting; :exc:`asyncio.QueueFull` if full."""
        if not self._can_put():
            raise asyncio.QueueFull
        self._do_put(item)

    def get_nowait(self) -> T:
        """Get without waiting; :exc:`asyncio.QueueEmpty` if empty."""
        if not self._can_get():
            raise asyncio.QueueEmpty
        return self._do_get()

    async def put(self, item: T) -> None:
        """Put, waiting for room in FIFO order. A cancellation point."""
        if self._can_put():
            return self._do_put(item)
        while True:
            await self._putters.park_async()
            if not self.full():
                return self._do_put(item, woken=True)

    async def get(self) -> T:
        """Get, waiting for an item in FIFO order. A cancellation point."""
        if self._can_get():
            return self._do_get()
        while True:
            await self._getters.park_async()
            if self._items:
                return self._do_get(woken=True)

    def statistics(self) -> SyncStatistics:
        return self._getters.statistics()


@final
class _GreenQueue(Generic[T]):
    """The green face of a :class:`Queue` (eventlet's ``Queue`` API)."""

    __slots__ = ("_queue",)

    def __init__(self, queue: Queue[T]) -> None:
        self._queue = queue

    def qsize(self) -> int:
        return self._queue.qsize()

    def empty(self) -> bool:
        return self._queue.empty()

    def full(self) -> bool:
        return self._queue.full()

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put; block the greenthread for room unless not ``block``; ``queue.Full``."""
        queue = self._queue
        if queue._can_put():
            return queue._do_put(item)
        if not block:
            raise stdlib_queue.Full
        hub = current_hub()
        started = hub.clock()
        while True:
            if not queue._putters.park_green(_deadline_timeout(timeout, started, hub)):
                raise stdlib_queue.Full
            if not queue.full():
                return queue._do_put(item, woken=True)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Get; block the greenthread for an item unless not ``block``; ``queue.Empty``."""
        queue = self._queue
        if queue._can_get():
            return queue._do_get()
        if not block:
            raise stdlib_queue.Empty
        hub = current_hub()
        started = hub.clock()
        while True:
            if not queue._getters.park_green(_deadline_timeout(timeout, started, hub)):
                raise stdlib_queue.Empty
            if queue._items:
                return queue._do_get(woken=True)

    def put_nowait(self, item: T) -> None:
        self.put(item, block=False)

    def get_nowait(self) -> T:
        return self.get(block=False)
