"""Portals: green-blocking calls made inline in ``async def`` suspend only that task.

The problem
-----------
Legacy functions block green deep inside (``eventlet.sleep``, a green
socket's ``recv``, an eventlet ``Queue.get``). Async code that calls one
directly runs it on the event loop's own greenlet, which cannot block: the
hub raises :exc:`BlockingCallError`. ``to_async`` solves that with a
greenthread per call; a *portal* solves it without one, for a whole
coroutine: inside it, a green-blocking call suspends the task, and the loop
runs on.

The mechanism (greenback's idea, our code)
------------------------------------------
:func:`portal` runs the coroutine's steps inside a greenlet of its own, the
*portal greenlet*. The task itself runs a *shim* coroutine
(:func:`_run_in_portal`) that drives the real coroutine through that
greenlet:

* ``shim_greenlet``: the greenlet that runs the task's steps (the loop's
  dispatcher). The shim switches into the portal greenlet with one message
  per step and gets back what the step produced.
* ``portal_greenlet``: runs ``coro.send()``/``coro.throw()`` (:func:`_drive`);
  whatever the coroutine awaits is passed back to the shim, which awaits it
  in the task, so asyncio sees an ordinary task.

When green code in the portal greenlet blocks, the hub's ``switch()`` sees a
portal greenlet (the hub's ``portals`` slot) and, instead of going to the hub, hands the
shim a future to await: the task is suspended. The same holds in a greenlet
that the coroutine made and switched to (SQLAlchemy's asyncio extension runs
sync code that way, under ``run_sync`` and in event hooks): the hub finds the
portal among its ancestors, and the shim resumes *that* greenlet
(``PortalState.blocked``), not the portal greenlet. eventlet wakes the greenlet
the way it wakes any greenthread (``greenlet.switch(value)`` or ``throw``),
from the dispatcher, outside the task's step; the portal greenlet then only
settles that future and switches back to the dispatcher. When the task runs
again, the shim switches into the portal greenlet, which returns the value
from ``switch()``: the green call resumes inside the task's step.

Messages from the shim carry :data:`_FROM_SHIM`, so the portal greenlet can
tell them from eventlet's wake-ups, which carry arbitrary values.

Races, and a rejected design
----------------------------
* A task cancelled after eventlet woke its green call with a value but
  before the task resumed: the value (an eventlet ``Queue`` item) was handed
  over already, so the green call returns it and the cancellation is raised
  at the task's next suspension (or the task ends cancelled when it
  returns). A wake-up that raises (a Timeout, a kill) loses to the
  cancellation: ``CancelledError`` is raised at the green call.
* The rejected simpler design, a greenthread per green call (``to_async``),
  costs a greenlet start (6-13 us on CPython 3.11+) per call; a portal costs
  one greenlet per coroutine, and two switches per ``await``.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, ParamSpec, TypeVar

import greenlet

from bridge._core import Hub, PortalLike, current_hub, portal_of, slots_of, switch_to_dispatcher

__all__ = ("has_portal", "portal")

P = ParamSpec("P")
T = TypeVar("T")

# Tags every message from the shim to the portal greenlet.
_FROM_SHIM = object()


def portal(afn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Give a coroutine function a portal: green-blocking calls in it suspend only its task.

    Who calls the result: async code (it is a coroutine function). Inside the
    coroutine, at any depth, green-blocking calls (``eventlet.sleep``, green
    socket I/O, eventlet queues, locks, events) are allowed: each suspends
    the task, not the loop. Cancelling the task, or an ``asyncio.timeout``
    around it, raises ``CancelledError`` at the blocked green call. Awaits
    inside the coroutine behave as usual. Works as a decorator.

    Availability: bridge's hub. Costs: one greenlet per call of the wrapped
    function, two greenlet switches per ``await`` inside it.
    """

    @functools.wraps(afn)
    async def run_with_portal(*args: P.args, **kwargs: P.kwargs) -> T:
        return await _run_in_portal(afn(*args, **kwargs))  # type: ignore[arg-type]

    return run_with_portal


def has_portal() -> bool:
    """True when called (directly or from green code) inside a portal's coroutine."""
    hub = current_hub()
    return portal_of(hub, greenlet.getcurrent()) is not None


