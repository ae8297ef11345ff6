"""``bridge.Queue`` and its green face: items, and a wait queue each for getters and putters.

Both wait queues hand out reservations (see :mod:`bridge._sync`): a woken
getter has an item set aside, a woken putter has room set aside, and a
newcomer takes only what is not promised. ``join()`` waits on an
:class:`~bridge.Event` set when the last item put is marked done.
"""

from __future__ import annotations

import asyncio
import collections
import queue as stdlib_queue
from typing import Generic, TypeVar, final

from bridge._errors import BridgeInternalError
from bridge._sync._event import Event
from bridge._sync._statistics import SyncStatistics
from bridge._sync._wait_queue import WaitQueue

__all__ = ("Queue",)

T = TypeVar("T")


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
        # _putters.woken <= maxsize - len(_items) (see bridge._sync's docstring).
        self._items: collections.deque[T] = collections.deque()
        self._getters = WaitQueue(self._wake_getters)
        self._putters = WaitQueue(self._wake_putters)
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
            if not block or not queue._putters.park_green(timeout):
                raise stdlib_queue.Full
        queue._append(item)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Get; block the greenthread for an item (up to ``timeout``) unless not ``block``.

        ``timeout <= 0`` does not wait.

        :raises queue.Empty: if no item came in time.
        """
        queue = self._queue
        if queue._free_items() <= 0:
            if not block or not queue._getters.park_green(timeout):
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
