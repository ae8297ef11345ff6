"""``bridge.Event`` and its green face: a flag, and a wait queue woken all at once."""

from __future__ import annotations

from typing import final

from bridge._sync._statistics import SyncStatistics
from bridge._sync._wait_queue import WaitQueue

__all__ = ("Event",)


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
        self._waiters = WaitQueue()  # set() wakes all: nothing to pass on
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
        return event._waiters.park_green(timeout)
