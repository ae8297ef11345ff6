"""``bridge.Lock``, ``Semaphore`` and ``BoundedSemaphore``, and their green faces.

Each is a thin layer over :class:`~bridge._sync._permits.Permits`: its own
initial count and bound, the error a release past the bound raises, and the
green face's ``acquire()`` that reads ``blocking``/``timeout`` as
``threading``'s does for that kind.
"""

from __future__ import annotations

from typing import final

from bridge._sync._permits import GreenPermits, Permits, PermitsAsyncFace

__all__ = ("BoundedSemaphore", "Lock", "Semaphore")

NONBLOCKING_TIMEOUT_ADVICE = (
    "a non-blocking acquire() takes no timeout: pass blocking=False alone, or a timeout alone"
)


# -- Semaphores ---------------------------------------------------------------------


@final
class _GreenSemaphore(GreenPermits):
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
class Semaphore(PermitsAsyncFace):
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
        self._permits = Permits(value)
        self.green = _GreenSemaphore(self._permits)


@final
class BoundedSemaphore(PermitsAsyncFace):
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
        self._permits = Permits(value, value, _bounded_over_release)
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


# -- Lock ---------------------------------------------------------------------------


def _lock_over_release() -> Exception:
    return RuntimeError(
        "release() of an unlocked bridge.Lock: each release() must follow one acquire()"
    )


@final
class _GreenLock(GreenPermits):
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
class Lock(PermitsAsyncFace):
    """A lock for both worlds: ``asyncio.Lock``'s API, and ``.green``'s.

    ``async with lock`` in async code, ``with lock.green`` in green code
    (``threading.Lock``'s API): the same lock, FIFO across both. Not
    reentrant; not owned -- any task or greenthread may release it, as with
    asyncio's and threading's locks.
    """

    __slots__ = ()
    _name = "lock"

    def __init__(self) -> None:
        self._permits = Permits(1, 1, _lock_over_release)
        self.green = _GreenLock(self._permits)

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<bridge.Lock {state} waiters={self._permits.waiting()}>"

    def release(self) -> None:
        """Release the lock; wakes the first waiter of either world.

        :raises RuntimeError: if the lock is not locked (as ``asyncio.Lock``).
        """
        self._permits.release()
