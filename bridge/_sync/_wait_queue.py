"""The FIFO wait queue under every primitive: a wake-up is a reservation.

Waiters of both worlds park here, first come first served (trio keeps them
in its ``ParkingLot``). The primitive above says how many may be woken --
never more than it has units for (permits, items, room) -- and a woken
waiter takes its unit when it runs, without looking again. Why it is built
so, and what the simpler design got wrong, is the design note in
:mod:`bridge._sync`'s docstring; the invariants this module keeps are
written on the fields and checked where it costs a comparison.

This is also the one place where a green waiter parks with a deadline
(:meth:`WaitQueue.park_green`): the green faces of all primitives wait
through it.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

import greenlet

from bridge._core import Hub, current_hub, make_ready
from bridge._errors import BridgeInternalError
from bridge._sync._statistics import SyncStatistics

__all__ = ("WaitQueue",)


def _nothing() -> None:
    pass


class _Parked:
    """One waiter in a :class:`WaitQueue`.

    Invariant: ``woken`` goes from False to True once, in :meth:`wake`, which
    the queue calls at most once per waiter (it pops the waiter first).
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


class WaitQueue:
    """A FIFO queue of parked waiters of both worlds; a wake-up is a reservation.

    The primitive decides how many waiters may be woken (:meth:`wake_upto`);
    a woken waiter that leaves without resuming -- cancelled, killed, timed
    out -- gives its reservation back through ``on_abandon``, which wakes the
    next waiter in its place.

    :param on_abandon: called when a woken waiter leaves without taking its
        unit; it wakes the next waiter (the primitive's own ``wake_upto``).
        An :class:`~bridge.Event` wakes all at once and passes nothing on.
    """

    __slots__ = ("_on_abandon", "_waiters", "woken")

    def __init__(self, on_abandon: Callable[[], None] = _nothing) -> None:
        # Insertion-ordered with O(1) removal from both the front (wake-ups)
        # and the middle (a waiter that leaves).
        self._waiters: collections.OrderedDict[_Parked, None] = collections.OrderedDict()
        # Invariant: the number of woken waiters that have neither resumed
        # nor left; they are no longer in _waiters. The primitive keeps
        # woken <= its capacity (free permits, items, room), so every woken
        # waiter finds its unit set aside.
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
        """Wake waiters, first come first, until ``capacity`` of them are woken.

        :param capacity: the units the primitive has for waiters now; those
            already woken hold a reservation on some of them.
        """
        if self.woken > capacity:
            raise BridgeInternalError(
                f"{self.woken} waiters woken for {capacity} units: a woken waiter will find "
                "nothing set aside"
            )
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
        Woken and timed out in the same round counts as woken. ``timeout <=
        0`` allows no waiting (as ``threading`` reads it): False at once,
        without queueing.

        :param timeout: seconds; None waits as long as it takes.
        """
        if timeout is not None and timeout <= 0:
            return False
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
