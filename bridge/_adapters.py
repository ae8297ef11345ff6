"""The adapters: async code calling green code, and green code calling async code.

Naming: ``to_X(fn)`` returns a callable *for world X's callers*.
``to_async(fn)`` is awaited by async code and runs the green ``fn`` in a
greenthread; ``to_green(afn)`` is called (and blocks) in green code and runs
the coroutine function ``afn`` on the loop. ``await_(aw)`` is the green-side
primitive underneath ``to_green``.

Both directions keep one semantics (DESIGN.md, section 2):

======================  ====================================  ====================================
                        async calls green (``to_async``)      green calls async (``await_``)
======================  ====================================  ====================================
result, exception       returned / raised, callee's frames    same
                        in the traceback
cancellation            cancelling the awaiting task kills    killing the waiting greenthread
                        the greenthread (GreenletExit, its    cancels the task; the kill goes on
                        ``finally`` runs); the task ends      once the task has finished
                        cancelled once the greenthread died
timeouts                ``asyncio.timeout``/``wait_for`` are  ``eventlet.Timeout`` cancels the
                        cancellations: as above               task, then raises the Timeout
contextvars             the callee runs in a copy of the      same
                        caller's context
======================  ====================================  ====================================
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import greenlet

from bridge._carriers import Carrier, Failed, take_carrier
from bridge._core import (
    Hub,
    can_run_in_dispatcher,
    current_hub,
    current_task,
    enter_task,
    in_dispatcher,
    leave_task,
    resume_green,
    run_in_dispatcher,
    slots_of,
    step_now,
)
from bridge._errors import BlockingCallError

__all__ = ("await_", "to_async", "to_green")

# One await_ in this many runs its first step on the loop, not eagerly (see _start_task).
_EAGER_BUDGET = 64

P = ParamSpec("P")
T = TypeVar("T")

AWAIT_ON_LOOP_ADVICE = (
    "bridge.await_() blocks the calling greenthread until the awaitable is done; it was "
    "called on the event loop itself (from async code or a loop callback), which cannot "
    "block. In async code, use `await` instead."
)


def to_async(fn: Callable[P, T]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Wrap a green function for async callers: ``await to_async(fn)(*args)``.

    Who calls the result: a task (async code) on the hub's loop. Where ``fn``
    runs: in a new greenthread (an eventlet ``GreenThread``, so
    ``getcurrent()``, ``link`` and green locals behave as in any greenthread),
    started at once: ``fn`` runs up to its first green-blocking call before
    the ``await`` even yields, and a ``fn`` that never blocks costs no loop
    iteration. Greenthreads are reused between calls (a new greenlet costs
    6-13 us on CPython 3.11+), each call seeing a fresh one: its own links,
    green locals and context; only ``getcurrent()``'s identity repeats (see
    ``bridge/_carriers.py``).

    The await is a cancellation point. Cancelling the awaiting task (or an
    ``asyncio.timeout``/``wait_for`` around it expiring) kills the greenthread:
    ``GreenletExit`` is raised at its blocking call and its ``finally``
    clauses run; the task ends cancelled once the greenthread is dead.
    ``fn`` runs in a copy of the caller's ``contextvars`` context. Its result
    is returned and its exception raised, with ``fn``'s frames in the
    traceback; if other green code kills the greenthread, ``GreenletExit``
    is raised.

    Works as a decorator. Availability: bridge's hub (``EVENTLET_HUB=bridge.hub``).
    """

    @functools.wraps(fn)
    async def call_in_greenthread(*args: P.args, **kwargs: P.kwargs) -> T:
        call = _GreenCall()
        carrier = call.start(fn, args, kwargs)
        if call.outcome is _PENDING:
            await call.finish(carrier)
        outcome = call.outcome
        if type(outcome) is Failed:
            raise outcome.exception.with_traceback(outcome.exception.__traceback__)
        return outcome

    return call_in_greenthread


_PENDING: Any = object()


