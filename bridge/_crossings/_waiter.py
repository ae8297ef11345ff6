"""The green waiter: a greenthread parked until async work settles, and how it wakes.

Green code that waits on the loop's work -- ``await_`` (``_green_to_async``)
and ``TaskHandle.wait`` (``_handles``) -- parks on a :class:`GreenWaiter`.
The loop's side settles it, always in the dispatcher:

* from inside the task's last step (``await_`` of a coroutine wraps it so
  that its end settles the waiter): the greenthread is resumed right there,
  which saves the loop iteration a done-callback costs;
* from a future's done-callback (:meth:`GreenWaiter.settle_from`), for a
  future, or a task that someone else started.

An interruption of the parked greenthread (an ``eventlet.Timeout``, a kill)
cancels the awaited future and keeps the greenthread parked until the task
has finished its cleanup, unless the caller asked otherwise
(``cancel_on_interrupt=False``: ``TaskHandle.wait`` leaves the task alone).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import greenlet

from bridge._core import Hub, current_task, enter_task, leave_task, resume_green

__all__ = ("GreenWaiter",)


class GreenWaiter:
    """A greenthread blocked on async work: where its outcome lands, how it wakes.

    Invariant: ``parked`` is true exactly while the greenthread waits in
    :meth:`wait_for`, so a wake-up never reaches it after it left (by a
    Timeout or a kill). ``interrupted`` is set once the greenthread will
    raise its interruption instead of the outcome.
    """

    __slots__ = (
        "coro", "current", "exception", "hub", "interrupted", "loop", "parked", "result",
        "settled",
    )  # fmt: skip

    def __init__(
        self, hub: Hub, current: greenlet.greenlet, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.hub = hub
        self.current = current
        self.loop = loop
        self.parked = False
        self.interrupted = False
        self.settled = False
        self.result: Any = None
        self.exception: BaseException | None = None
        # The coroutine awaited, if one (not a future): see wait_for.
        self.coro: Any = None

    def settle(self, result: Any = None, exception: BaseException | None = None) -> bool:
        """Record the outcome, wake the greenthread; False if it will not read it."""
        # Called in the dispatcher: from inside the task's last step (waking
        # the greenthread there saves the loop iteration a done-callback
        # costs), or from a future's done-callback.
        self.result, self.exception, self.settled = result, exception, True
        if not self.parked:
            return not self.interrupted
        # The greenthread runs on outside any task, as it would after a
        # done-callback: asyncio.current_task() is None there, and a task it
        # starts (see _green_to_async.start_task) can step at once.
        loop = self.loop
        task = current_task(loop)
        if task is not None:
            leave_task(loop, task)
        try:
            resume_green(self.hub, self.current.switch)
        finally:
            if task is not None:
                enter_task(loop, task)
        return not self.interrupted

    def settle_from(self, future: asyncio.Future[Any]) -> None:
        """A done-callback: settle with ``future``'s outcome."""
        if future.cancelled():
            self.settle(exception=asyncio.CancelledError())
        else:
            self.settle(future.result() if future.exception() is None else None, future.exception())

    def _settle_unstarted(self, future: asyncio.Future[Any]) -> None:
        self.coro.close()  # never started: no "never awaited" warning
        self.settle_from(future)

    def wait_for(self, future: asyncio.Future[Any], *, cancel_on_interrupt: bool = True) -> Any:
        """Block until settled; if interrupted, cancel ``future`` and wait for that.

        With ``cancel_on_interrupt=False`` an interruption (a Timeout, a kill)
        leaves ``future`` alone and propagates at once.
        """
        self.parked = True
        try:
            try:
                while not self.settled:
                    self.hub.switch()
            except BaseException:
                self.interrupted = True
                if cancel_on_interrupt and not self.settled:
                    future.cancel()
                    if _not_started(self.coro):
                        # Its task is cancelled before its first step: asyncio
                        # throws into a coroutine that never ran, so none of
                        # the wrapper that settles us runs (_green_to_async's
                        # _report_to). The task's end settles instead.
                        future.add_done_callback(self._settle_unstarted)
                    while not self.settled:  # let the task run its cleanup
                        self.hub.switch()
                raise
        finally:
            self.parked = False
        if self.exception is not None:
            raise self.exception.with_traceback(self.exception.__traceback__)
        return self.result


def _not_started(coro: Any) -> bool:
    try:
        return coro is not None and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
    except AttributeError:  # a coroutine of another kind (Cython...): cannot tell
        return False
