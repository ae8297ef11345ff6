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

The problem
-----------
Waiters of two worlds wait for one resource, and they leave in ways the
resource does not see coming: a task is cancelled (``task.cancel()``, an
``asyncio.timeout``), a greenthread is killed or its ``eventlet.Timeout``
fires, a green ``timeout=`` expires. Each of these can happen after the
waiter was woken and before it ran. The primitives must stay FIFO across
both worlds, lose no wake-up, and never let two holders in.

What did not work
-----------------
The first version let wakers hand nothing over: a woken waiter re-checked
the state and parked again if it found nothing. A waiter that resumed with
capacity to spare woke the next one -- not counting those already woken for
that same capacity. One of them then found nothing, and parked again *at the
back*, behind waiters that came after it (a FIFO violation a stateful test
found); and an ``Event`` waiter woken by ``set()`` that ran after a
``clear()`` parked again, losing the wake-up that asyncio and threading
deliver.

The mechanism
-------------
:class:`_WaitQueue` is one FIFO queue of parked waiters of either world
(as trio keeps them in its ``ParkingLot``). *A wake-up is a reservation*: the
primitive wakes waiters only while its capacity (free permits, items, room)
exceeds the number of waiters already woken (``_WaitQueue.woken``), so every
woken waiter finds its unit when it runs, and takes it without looking
again. A newcomer takes a unit at once only if one is free beyond the
reserved ones, so it never overtakes a parked waiter. A waiter that leaves
after it was woken gives its reservation back, and the primitive wakes the
next waiter for it (``on_abandon``): no item waits, no permit leaks. An
``Event`` waiter woken by ``set()`` returns True, whatever the flag is when
it runs, as asyncio's and threading's do.

Invariants
----------
* ``_WaitQueue.woken`` counts the waiters woken and not yet resumed or gone;
  woken waiters are out of ``_WaitQueue._waiters``.
* Capacity >= ``woken`` for each queue (``_value`` for permits,
  ``len(_items)`` for getters, ``maxsize - len(_items)`` for putters), and a
  waiter is parked and not woken only while capacity == ``woken``.

