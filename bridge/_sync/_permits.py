"""Counted permits over a wait queue: the body that ``Lock`` and the semaphores share.

:class:`Permits` holds the count and the waiters; :class:`PermitsAsyncFace`
and :class:`GreenPermits` are what the two faces of every permit primitive
have in common. ``_locks`` adds each primitive's own constructor, bound and
messages on top.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from bridge._errors import BridgeInternalError
from bridge._sync._statistics import SyncStatistics
from bridge._sync._wait_queue import WaitQueue

__all__ = ("GreenPermits", "Permits", "PermitsAsyncFace")

ASYNC_WITH_ADVICE = (
    "{name} is the async face: use `async with {var}:` in async code, or `with {var}.green:` "
    "in green code."
)


def _released_past_bound() -> Exception:
    # Each bounded primitive passes its own error; this one is for a caller
    # that gave a bound and forgot to.
    return RuntimeError(
        "released more times than acquired: each release() must follow one acquire()"
    )


class Permits:
    """Counted permits over a FIFO wait queue: the body of Lock and the semaphores.

    Invariant: ``0 <= _waiters.woken <= _value <= _bound``: each woken waiter
    has a permit set aside, which it takes when it resumes.

    :param value: the permits free at the start.
    :param bound: the most permits there may be (None: unbounded).
    :param over_release: makes what a release past ``bound`` raises (each
        primitive says it its way).
    """

    __slots__ = ("_bound", "_over_release", "_value", "_waiters")

    def __init__(
        self,
        value: int,
        bound: int | None = None,
        over_release: Callable[[], Exception] = _released_past_bound,
    ) -> None:
        self._value = value
        self._bound = bound  # None: unbounded
        self._over_release = over_release
        self._waiters = WaitQueue(self._wake)

    def _wake(self) -> None:
        self._waiters.wake_upto(self._value)

    def free(self) -> int:
        """Permits a newcomer may take now: those not promised to a woken waiter."""
        return self._value - self._waiters.woken

    def waiting(self) -> int:
        """How many waiters are parked and not woken yet."""
        return len(self._waiters)

    def statistics(self) -> SyncStatistics:
        return self._waiters.statistics()

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
        """Take a permit, blocking the greenthread up to ``timeout``; False if none came.

        ``timeout <= 0`` does not wait; None waits as long as it takes.
        """
        if self.try_acquire():
            return True
        if not self._waiters.park_green(timeout):
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


class PermitsAsyncFace:
    """What the async faces of the semaphores and Lock share.

    A subclass sets ``_permits`` and ``green`` in its ``__init__``, and
    ``_name`` (for messages).
    """

    __slots__ = ("_permits", "green")
    _name = ""  # "semaphore", "lock": for messages
    _permits: Permits

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
        return self._permits.statistics()

    def __repr__(self) -> str:
        p = self._permits
        return f"<bridge.{type(self).__name__} value={p._value} waiters={p.waiting()}>"


class GreenPermits:
    """What the green faces of the semaphores and Lock share."""

    __slots__ = ("_permits",)

    def __init__(self, permits: Permits) -> None:
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
