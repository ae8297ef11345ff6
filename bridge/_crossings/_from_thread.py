"""The machinery behind ``bridge.from_thread``: a call handed from an OS thread to a hub.

The public module holds ``run`` and ``run_green`` and their documentation;
they hand over here. :func:`run_as_task` runs a coroutine function as a
task, :func:`run_in_greenthread` a plain function on a carrier
(``_carriers``); each checks its arguments, then :func:`_call` hands the
work to the hub's thread and waits for it.

How a call travels, and how each failure gets back
--------------------------------------------------
The caller hands ``start`` to the hub's inbox (``Hub.submit_threadsafe``)
and waits on a :class:`concurrent.futures.Future`, the *outcome*, which only
the hub's side settles, except for the caller giving up (a timeout, or a hub
that can no longer run the call). The rule this module keeps: **whatever
happens on the hub's side ends in the outcome**, because an exception that
escapes there is only printed by the hub, and the caller would wait forever:

* ``start`` runs in the hub's dispatcher; whatever it raises (a full carrier
  pool, a closed loop) settles the outcome.
* ``run``'s task runs :func:`_await_in_task`, which calls ``afn(*args)``
  itself: a function that raises before it returns a coroutine, or returns
  something that cannot be awaited, fails the task's first step, not the
  dispatcher. The outcome is settled by the task's last step, not by a done
  callback: a done callback is scheduled with ``call_soon`` and is lost if
  the loop closes before it runs.
* A task cancelled by someone else (``asyncio.run()`` cancels what is left
  when its main returns) or a greenthread killed by other green code ends in
  :exc:`concurrent.futures.CancelledError`: an ``asyncio.CancelledError`` or
  ``GreenletExit`` is a ``BaseException``, which a worker thread's
  ``except Exception`` would not stop.
* What the hub's side can never report -- a task left pending on a loop that
  was closed, a hub whose thread has ended -- the caller sees for itself: it
  waits in slices of ``_POLL`` seconds and looks (:func:`_stranded`) between
  them. A hub whose loop is closed or not running is not such a case: the
  call waits in its inbox for the next loop the hub runs.

Rejected: checking ``inspect.iscoroutinefunction(afn)`` up front. A
``functools.partial``, a callable object or a plain function that returns
an awaitable are all valid ``afn``; only the call can tell.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import reprlib
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from eventlet import patcher

from bridge._core import Hub, hub_of_thread
from bridge._crossings._carriers import Failed, take_carrier
from bridge._crossings._green_to_async import create_task

__all__ = ("run_as_task", "run_in_greenthread")

_T = TypeVar("_T")

_threading = patcher.original("threading")

# Seconds between two looks at the hub's state while the caller waits (see
# the module docstring); a waiting thread costs one wake-up per _POLL.
_POLL = 0.1

SAME_THREAD_ADVICE = (
    "bridge.from_thread.{name}() was called on the hub's own thread, where waiting for the "
    "hub would deadlock. There, use `await` (async code), bridge.await_() (green code for a "
    "coroutine) or call the green function directly."
)
NO_HUB_ADVICE = (
    "bridge.from_thread.{name}(): thread {thread} has no bridge hub yet. Run green code in "
    "that thread first (with EVENTLET_HUB=bridge.hub; in an async main, e.g. `await "
    "eventlet.spawn(lambda: None)`), or pass hub_thread= the threading.get_ident() of the "
    "thread that runs the hub."
)
HUB_THREAD_ADVICE = (
    "bridge.from_thread.{name}(): hub_thread= takes a thread id (threading.get_ident() in that "
    "thread, or its Thread object's .ident), got {what!r}."
)
THREAD_ENDED_ADVICE = (
    "bridge.from_thread.{name}(): thread {thread}, whose hub was to run the call, has ended; "
    "nothing runs there any more. Pass hub_thread= the threading.get_ident() of a thread that "
    "runs a hub (the default is the main thread)."
)
TASK_LOOP_CLOSED_ADVICE = (
    "bridge.from_thread.run({fn}): the loop the task ran on ({loop!r}) was closed before the "
    "task finished, so it never will. Hand work to a loop only while it runs, and close loops "
    "the way asyncio.run() does, cancelling their tasks first."
)
NOT_CALLABLE_ADVICE = (
    "bridge.from_thread.{name}() takes a {kind} and its arguments, got {what!r} ({type}), "
    "which is not callable."
)
COROUTINE_OBJECT_ADVICE = (
    "bridge.from_thread.run() takes a coroutine function and its arguments, got a coroutine "
    "object ({what!r}; closed now): call run(afn, *args), not run(afn(*args))."
)
COROUTINE_FUNCTION_ADVICE = (
    "bridge.from_thread.run_green() runs a plain function in a greenthread, but {fn} is a "
    "coroutine function; use bridge.from_thread.run({fn}, *args) to run it as a task."
)
NOT_AWAITABLE_ADVICE = (
    "bridge.from_thread.run({fn}): {fn}(...) returned {value} ({type}), not an awaitable. "
    "run() takes a coroutine function (async def) and awaits what it returns; for a plain "
    "function use bridge.from_thread.run_green({fn}, *args)."
)
RETURNED_COROUTINE_ADVICE = (
    "bridge.from_thread.run_green({fn}): {fn}(...) returned a coroutine, which run_green() does "
    "not await (it has been closed); for a coroutine function use "
    "bridge.from_thread.run({fn}, *args)."
)
TASK_CANCELLED = (
    "bridge.from_thread.run({fn}): the task was cancelled on the hub's thread before it "
    "finished, by code there or by its loop shutting down (asyncio.run() cancels the tasks "
    "left when its main returns)."
)
GREENTHREAD_KILLED = (
    "bridge.from_thread.run_green({fn}): the greenthread running it was killed on the hub's "
    "thread before it finished."
)


def run_as_task(
    afn: Callable[..., Awaitable[_T]],
    args: tuple[Any, ...],
    hub_thread: int | None,
    timeout: float | None,
) -> _T:
    """``bridge.from_thread.run``: ``afn(*args)`` as a task on the hub's loop; wait for it."""
    if inspect.iscoroutine(afn):
        what = repr(afn)
        afn.close()  # never awaited: no RuntimeWarning about it later
        raise TypeError(COROUTINE_OBJECT_ADVICE.format(what=what))
    _check_callable("run", "coroutine function", afn)

    def launch(hub: Hub, context: contextvars.Context, call: _Call) -> None:
        coroutine = _await_in_task(afn, args, call)
        try:
            task = create_task(hub.loop, coroutine, context)
        except BaseException:
            coroutine.close()
            raise
        call.task_loop = task.get_loop()

        def stop() -> None:  # see _Call.stop
            if not task.done() and not task.get_loop().is_closed():
                task.cancel()

        call.stop = stop

    return _call("run", afn, hub_thread, timeout, launch)


