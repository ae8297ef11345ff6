"""Hand work to a hub's thread from another OS thread, and wait for the result.

For code that runs in a real OS thread (an ``eventlet.tpool`` worker, a
``loop.run_in_executor`` job, a plain ``threading.Thread``) and must reach
the green or the async world of the thread that runs the hub::

    result = bridge.from_thread.run(fetch_usage, project)       # coroutine function
    result = bridge.from_thread.run_green(legacy_lookup, key)   # green function

Both block the calling OS thread (not the hub's) until the callee is done,
then return its result or raise its exception. The callee runs in a copy of
the caller's ``contextvars`` context. The target is the hub of the main
thread unless ``hub_thread`` names another thread (``threading.get_ident()``
of the thread that runs the hub).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import greenlet
from eventlet import patcher

from bridge import _adapters, _carriers
from bridge._core import _hub

__all__ = ("run", "run_green")

_T = TypeVar("_T")

_threading = patcher.original("threading")

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


def run(
    afn: Callable[..., Awaitable[_T]],
    *args: Any,
    hub_thread: int | None = None,
    timeout: float | None = None,
) -> _T:
    """Run ``afn(*args)`` as a task on the hub's loop and wait for it.

    Who calls: any OS thread but the hub's. Where ``afn`` runs: a new task on
    the loop of the hub of ``hub_thread`` (default: the main thread).

    :param timeout: seconds to wait; on expiry the task is cancelled and
        :exc:`TimeoutError` raised.
    :raises RuntimeError: called on the hub's own thread, or that thread has
        no bridge hub.
    """

    def launch(hub: _hub.Hub, context: contextvars.Context, outcome: _Outcome) -> _Stop:
        task: asyncio.Task[Any] = _adapters._create_task(hub.loop, afn(*args), context)  # type: ignore[arg-type]
        task.add_done_callback(lambda done: _transfer(done, outcome))
        return task.cancel

    return _call("run", hub_thread, timeout, launch)


def run_green(
    fn: Callable[..., _T],
    *args: Any,
    hub_thread: int | None = None,
    timeout: float | None = None,
) -> _T:
    """Run ``fn(*args)`` in a new greenthread of the hub and wait for it.

    Who calls: any OS thread but the hub's. Where ``fn`` runs: a new
    greenthread in the hub of ``hub_thread`` (default: the main thread).

    :param timeout: seconds to wait; on expiry the greenthread is killed and
        :exc:`TimeoutError` raised.
    :raises RuntimeError: called on the hub's own thread, or that thread has
        no bridge hub.
    """

    def launch(hub: _hub.Hub, context: contextvars.Context, outcome: _Outcome) -> _Stop:
        carrier = _carriers.take_carrier(hub)

        def done(result: Any) -> None:
            if isinstance(result, _carriers.Failed):
                outcome.set_exception(result.exception)
            else:
                outcome.set_result(result)

        def on_death() -> None:  # killed before it finished
            if not outcome.done():
                outcome.set_exception(greenlet.GreenletExit())

        def stop() -> None:  # unless it finished: the carrier may run another call by now
            if not outcome.done():
                carrier.kill()

        carrier.on_death = on_death
        carrier.run_job(fn, args, {}, done, context)
        return stop

    return _call("run_green", hub_thread, timeout, launch)


_Outcome = concurrent.futures.Future
_Stop = Callable[[], object]


def _call(
    name: str,
    hub_thread: int | None,
    timeout: float | None,
    launch: Callable[[_hub.Hub, contextvars.Context, _Outcome[Any]], _Stop],
) -> Any:
    """Have ``launch`` start the work in the hub's dispatcher; wait for its outcome."""
    hub = _target(hub_thread, name)
    context = contextvars.copy_context()
    outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()
    stops: list[_Stop] = []

    def start() -> None:  # in the hub's dispatcher
        if outcome.set_running_or_notify_cancel():
            stops.append(launch(hub, context, outcome))

    hub.submit_threadsafe(start)
    try:
        return outcome.result(timeout)
    except concurrent.futures.TimeoutError:
        if not outcome.cancel():  # started: stop it where it runs
            hub.submit_threadsafe(lambda: stops[0]())
        raise TimeoutError(f"no result from the hub's thread within {timeout} s") from None


def _target(hub_thread: int | None, name: str) -> _hub.Hub:
    thread = _threading.main_thread().ident if hub_thread is None else hub_thread
    if thread == _threading.get_ident():
        raise RuntimeError(SAME_THREAD_ADVICE.format(name=name))
    hub = _hub.hub_of_thread(thread) if thread is not None else None
    if hub is None:
        raise RuntimeError(NO_HUB_ADVICE.format(name=name, thread=thread))
    return hub


def _transfer(done: asyncio.Future[_T], outcome: concurrent.futures.Future[_T]) -> None:
    if outcome.done():
        return
    if done.cancelled():
        outcome.cancel()
    elif done.exception() is not None:
        outcome.set_exception(done.exception())
    else:
        outcome.set_result(done.result())
