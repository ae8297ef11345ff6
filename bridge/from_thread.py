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

How a call travels to the hub's thread, and how each failure gets back to
the caller: ``bridge/_crossings/_from_thread.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bridge import _crossings

__all__ = ("run", "run_green")

_T = TypeVar("_T")


def run(
    afn: Callable[..., Awaitable[_T]],
    *args: Any,
    hub_thread: int | None = None,
    timeout: float | None = None,
) -> _T:
    """Run ``afn(*args)`` as a task on the hub's loop and wait for it.

    Who calls: any OS thread but the hub's. Where ``afn`` runs: a new task on
    the loop of the hub of ``hub_thread`` (default: the main thread); the
    task calls ``afn(*args)`` and awaits what it returns, in a copy of the
    caller's context. Blocks the calling thread; the call progresses while
    the hub's thread runs its loop (owner mode: while green main waits on
    the hub; guest mode: while the async main runs; after ``asyncio.run()``
    returned: once that thread runs green code again).

    :param afn: a coroutine function, or any callable that returns an
        awaitable.
    :param hub_thread: ``threading.get_ident()`` of the thread whose hub runs
        the call.
    :param timeout: seconds to wait; on expiry the task is cancelled and
        :exc:`TimeoutError` raised.
    :return: what the awaitable returned.
    :raises TypeError: ``afn`` is not callable, is a coroutine object
        (pass the function and its arguments), or returned something that
        cannot be awaited (for a plain function, use :func:`run_green`).
    :raises concurrent.futures.CancelledError: the task was cancelled on the
        hub's thread (for instance by ``asyncio.run()`` returning).
    :raises RuntimeError: called on the hub's own thread; that thread has no
        bridge hub or has ended; or the task's loop was closed before the
        task finished.
    :raises TimeoutError: ``timeout`` expired.

    Whatever ``afn`` or its awaitable raise is raised here, with their frames.
    """
    return _crossings.run_as_task(afn, args, hub_thread, timeout)


def run_green(
    fn: Callable[..., _T],
    *args: Any,
    hub_thread: int | None = None,
    timeout: float | None = None,
) -> _T:
    """Run ``fn(*args)`` in a new greenthread of the hub and wait for it.

    Who calls: any OS thread but the hub's. Where ``fn`` runs: a new
    greenthread in the hub of ``hub_thread`` (default: the main thread), in
    a copy of the caller's context. Blocks the calling thread; the call
    progresses while the hub's thread runs its loop (see :func:`run`).

    :param fn: a plain (green) function.
    :param hub_thread: ``threading.get_ident()`` of the thread whose hub runs
        the call.
    :param timeout: seconds to wait; on expiry the greenthread is killed and
        :exc:`TimeoutError` raised.
    :return: what ``fn`` returned.
    :raises TypeError: ``fn`` is not callable, or is a coroutine function or
        returned a coroutine (use :func:`run`).
    :raises concurrent.futures.CancelledError: the greenthread was killed on
        the hub's thread.
    :raises RuntimeError: called on the hub's own thread; that thread has no
        bridge hub or has ended.
    :raises TimeoutError: ``timeout`` expired.

    Whatever ``fn`` raises is raised here, with its frames.
    """
    return _crossings.run_in_greenthread(fn, args, hub_thread, timeout)