def run_in_greenthread(
    fn: Callable[..., _T],
    args: tuple[Any, ...],
    hub_thread: int | None,
    timeout: float | None,
) -> _T:
    """``bridge.from_thread.run_green``: ``fn(*args)`` in a greenthread of the hub; wait for it."""
    _check_callable("run_green", "function", fn)
    if inspect.iscoroutinefunction(fn):
        raise TypeError(COROUTINE_FUNCTION_ADVICE.format(fn=_name(fn)))

    def launch(hub: Hub, context: contextvars.Context, call: _Call) -> None:
        carrier = take_carrier(hub)

        def done(result: Any) -> None:
            if isinstance(result, Failed):
                call.finish_with(result.exception)
            elif inspect.iscoroutine(result):
                result.close()  # never awaited: no RuntimeWarning about it later
                call.finish_with(TypeError(RETURNED_COROUTINE_ADVICE.format(fn=_name(call.fn))))
            else:
                call.finish(result)

        def on_death() -> None:  # killed before it finished
            if not call.finished:
                killed = GREENTHREAD_KILLED.format(fn=_name(call.fn))
                call.finish_with(concurrent.futures.CancelledError(killed))

        def stop() -> None:  # unless it finished: the carrier may run another call by now
            if not call.finished:
                carrier.kill()

        carrier.on_death = on_death
        call.stop = stop
        carrier.run_job(fn, args, {}, done, context)

    return _call("run_green", fn, hub_thread, timeout, launch)


