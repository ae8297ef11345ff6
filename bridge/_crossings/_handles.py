"""Each world's handle on the other's work.

A greenthread seen from async code needs nothing new: eventlet's
``GreenThread`` is awaitable on bridge's hub, and cancelling the awaiting
task kills it. A task seen from green code is a :class:`TaskHandle`, made by
:func:`spawn_async`: it speaks eventlet's language (``wait``, ``kill``,
``link``, ``dead``) so that legacy code that manages greenthreads can manage
migrated work unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, final

import greenlet

from bridge._core import Hub, current_hub, in_dispatcher
from bridge._crossings._waiter import GreenWaiter

__all__ = ("TaskHandle", "spawn_async")

T = TypeVar("T")


def spawn_async(afn: Callable[..., Awaitable[T]], *args: Any) -> TaskHandle[T]:
    """Start ``afn(*args)`` as a task on the hub's loop; return a green handle to it.

    Who calls: green code (a greenthread, green main), or async code that
    wants a green handle. Where ``afn`` runs: a new task on the hub's loop, in
    a copy of the caller's ``contextvars`` context. Not a schedule point: the
    task starts at the loop's next iteration, like ``eventlet.spawn``.
    """
    hub = current_hub()
    task: asyncio.Task[T] = hub.loop.create_task(afn(*args))  # type: ignore[arg-type]
    return TaskHandle._make(hub, task)


@final
class TaskHandle(Generic[T]):
    """An asyncio task, with the methods of an eventlet ``GreenThread``.

    Made by :func:`spawn_async`; ``task`` is the asyncio task itself.
    """

    __slots__ = ("_hub", "_links", "task")

    _hub: Hub
    task: asyncio.Task[T]
    _links: dict[tuple[Any, ...], Callable[[asyncio.Task[T]], None]]

    def __init__(self) -> None:
        raise TypeError("TaskHandle has no public constructor; use bridge.spawn_async()")

    @classmethod
    def _make(cls, hub: Hub, task: asyncio.Task[T]) -> TaskHandle[T]:
        self = object.__new__(cls)
        self._hub, self.task, self._links = hub, task, {}
        return self

    def __repr__(self) -> str:
        state = "dead" if self.task.done() else "running"
        return f"<bridge.TaskHandle {state} {self.task.get_name()!r}>"

    @property
    def dead(self) -> bool:
        """True once the task has finished, one way or another."""
        return self.task.done()

    def wait(self) -> T:
        """Block the calling greenthread until the task is done; return its result.

        Raises the task's exception, or ``GreenletExit`` if it was cancelled
        (as ``wait()`` does for a killed greenthread). An interruption (an
        ``eventlet.Timeout``) leaves the task running.
        """
        if not self.task.done():
            waiter = GreenWaiter(self._hub, greenlet.getcurrent(), self.task.get_loop())
            self.task.add_done_callback(waiter.settle_from)
            try:
                waiter.wait_for(self.task, cancel_on_interrupt=False)
            except asyncio.CancelledError:
                pass
            finally:
                self.task.remove_done_callback(waiter.settle_from)
        if self.task.cancelled():
            raise greenlet.GreenletExit()
        return self.task.result()

    def kill(self) -> None:
        """Cancel the task and, from green code, wait until it has finished.

        Called on the event loop itself (async code) it only cancels.
        """
        self.task.cancel()
        if not in_dispatcher(self._hub):
            try:
                self.wait()
            except BaseException:
                pass

    def cancel(self) -> None:
        """Cancel the task without waiting, started or not.

        Unlike eventlet's ``GreenThread.cancel()``, which does nothing to a
        greenthread that has started: a task has no point at which it stops
        being cancellable.
        """
        self.task.cancel()

    def link(self, func: Callable[..., object], *curried_args: Any, **curried_kwargs: Any) -> None:
        """Call ``func(handle, *curried_args, **curried_kwargs)`` when the task is done.

        ``func`` runs in the hub's dispatcher, as eventlet's link callbacks do.
        """

        def call(_: asyncio.Task[T]) -> None:
            func(self, *curried_args, **curried_kwargs)

        self._links[(func, curried_args, tuple(sorted(curried_kwargs.items())))] = call
        self.task.add_done_callback(call)

    def unlink(
        self, func: Callable[..., object], *curried_args: Any, **curried_kwargs: Any
    ) -> bool:
        """Remove a callback added by :meth:`link`; True if it was there."""
        key = (func, curried_args, tuple(sorted(curried_kwargs.items())))
        call = self._links.pop(key, None)
        if call is None:
            return False
        self.task.remove_done_callback(call)
        return True