class _Yield:
    """Awaitable that yields one value to the task and returns what the task sends."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self.value)


class PortalState(PortalLike):
    """A portal greenlet's link to its shim, kept in the hub's ``portals`` slot."""

    __slots__ = ("blocked", "loop", "shim_greenlet")

    def __init__(self, shim_greenlet: greenlet.greenlet, loop: asyncio.AbstractEventLoop) -> None:
        self.shim_greenlet = shim_greenlet
        self.loop = loop
        # The greenlet whose green call suspended the task, while it is: the
        # portal greenlet or one of its descendants. The shim resumes it.
        self.blocked: greenlet.greenlet | None = None

    def block(self, hub: Hub) -> Any:
        """``Hub.switch()`` for a portal greenlet: suspend the task, not the loop.

        Returns the value eventlet woke the greenlet with; raises what eventlet
        threw into it, or ``CancelledError`` when the task is cancelled meanwhile.
        """
        woken = self.loop.create_future()
        self.blocked = greenlet.getcurrent()
        try:
            message = self.shim_greenlet.switch(("blocked", woken))
        except BaseException as exc:  # eventlet threw into us (a timeout, a kill)
            message = exc
        while True:
            if type(message) is tuple and len(message) == 3 and message[0] is _FROM_SHIM:
                _, kind, value = message
                if kind == "send":  # the task resumed us after `woken` settled
                    return woken.result()
                raise value  # "throw": the task was cancelled while we waited
            # eventlet's wake-up, from the dispatcher: settle, then let the task resume us.
            if not woken.done():
                if isinstance(message, BaseException):
                    woken.set_exception(message)
                else:
                    woken.set_result(message)
            try:
                message = switch_to_dispatcher(hub)
            except BaseException as exc:
                message = exc


async def _run_in_portal(coro: Coroutine[Any, Any, T]) -> T:
    hub = current_hub()
    state = PortalState(greenlet.getcurrent(), asyncio.get_running_loop())
    portal_greenlet = greenlet.greenlet(_drive, parent=state.shim_greenlet)
    slots_of(hub).portals[portal_greenlet] = state
    message: tuple[Any, ...] = (_FROM_SHIM, "start", coro)
    try:
        while True:
            # The task's steps may run in another greenlet than its first did.
            portal_greenlet.parent = state.shim_greenlet = greenlet.getcurrent()
            resume, state.blocked = state.blocked or portal_greenlet, None
            kind, value = resume.switch(message)
            if kind == "return":
                return value
            if kind == "raise":
                raise value.with_traceback(value.__traceback__)
            # "await": the coroutine awaits value; "blocked": green code waits on value.
            try:
                result = await (_Yield(value) if kind == "await" else value)
            except BaseException as exc:
                if kind == "blocked" and _handed_over(value, exc):
                    message = (_FROM_SHIM, "send", value.result())
                    _cancel_again(asyncio.current_task())
                else:
                    message = (_FROM_SHIM, "throw", exc)
            else:
                message = (_FROM_SHIM, "send", result)
    finally:
        del slots_of(hub).portals[portal_greenlet]
        if not portal_greenlet.dead:
            coro.close()


def _handed_over(woken: asyncio.Future[Any], exc: BaseException) -> bool:
    """True when the task was cancelled after eventlet had woken its green call with a value.

    The value (an eventlet ``Queue`` item, say) was handed over and is
    nowhere else now: the green call must return it, and the cancellation
    wait for the task's next suspension (:func:`_cancel_again`).
    """
    return (
        isinstance(exc, asyncio.CancelledError)
        and woken.done()
        and not woken.cancelled()
        and woken.exception() is None
    )


def _cancel_again(task: asyncio.Task[Any] | None) -> None:
    """Re-arm a cancellation the task has just received, for its next suspension."""
    if task is None:
        return
    if sys.version_info >= (3, 11):
        task.uncancel()  # cancel() counts again: asyncio.timeout() must see one request
    task.cancel()


def _drive(message: tuple[Any, ...]) -> tuple[str, Any]:
    """The portal greenlet: run the coroutine one step per message from the shim."""
    _, _, coro = message
    send: Any = None
    throw: BaseException | None = None
    while True:
        try:
            yielded = coro.throw(throw) if throw is not None else coro.send(send)
        except StopIteration as stop:
            return ("return", stop.value)
        except BaseException as exc:
            return ("raise", exc)
        reply = greenlet.getcurrent().parent.switch(("await", yielded))
        _, kind, value = reply
        send, throw = (value, None) if kind == "send" else (None, value)