class _Call:
    """One call handed from a thread to a hub: what the two sides share.

    Invariant: ``outcome`` is settled once. The hub's side settles it with
    the callee's result (:meth:`finish`, :meth:`finish_with`, which also set
    ``finished``); the caller, giving up, cancels it if the hub has not
    started the call (keeping the reason in ``reason``) or fails it with the
    reason (:func:`_give_up`). Whichever comes first wins.
    """

    __slots__ = ("finished", "fn", "name", "outcome", "reason", "stop", "task_loop")

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        self.name = name
        self.fn = fn
        self.outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()
        # True once the callee's own result is known (set on the hub's side).
        self.finished = False
        # Why the caller gave up before the call started (outcome cancelled).
        self.reason: BaseException | None = None
        # Set by launch, called in the dispatcher when the caller gives up:
        # stops the callee if it is still running.
        self.stop: Callable[[], None] | None = None
        # run: the loop the task runs on, for the caller to watch.
        self.task_loop: asyncio.AbstractEventLoop | None = None

    def finish(self, result: Any) -> None:
        self.finished = True
        try:
            self.outcome.set_result(result)
        except concurrent.futures.InvalidStateError:
            pass  # the caller gave up first

    def finish_with(self, exception: BaseException) -> None:
        self.finished = True
        try:
            self.outcome.set_exception(exception)
        except concurrent.futures.InvalidStateError:
            pass  # the caller gave up first


async def _await_in_task(afn: Callable[..., Any], args: tuple[Any, ...], call: _Call) -> None:
    """The task of :func:`run`: call ``afn``, await its result, settle the outcome.

    Settles the outcome on every way out, and so never fails itself (except
    for what must go on unwinding the loop), or asyncio would report an
    exception nobody retrieved.
    """
    try:
        awaitable = afn(*args)
        if not inspect.isawaitable(awaitable):
            raise TypeError(
                NOT_AWAITABLE_ADVICE.format(
                    fn=_name(call.fn), value=reprlib.repr(awaitable), type=type(awaitable).__name__
                )
            )
        result = await awaitable
    except asyncio.CancelledError as exc:
        # By code on the hub's thread; or by the caller giving up, who then
        # settled the outcome first.
        cancelled = concurrent.futures.CancelledError(TASK_CANCELLED.format(fn=_name(call.fn)))
        cancelled.__cause__ = exc
        call.finish_with(cancelled)
        raise
    except GeneratorExit:
        # The coroutine was closed unfinished: its task was dropped, its loop
        # closed. The caller usually sees that first (_stranded).
        message = TASK_LOOP_CLOSED_ADVICE.format(fn=_name(call.fn), loop=call.task_loop)
        call.finish_with(RuntimeError(message))
        raise
    except Exception as exc:
        call.finish_with(exc)
    except BaseException as exc:  # KeyboardInterrupt, SystemExit: the caller learns, the loop too
        call.finish_with(exc)
        raise
    else:
        call.finish(result)