class _GreenCall:
    """One ``to_async`` call: started on a carrier, its outcome lands here.

    Invariant: ``outcome`` is ``_PENDING`` until the carrier calls
    :meth:`done`, exactly once; ``finished`` is set only while the task waits.
    """

    __slots__ = ("finished", "outcome")

    def __init__(self) -> None:
        self.outcome: Any = _PENDING
        self.finished: asyncio.Future[None] | None = None

    def start(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Carrier:
        hub = current_hub()
        carrier = take_carrier(hub)
        context = contextvars.copy_context()
        if in_dispatcher(hub):
            carrier.run_job(fn, args, kwargs, self.done, context)  # returns when fn blocks or ends
        else:
            hub.schedule_call_global(0, carrier.run_job, fn, args, kwargs, self.done, context)
        return carrier

    def done(self, outcome: Any) -> None:  # in the carrier, when fn returned or raised
        self.outcome = outcome
        finished = self.finished
        if finished is not None and not finished.done():
            finished.set_result(None)

    async def finish(self, carrier: Carrier) -> None:
        """Wait for the outcome; if cancelled meanwhile, kill the call first."""
        loop = asyncio.get_running_loop()
        self.finished = loop.create_future()
        try:
            await self.finished
        except asyncio.CancelledError:
            if self.outcome is _PENDING:  # still our call: a finished carrier may run another
                await _kill(carrier, loop)
            raise


async def _kill(carrier: Carrier, loop: asyncio.AbstractEventLoop) -> None:
    """Kill the carrier and wait until it is dead (its finally may block green)."""
    died = loop.create_future()

    def on_death() -> None:
        if not died.done():
            died.set_result(None)

    carrier.on_death = on_death
    carrier.kill()
    while not carrier.dead:
        try:
            await asyncio.shield(died)
        except asyncio.CancelledError:
            continue


def await_(aw: Awaitable[T]) -> T:
    """Wait for an awaitable from green code; block only the calling greenthread.

    Who calls: a greenthread, or green main in owner mode. Where ``aw`` runs:
    on the hub's loop, a coroutine as a new task (in a copy of the caller's
    ``contextvars`` context), a future or task as it is.

    A coroutine's first step runs at once, in the calling greenthread
    standing in for the loop (as asyncio's eager tasks do): one that finishes
    without suspending returns without a switch (except once in 64 calls,
    so that a loop of such calls lets other greenthreads run). Otherwise the
    call blocks the calling greenthread (a schedule point) until the task is
    done.
    ``eventlet.Timeout`` around it, or killing the greenthread, cancels the
    task, waits for it to finish, then raises the Timeout (or
    ``GreenletExit``). The result is returned; the exception is raised with
    the coroutine's frames in the traceback.

    :raises BlockingCallError: when called on the event loop itself (in async
        code, without a greenthread); ``aw`` is closed first, if a coroutine.
    """
    hub = current_hub()
    current = greenlet.getcurrent()
    if in_dispatcher(hub):
        if asyncio.iscoroutine(aw):
            aw.close()  # or it warns "never awaited" on top of our error
        raise BlockingCallError(AWAIT_ON_LOOP_ADVICE)
    loop = hub.loop
    waiter = _GreenWaiter(hub, current, loop)
    if asyncio.iscoroutine(aw):
        waiter.coro = aw
        future: asyncio.Future[Any] = _start_task(hub, loop, _report_to(waiter, aw))
    else:
        future = asyncio.ensure_future(aw, loop=loop)
        future.add_done_callback(waiter.settle_from)
    return waiter.wait_for(future)


class _GreenWaiter:
    """A greenthread blocked in :func:`await_`: where its outcome lands, how it wakes.

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
        # starts (see _start_task) can step at once.
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
                        # _report_to runs. The task's end settles instead.
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


async def _report_to(waiter: _GreenWaiter, coro: Awaitable[T]) -> T | None:
    try:
        result = await coro
    except Exception as exc:
        if waiter.settle(exception=exc):
            # Delivered to the greenthread; raised here too, nobody would read
            # it from the task, and asyncio would log "never retrieved".
            return None
        raise  # the greenthread left (a Timeout, a kill): let asyncio report it
    except BaseException as exc:  # cancellation, KeyboardInterrupt, SystemExit: as asyncio does
        waiter.settle(exception=exc)
        raise
    waiter.settle(result)
    return result


def _start_task(
    hub: Hub, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]
) -> asyncio.Task[T]:
    """A task for ``coro``, whose first step runs now, in the dispatcher, if it can.

    Why: waiting for the loop to run the step costs a loop iteration (a
    selector poll), more than the rest of a crossing; handing the step to
    the dispatcher (``Hub._run_in_dispatcher``) costs two greenlet switches,
    and a coroutine that finishes without suspending then costs no loop
    iteration at all, as with asyncio's eager tasks (which 3.12+ uses there,
    when the loop has no task factory). The step runs in the loop's greenlet,
    as every later step does.

    Not when the dispatcher is not at hand (green main before the owner loop
    first ran), nor while another task is current (asyncio runs one task at
    a time), nor for one start in ``_EAGER_BUDGET``, so that ``await_`` stays
    a schedule point now and then. A loop's task factory is honoured.
    """
    if not can_run_in_dispatcher(hub) or current_task(loop) is not None:
        # The step must wait for the loop, whatever the loop's task factory
        # would do (asyncio.eager_task_factory would run it right here).
        # What loop.create_task makes without a factory; in a copy of the context.
        return asyncio.Task(coro, loop=loop)
    context = contextvars.copy_context()  # the caller's: the task is made in the dispatcher
    slots = slots_of(hub)
    slots.eager_starts += 1
    if slots.eager_starts % _EAGER_BUDGET == 0:
        # A greenthread awaiting coroutines that never suspend would never
        # switch away: once in a while, the step waits for the loop instead
        # (unless the loop's task factory starts tasks eagerly: then in the
        # dispatcher).
        if loop.get_task_factory() is None:
            return _create_task(loop, coro, context)
        return run_in_dispatcher(hub, _create_task, loop, coro, context)
    return run_in_dispatcher(hub, _create_and_step, loop, coro, context)


def _create_and_step(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], context: contextvars.Context
) -> asyncio.Task[T]:
    """In the dispatcher: a task for ``coro``, its first step taken if no task is current."""
    if current_task(loop) is not None:
        return _create_task(loop, coro, context)
    if sys.version_info >= (3, 12) and loop.get_task_factory() is None:
        # any loop, uvloop too
        return asyncio.Task(coro, loop=loop, context=context, eager_start=True)
    task = _create_task(loop, coro, context)
    step_now(loop, task)  # 3.10, 3.11: take the step back from the stdlib loop's queue
    return task


def _create_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], context: contextvars.Context
) -> asyncio.Task[T]:
    """A task for ``coro`` in ``context`` (``loop.create_task`` takes one from 3.11 on)."""
    if sys.version_info >= (3, 11):
        return loop.create_task(coro, context=context)
    return context.run(loop.create_task, coro)  # the task copies the context it starts in


def to_green(afn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Wrap a coroutine function for green callers: ``to_green(afn)(*args)``.

    Who calls the result: a greenthread, or green main in owner mode. Where
    ``afn`` runs: on the hub's loop, as a new task. The call blocks only the
    calling greenthread; semantics as :func:`await_`. Works as a decorator.
    """

    @functools.wraps(afn)
    def call_and_wait(*args: P.args, **kwargs: P.kwargs) -> T:
        return await_(afn(*args, **kwargs))

    return call_and_wait
