"""The inbox room: work handed to the hub from other OS threads (``bridge.from_thread``).

Other threads append to a deque (atomic) and wake the hub's loop with
``call_soon_threadsafe``; the dispatcher drains it. The inbox moves with the
hub from loop to loop (``_migrate`` schedules a drain where work waits); while
the hub has no loop, or only a closed one, work waits for the next.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from bridge._core._state import HubBase
from bridge._core._topology import resume_green

__all__ = ()


class _Inbox(HubBase):
    def _init_inbox(self) -> None:
        # Appended by other OS threads, popped here; deque operations are atomic.
        self._inbox = collections.deque()

    def submit_threadsafe(self, work: Callable[[], object]) -> None:
        """Run ``work()`` in the dispatcher, soon; callable from any OS thread.

        ``work`` runs as a loop callback of whichever loop the hub is on when
        it gets there (the hub may change loops meanwhile: the inbox moves).
        While the hub has no loop, or only a closed one (an ``asyncio.run()``
        of that thread has returned), ``work`` waits for the next.
        """
        self._inbox.append(work)
        while True:
            loop = self._loop
            if loop is None:
                loop = self._owner_loop
            if loop is None:
                return  # no loop yet: the first one drains the inbox (_migrate)
            try:
                loop.call_soon_threadsafe(self._drain_inbox)
                return
            except RuntimeError:  # closed
                if self._loop is loop:
                    return  # as with no loop: the next loop the hub is on drains it

    def _drain_inbox(self) -> None:
        inbox = self._inbox
        while inbox:
            resume_green(self, inbox.popleft())
