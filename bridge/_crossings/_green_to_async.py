"""Green code calling async code: ``await_``, ``to_green``, and how their tasks start.

``await_(aw)`` runs a coroutine as a task on the hub's loop and parks the
calling greenthread on a :class:`~bridge._crossings._waiter.GreenWaiter`
until the task is done; ``to_green(afn)`` is ``await_(afn(*args))`` as a
wrapper. The mirror direction, a task waiting on green code, is
``_async_to_green``; the package docstring sets the two side by side.

How a call goes::

    greenthread                          dispatcher (the loop's greenlet)
    -----------                          --------------------------------
    await_ -> start_task  -- request --> the task's first step, now:
                                           _report_to(waiter, coro)
                          <-- back ----- ...once coro suspends or ends
    waiter.wait_for: settled? return;
      else park (hub.switch())           later steps run from the loop; in
                                           the last, waiter.settle()
    return / raise the outcome <-------    resumes the greenthread

A future or task (not a coroutine) is waited on as it is: its done-callback
settles the waiter. Taking a task's first step at once (:func:`start_task`) is what makes a crossing
cheap: waiting for the loop to run it costs a loop iteration (a selector
poll), more than all the rest.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import greenlet

from bridge._core import (
    Hub,
    can_run_in_dispatcher,
    current_hub,
    current_task,
    in_dispatcher,
    run_in_dispatcher,
    slots_of,
    step_now,
)
from bridge._crossings._waiter import GreenWaiter
from bridge._errors import BlockingCallError

__all__ = ("await_", "create_task", "start_task", "to_green")

# One await_ in this many runs its first step on the loop, not eagerly (see start_task).
_EAGER_BUDGET = 64

P = ParamSpec("P")
T = TypeVar("T")

AWAIT_ON_LOOP_ADVICE = (
    "bridge.await_() blocks the calling greenthread until the awaitable is done; it was "
    "called on the event loop itself (from async code or a loop callback), which cannot "
    "block. In async code, use `await` instead."
)


def await_(aw: Awaitable[T]) -> T:
    """Wait for an awaitable from green code; block only the calling greenthread.

    Who calls: a greenthread, or green main in owner mode. Where ``aw`` runs:
    on the hub's loop, a coroutine as a new task (in a copy of the caller's
    ``contextvars`` context), a future or task as it is.

    A coroutine's first step runs at once, handed to the loop's greenlet (as
    asyncio's eager tasks do, with two greenlet switches and no loop
    iteration): one that finishes without suspending returns with no other
    green work in between (except once in 64 calls, so that a loop of such
    calls lets other greenthreads run). Otherwise the
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
    waiter = GreenWaiter(hub, current, loop)
    if asyncio.iscoroutine(aw):
        waiter.coro = aw
        future: asyncio.Future[Any] = start_task(hub, loop, _report_to(waiter, aw))
    else:
        future = asyncio.ensure_future(aw, loop=loop)
        future.add_done_callback(waiter.settle_from)
    return waiter.wait_for(future)


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


async def _report_to(waiter: GreenWaiter, coro: Awaitable[T]) -> T | None:
    """The task of :func:`await_`: await ``coro``, settle ``waiter`` in its last step."""
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


# -- starting the task -------------------------------------------------------------


def start_task(
    hub: Hub, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]
) -> asyncio.Task[T]:
    """A task for ``coro``, whose first step runs now, in the dispatcher, if it can.

    Why: waiting for the loop to run the step costs a loop iteration (a
    selector poll), more than the rest of a crossing; handing the step to
    the dispatcher (``run_in_dispatcher``) costs two greenlet switches,
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
            return create_task(loop, coro, context)
        return run_in_dispatcher(hub, create_task, loop, coro, context)
    return run_in_dispatcher(hub, _create_and_step, loop, coro, context)


def _create_and_step(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], context: contextvars.Context
) -> asyncio.Task[T]:
    """In the dispatcher: a task for ``coro``, its first step taken if no task is current."""
    if current_task(loop) is not None:
        return create_task(loop, coro, context)
    if sys.version_info >= (3, 12) and loop.get_task_factory() is None:
        # any loop, uvloop too
        return asyncio.Task(coro, loop=loop, context=context, eager_start=True)
    task = create_task(loop, coro, context)
    step_now(loop, task)  # 3.10, 3.11: take the step back from the stdlib loop's queue
    return task


def create_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], context: contextvars.Context
) -> asyncio.Task[T]:
    """A task for ``coro`` in ``context`` (``loop.create_task`` takes one from 3.11 on)."""
    if sys.version_info >= (3, 11):
        return loop.create_task(coro, context=context)
    return context.run(loop.create_task, coro)  # the task copies the context it starts in