def _call(
    name: str,
    fn: Callable[..., Any],
    hub_thread: int | None,
    timeout: float | None,
    launch: Callable[[Hub, contextvars.Context, _Call], None],
) -> Any:
    """Have ``launch`` start the work in the hub's dispatcher; wait for its outcome."""
    hub = _target(hub_thread, name)
    context = contextvars.copy_context()
    call = _Call(name, fn)

    def start() -> None:  # in the hub's dispatcher
        if not call.outcome.set_running_or_notify_cancel():
            return  # the caller gave up before the hub got here
        try:
            launch(hub, context, call)
        except Exception as exc:
            call.finish_with(exc)
        except BaseException as exc:  # KeyboardInterrupt, SystemExit, a retiring hub
            call.finish_with(exc)
            raise

    try:
        hub.submit_threadsafe(start)
    except RuntimeError:
        # The hub is on a closed loop (its thread's async main has returned).
        # start is in its inbox, and runs when the hub runs a loop again.
        pass
    return _wait(hub, call, timeout)


def _wait(hub: Hub, call: _Call, timeout: float | None) -> Any:
    """Wait for the outcome; give up on a timeout or when the hub can never finish the call."""
    outcome = call.outcome
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
        try:
            outcome.exception(max(left, 0))  # waits; the callee's exception is not raised here
            break
        except concurrent.futures.TimeoutError:
            pass
        problem = _stranded(hub, call)
        if problem is not None:
            _give_up(hub, call, RuntimeError(problem))
            break
        if deadline is not None and time.monotonic() >= deadline:
            _give_up(hub, call, TimeoutError(f"no result from the hub's thread within {timeout} s"))
            break
    if outcome.cancelled():
        raise call.reason  # type: ignore[misc]
    # result(), not a TimeoutError caught around a timed result(): the
    # callee's own TimeoutError must not pass for ours.
    return outcome.result()


def _give_up(hub: Hub, call: _Call, reason: BaseException) -> None:
    """The caller stops waiting: settle the outcome with ``reason``, stop the callee."""
    if call.outcome.cancel():  # not started: it never will be
        call.reason = reason
        return
    try:
        call.outcome.set_exception(reason)
    except concurrent.futures.InvalidStateError:
        return  # it finished meanwhile: the caller gets that

    def stop() -> None:  # in the dispatcher: after start, which set call.stop
        if call.stop is not None:
            call.stop()

    try:
        hub.submit_threadsafe(stop)
    except RuntimeError:
        pass  # the hub's loop is closed: stop runs when the hub has a loop again


def _stranded(hub: Hub, call: _Call) -> str | None:
    """Why the hub can never finish the call, or None while it still may.

    Not a reason: the hub's loop not running, or closed. The hub's thread may
    be busy, or between two ``asyncio.run()`` calls; the hub takes its inbox
    (and its greenthreads) to the next loop it runs. A task cannot move: its
    loop closed, it is lost. Read from the caller's thread: ``is_closed()``
    and ``sys._current_frames()`` are safe there.
    """
    thread = hub.thread_id
    if thread not in sys._current_frames():
        return THREAD_ENDED_ADVICE.format(name=call.name, thread=thread)
    task_loop = call.task_loop
    if task_loop is not None and task_loop.is_closed():
        return TASK_LOOP_CLOSED_ADVICE.format(fn=_name(call.fn), loop=task_loop)
    return None


def _target(hub_thread: int | None, name: str) -> Hub:
    if hub_thread is not None and (not isinstance(hub_thread, int) or isinstance(hub_thread, bool)):
        raise TypeError(HUB_THREAD_ADVICE.format(name=name, what=hub_thread))
    thread = _threading.main_thread().ident if hub_thread is None else hub_thread
    if thread == _threading.get_ident():
        raise RuntimeError(SAME_THREAD_ADVICE.format(name=name))
    hub = hub_of_thread(thread) if thread is not None else None
    if hub is None:
        raise RuntimeError(NO_HUB_ADVICE.format(name=name, thread=thread))
    if thread not in sys._current_frames():
        raise RuntimeError(THREAD_ENDED_ADVICE.format(name=name, thread=thread))
    return hub


def _check_callable(name: str, kind: str, fn: object) -> None:
    if not callable(fn):
        raise TypeError(
            NOT_CALLABLE_ADVICE.format(name=name, kind=kind, what=fn, type=type(fn).__name__)
        )


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