Failure modes that remain
-------------------------
* Not thread-safe (like asyncio's primitives): use them from the hub's
  thread; other threads go through :mod:`bridge.from_thread`.
* No barging: ``get_nowait()`` raises ``QueueEmpty`` while the only items are
  promised to woken getters that have not run yet (``qsize() > 0``), and
  ``acquire(blocking=False)`` fails while the free permit is promised to a
  woken waiter (``locked()`` says so). asyncio's ``Queue`` lets a newcomer
  take such an item; FIFO is the promise here.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import queue as stdlib_queue
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar, final

import greenlet

from bridge._core import Hub, current_hub, make_ready
from bridge._errors import BridgeInternalError

__all__ = ("BoundedSemaphore", "Event", "Lock", "Queue", "Semaphore", "SyncStatistics")

T = TypeVar("T")

ASYNC_WITH_ADVICE = (
    "{name} is the async face: use `async with {var}:` in async code, or `with {var}.green:` "
    "in green code."
)
NONBLOCKING_TIMEOUT_ADVICE = (
    "a non-blocking acquire() takes no timeout: pass blocking=False alone, or a timeout alone"
)


@dataclasses.dataclass(frozen=True)
class SyncStatistics:
    """A snapshot of a primitive, from its ``statistics()`` method.

    :ivar waiters: parked waiters not woken yet, of both worlds (for a Queue:
        getters).
    :ivar green_waiters: how many of them are greenthreads.
    """

    waiters: int
    green_waiters: int


def _nothing() -> None:
    pass


class _Parked:
    """One waiter in a :class:`_WaitQueue`.

    Invariant: ``woken`` goes from False to True once, in :meth:`wake`, which
    the queue calls at most once per waiter.
    """

    __slots__ = ("woken",)
    is_green = False

    def __init__(self) -> None:
        self.woken = False

    def wake(self) -> bool:
        """Wake the waiter; False if it is already leaving (it takes no wake-up)."""
        raise NotImplementedError


class _AsyncParked(_Parked):
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        super().__init__()
        self.future = future

    def wake(self) -> bool:
        # A cancelled task's future is cancelled at once, but the task runs
        # (and leaves the queue) only later: it must not take a reservation.
        if self.future.done():
            return False
        self.woken = True
        self.future.set_result(None)
        return True


class _GreenParked(_Parked):
    __slots__ = ("greenlet", "hub", "parked", "timed_out")
    is_green = True

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub
        self.greenlet = greenlet.getcurrent()
        self.parked = False
        self.timed_out = False

    def wake(self) -> bool:
        # A killed greenthread, or one whose Timeout fired, is thrown into at
        # once and leaves the queue before anyone can wake it: never leaving.
        self.woken = True
        make_ready(self.hub, self._resume)
        return True

    def time_out(self) -> None:
        self.timed_out = True
        self._resume()

    def _resume(self) -> None:
        # A greenthread that left (killed, timed out) is not switched into.
        if self.parked:
            self.greenlet.switch()


class _WaitQueue:
    """A FIFO queue of parked waiters of both worlds; a wake-up is a reservation.

    The primitive decides how many waiters may be woken (:meth:`wake_upto`);
    a woken waiter that leaves without resuming -- cancelled, killed, timed
    out -- gives its reservation back through ``on_abandon``, which wakes the
    next waiter in its place.
    """

    __slots__ = ("_on_abandon", "_waiters", "woken")

    def __init__(self, on_abandon: Callable[[], None] = _nothing) -> None:
        # Insertion-ordered with O(1) removal from both the front (wake-ups)
        # and the middle (a waiter that leaves).
        self._waiters: collections.OrderedDict[_Parked, None] = collections.OrderedDict()
        # Invariant: the number of woken waiters that have neither resumed
        # nor left; they are no longer in _waiters.
        self.woken = 0
        self._on_abandon = on_abandon

    def __len__(self) -> int:
        return len(self._waiters)

    def __bool__(self) -> bool:
        return bool(self._waiters)

    def statistics(self) -> SyncStatistics:
        green = sum(1 for waiter in self._waiters if waiter.is_green)
        return SyncStatistics(waiters=len(self._waiters), green_waiters=green)

    def wake_upto(self, capacity: int) -> None:
        """Wake waiters, first come first, until ``capacity`` of them are woken."""
        waiters = self._waiters
        while self.woken < capacity and waiters:
            waiter, _ = waiters.popitem(last=False)
            if waiter.wake():
                self.woken += 1

    def wake_all(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter, _ = waiters.popitem(last=False)
            if waiter.wake():
                self.woken += 1

    def _resumed(self) -> None:
        if self.woken <= 0:
            raise BridgeInternalError(f"a waiter resumed with no wake-up counted ({self.woken})")
        self.woken -= 1

    def _left(self, waiter: _Parked) -> None:
        """``waiter`` leaves without using a wake-up (cancelled, killed, timed out)."""
        if waiter.woken:
            self._resumed()
            self._on_abandon()  # woken, then gone: its reservation goes to the next
        else:
            self._waiters.pop(waiter, None)

    async def park_async(self) -> None:
        """Wait for a wake-up. A cancellation point.

        On return the caller holds a reservation and must take its unit at
        once (no ``await`` in between).
        """
        waiter = _AsyncParked(asyncio.get_running_loop().create_future())
        self._waiters[waiter] = None
        try:
            await waiter.future
        except BaseException:
            self._left(waiter)
            raise
        self._resumed()

    def park_green(self, timeout: float | None = None) -> bool:
        """Block the greenthread until woken (True) or ``timeout`` expires (False).

        True: the caller holds a reservation and must take its unit at once.
        Woken and timed out in the same round counts as woken.
        """
        hub = current_hub()
        waiter = _GreenParked(hub)
        self._waiters[waiter] = None
        timer = None if timeout is None else hub.schedule_call_global(timeout, waiter.time_out)
        waiter.parked = True
        try:
            while not (waiter.woken or waiter.timed_out):
                hub.switch()
        except BaseException:
            self._left(waiter)
            raise
        finally:
            waiter.parked = False
            if timer is not None:
                timer.cancel()
        if waiter.woken:
            self._resumed()
            return True
        self._left(waiter)
        return False


def _no_wait(timeout: float | None) -> bool:
    """A green ``timeout=`` that allows no waiting (as ``threading`` reads it)."""
    return timeout is not None and timeout <= 0


# -- Event ---------------------------------------------------------------------


@final
class Event:
    """An event flag for both worlds: ``asyncio.Event``'s API, and ``.green``'s.

    ``await ev.wait()`` in async code; ``ev.green.wait(timeout)`` in green
    code (``threading.Event``'s API, as legacy code uses it under
    ``monkey_patch``). ``set()``, ``clear()`` and ``is_set()`` work from either.
    A waiter woken by ``set()`` returns True even if ``clear()`` came before
    it ran, as asyncio's and threading's do.
    """

    __slots__ = ("_flag", "_waiters", "green")

    def __init__(self) -> None:
        self._flag = False
        self._waiters = _WaitQueue()  # set() wakes all: nothing to pass on
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
        """Clear the flag; waiters already woken by :meth:`set` still return True."""
        self._flag = False

    async def wait(self) -> bool:
        """Wait until the flag is set; return True. A cancellation point."""
        if not self._flag:
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
        """Block the greenthread until the flag is set (True) or ``timeout`` expires (False).

        ``timeout <= 0`` does not wait (as ``threading.Event.wait``).
        """
        event = self._event
        if event._flag:
            return True
        if _no_wait(timeout):
            return False
        return event._waiters.park_green(timeout)


# -- Semaphores and Lock ------------------------------------------------------------


class _Permits:
    """Counted permits over a FIFO wait queue: the body of Lock and the semaphores.

    Invariant: ``0 <= _waiters.woken <= _value <= _bound``: each woken waiter
    has a permit set aside, which it takes when it resumes.
    """

    __slots__ = ("_bound", "_over_release", "_value", "_waiters")

    def __init__(
        self,
        value: int,
        bound: int | None = None,
        over_release: Callable[[], Exception] | None = None,
    ) -> None:
        self._value = value
        self._bound = bound  # None: unbounded
        # What a release past the bound raises (each primitive says it its way).
        self._over_release = over_release or _lock_over_release
        self._waiters = _WaitQueue(self._wake)

    def _wake(self) -> None:
        self._waiters.wake_upto(self._value)

    def free(self) -> int:
        """Permits a newcomer may take now: those not promised to a woken waiter."""
        return self._value - self._waiters.woken

    def try_acquire(self) -> bool:
        # FIFO: a parked waiter exists only while no permit is free.
        if self.free() > 0:
            self._value -= 1
            return True
        return False

    def _take_reserved(self) -> None:
        if self._value <= 0:
            raise BridgeInternalError(f"a woken waiter found no permit set aside ({self!r})")
        self._value -= 1

    async def acquire_async(self) -> None:
        if self.try_acquire():
            return
        await self._waiters.park_async()
        self._take_reserved()

    def acquire_green(self, timeout: float | None) -> bool:
        if self.try_acquire():
            return True
        if _no_wait(timeout) or not self._waiters.park_green(timeout):
            return False
        self._take_reserved()
        return True

    def release(self, n: int = 1) -> None:
        bound = self._bound
        if bound is not None and self._value + n > bound:
            raise self._over_release()
        self._value += n
        self._wake()

    def __repr__(self) -> str:
        return f"<permits value={self._value} woken={self._waiters.woken}>"


class _PermitsAsyncFace:
    """What the async faces of the semaphores and Lock share."""

    __slots__ = ("_permits", "green")
    _name = ""  # "semaphore", "lock": for messages
    _permits: _Permits

    def locked(self) -> bool:
        """True if :meth:`acquire` would wait (no permit free for a newcomer)."""
        return self._permits.free() <= 0

    async def acquire(self) -> bool:
        """Take a permit, waiting in FIFO order; return True. A cancellation point.

        Not a schedule point when a permit is free.
        """
        await self._permits.acquire_async()
        return True

    def release(self) -> None:
        """Give the permit back; wakes the first waiter of either world. Not a schedule point."""
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

    def __repr__(self) -> str:
        p = self._permits
        return f"<bridge.{type(self).__name__} value={p._value} waiters={len(p._waiters)}>"


class _GreenPermits:
    """What the green faces of the semaphores and Lock share."""

    __slots__ = ("_permits",)

    def __init__(self, permits: _Permits) -> None:
        self._permits = permits

    def locked(self) -> bool:
        """True if :meth:`acquire` would block (no permit free for a newcomer)."""
        return self._permits.free() <= 0

    def __enter__(self) -> bool:
        return self._permits.acquire_green(None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._permits.release()


@final
class _GreenSemaphore(_GreenPermits):
    """The green face of a :class:`Semaphore` or :class:`BoundedSemaphore` (``threading``'s API)."""

    __slots__ = ()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a permit; True, or False if none came in time.

        As ``threading.Semaphore.acquire``: ``blocking=False`` does not wait;
        ``timeout=None`` waits as long as it takes; ``timeout <= 0`` does not
        wait (``eventlet.semaphore.Semaphore`` reads ``-1`` as "forever" and
        refuses other negative values instead).

        :raises ValueError: for ``blocking=False`` with a timeout.
        """
        if not blocking:
            if timeout is not None:
                raise ValueError(f"{NONBLOCKING_TIMEOUT_ADVICE} (got timeout={timeout!r})")
            return self._permits.try_acquire()
        return self._permits.acquire_green(timeout)

    def release(self, n: int = 1) -> None:
        """Give ``n`` permits back, waking as many waiters (``threading``'s ``release(n)``).

        :raises ValueError: for ``n < 1``; for a :class:`BoundedSemaphore`
            released more times than it was acquired.
        """
        if n < 1:
            raise ValueError(f"release(n) gives back n >= 1 permits, not n={n!r}")
        self._permits.release(n)


@final
class Semaphore(_PermitsAsyncFace):
    """A semaphore for both worlds: ``asyncio.Semaphore``'s API, and ``.green``'s.

    ``async with sem`` / ``await sem.acquire()`` in async code; ``with
    sem.green`` / ``sem.green.acquire(blocking=True, timeout=None)`` in green
    code. Waiters of both worlds are served in arrival order.

    Unbounded, as ``asyncio.Semaphore``, ``threading.Semaphore`` and eventlet's
    ``Semaphore`` are: each ``release()`` adds a permit, even past the initial
    value. :class:`BoundedSemaphore` refuses that.

    :raises ValueError: for ``value < 0``.
    """

    __slots__ = ()
    _name = "semaphore"

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError(f"a semaphore's initial value must be >= 0, not {value!r}")
        self._permits = _Permits(value)
        self.green = _GreenSemaphore(self._permits)


@final
class BoundedSemaphore(_PermitsAsyncFace):
    """A semaphore that refuses a release past its initial value, on both faces.

    ``asyncio.BoundedSemaphore``'s API, and ``.green`` with
    ``threading.BoundedSemaphore``'s: a ``release()`` that would raise the
    count past ``value`` raises :exc:`ValueError` (from either face), as
    theirs do, and changes nothing.

    :raises ValueError: for ``value < 0``.
    """

    __slots__ = ()
    _name = "semaphore"

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError(f"a semaphore's initial value must be >= 0, not {value!r}")
        self._permits = _Permits(value, value, _bounded_over_release)
        self.green = _GreenSemaphore(self._permits)

    def release(self) -> None:
        """Give the permit back; wakes the first waiter of either world.

        :raises ValueError: if that would raise the count past the initial value.
        """
        self._permits.release()


def _bounded_over_release() -> Exception:
    return ValueError(
        "bridge.BoundedSemaphore released too many times: each release() must follow one "
        "acquire() (use bridge.Semaphore for a count that may grow)"
    )


def _lock_over_release() -> Exception:
    return RuntimeError(
        "release() of an unlocked bridge.Lock: each release() must follow one acquire()"
    )


@final
class _GreenLock(_GreenPermits):
    """The green face of a :class:`Lock` (``threading.Lock``'s API)."""

    __slots__ = ()

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Take the lock; True, or False if it did not come in time.

        As ``threading.Lock.acquire``: ``blocking=False`` does not wait;
        ``timeout=-1`` (and ``None``, as eventlet's ``Lock`` takes it) waits as
        long as it takes; ``timeout=0`` does not wait.

        :raises ValueError: for ``blocking=False`` with a timeout, or a
            negative timeout other than -1.
        """
        if not blocking:
            if timeout is not None and timeout != -1:
                raise ValueError(f"{NONBLOCKING_TIMEOUT_ADVICE} (got timeout={timeout!r})")
            return self._permits.try_acquire()
        if timeout is None or timeout == -1:
            timeout = None
        elif timeout < 0:
            raise ValueError(
                f"a lock's timeout is >= 0 seconds, or -1 (or None) for no timeout; not {timeout!r}"
            )
        return self._permits.acquire_green(timeout)

    def release(self) -> None:
        """Release the lock; wakes the first waiter of either world.

        :raises RuntimeError: if the lock is not locked (as ``threading.Lock``).
        """
        self._permits.release()


@final
class Lock(_PermitsAsyncFace):
    """A lock for both worlds: ``asyncio.Lock``'s API, and ``.green``'s.

    ``async with lock`` in async code, ``with lock.green`` in green code
    (``threading.Lock``'s API): the same lock, FIFO across both. Not
    reentrant; not owned -- any task or greenthread may release it, as with
    asyncio's and threading's locks.
    """

    __slots__ = ()
    _name = "lock"

    def __init__(self) -> None:
        self._permits = _Permits(1, 1, _lock_over_release)
        self.green = _GreenLock(self._permits)

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<bridge.Lock {state} waiters={len(self._permits._waiters)}>"

    def release(self) -> None:
        """Release the lock; wakes the first waiter of either world.

        :raises RuntimeError: if the lock is not locked (as ``asyncio.Lock``).
        """
        self._permits.release()


# -- Queue ----------------------------------------------------------------------------


@final
class Queue(Generic[T]):
    """A FIFO queue for both worlds: ``asyncio.Queue``'s API, and ``.green``'s.

    ``await q.put(x)`` / ``await q.get()`` in async code; ``q.green.put(x,
    block=True, timeout=None)`` / ``q.green.get(...)`` in green code
    (eventlet's ``Queue`` API, raising ``queue.Full`` / ``queue.Empty``).
    ``task_done()`` and ``join()`` on both faces. ``maxsize=0`` is unbounded.
    Getters and putters of both worlds are served in arrival order; a getter
    cancelled after it was woken passes the item on to the next getter.

    :raises ValueError: for ``maxsize < 0`` (asyncio reads it as unbounded;
        say 0).
    """

    __slots__ = ("_finished", "_getters", "_items", "_maxsize", "_putters", "_unfinished", "green")

    def __init__(self, maxsize: int = 0) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0 (0: unbounded), not {maxsize}")
        self._maxsize = maxsize
        # Invariants: _getters.woken <= len(_items); and, if maxsize,
        # _putters.woken <= maxsize - len(_items) (see the module docstring).
        self._items: collections.deque[T] = collections.deque()
        self._getters = _WaitQueue(self._wake_getters)
        self._putters = _WaitQueue(self._wake_putters)
        # Items put and not yet marked done (task_done); _finished is set at 0.
        self._unfinished = 0
        self._finished = Event()
        self._finished.set()
        self.green: _GreenQueue[T] = _GreenQueue(self)

    def __repr__(self) -> str:
        return (
            f"<bridge.Queue size={len(self._items)} maxsize={self._maxsize} "
            f"getters={len(self._getters)} putters={len(self._putters)} "
            f"unfinished={self._unfinished}>"
        )

    @property
    def maxsize(self) -> int:
        """The most items the queue holds; 0: unbounded."""
        return self._maxsize

    def qsize(self) -> int:
        """How many items are in the queue (including those promised to woken getters)."""
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self._maxsize <= len(self._items)

    # What a newcomer may take now: what is not promised to a woken waiter.
    def _free_items(self) -> int:
        return len(self._items) - self._getters.woken

    def _free_room(self) -> int:
        if not self._maxsize:
            return 1
        return self._maxsize - len(self._items) - self._putters.woken

    def _wake_getters(self) -> None:
        self._getters.wake_upto(len(self._items))

    def _wake_putters(self) -> None:
        if self._maxsize:
            self._putters.wake_upto(self._maxsize - len(self._items))

    def _append(self, item: T) -> None:
        self._items.append(item)
        self._unfinished += 1
        self._finished.clear()
        self._wake_getters()

    def _pop(self) -> T:
        if not self._items:
            raise BridgeInternalError(f"a getter found no item set aside ({self!r})")
        item = self._items.popleft()
        self._wake_putters()
        return item

    def put_nowait(self, item: T) -> None:
        """Put without waiting. Not a schedule point.

        :raises asyncio.QueueFull: if the queue has no room for a newcomer.
        """
        if self._free_room() <= 0:
            raise asyncio.QueueFull
        self._append(item)

    def get_nowait(self) -> T:
        """Get without waiting. Not a schedule point.

        :raises asyncio.QueueEmpty: if the queue has no item for a newcomer.
        """
        if self._free_items() <= 0:
            raise asyncio.QueueEmpty
        return self._pop()

    async def put(self, item: T) -> None:
        """Put, waiting for room in FIFO order. A cancellation point."""
        if self._free_room() <= 0:
            await self._putters.park_async()
        self._append(item)

    async def get(self) -> T:
        """Get, waiting for an item in FIFO order. A cancellation point."""
        if self._free_items() <= 0:
            await self._getters.park_async()
        return self._pop()

    def task_done(self) -> None:
        """Mark one item got earlier as processed; wakes :meth:`join` at the last.

        :raises ValueError: if called more times than items were put (as
            ``asyncio.Queue`` and ``queue.Queue``).
        """
        if self._unfinished <= 0:
            raise ValueError(
                "task_done() called too many times: once per item got from the queue, "
                "after processing it"
            )
        self._unfinished -= 1
        if not self._unfinished:
            self._finished.set()

    async def join(self) -> None:
        """Wait until every item put has been marked done (:meth:`task_done`).

        A cancellation point; returns at once when nothing is unfinished.
        """
        if self._unfinished:
            await self._finished.wait()

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
        """Put; block the greenthread for room (up to ``timeout``) unless not ``block``.

        ``timeout <= 0`` does not wait.

        :raises queue.Full: if no room came in time.
        """
        queue = self._queue
        if queue._free_room() <= 0:
            if not block or _no_wait(timeout) or not queue._putters.park_green(timeout):
                raise stdlib_queue.Full
        queue._append(item)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Get; block the greenthread for an item (up to ``timeout``) unless not ``block``.

        ``timeout <= 0`` does not wait.

        :raises queue.Empty: if no item came in time.
        """
        queue = self._queue
        if queue._free_items() <= 0:
            if not block or _no_wait(timeout) or not queue._getters.park_green(timeout):
                raise stdlib_queue.Empty
        return queue._pop()

    def put_nowait(self, item: T) -> None:
        """Put without waiting. :raises queue.Full: if there is no room."""
        self.put(item, block=False)

    def get_nowait(self) -> T:
        """Get without waiting. :raises queue.Empty: if there is no item."""
        return self.get(block=False)

    def task_done(self) -> None:
        """As :meth:`Queue.task_done`. :raises ValueError: if called too many times."""
        self._queue.task_done()

    def join(self) -> None:
        """Block the greenthread until every item put has been marked done."""
        queue = self._queue
        if queue._unfinished:
            queue._finished.green.wait()
