"""Async code calling green code: ``to_async``, and the call object it waits on.

``await to_async(fn)(*args)`` runs the green ``fn`` on a *carrier* (a pooled
greenthread, ``_carriers``) and suspends the calling task on a future that
the carrier settles when ``fn`` returns or raises. The mirror direction,
green code waiting on a task, is ``_green_to_async``; the package docstring
sets the two side by side.

How a call goes::

    task                              carrier (a greenthread)
    ----                              -----------------------
    _GreenCall.start  -- run_job -->  fn(*args) runs; blocks green or ends
    (fn ended already: no await)      done(outcome): outcome set, `finished`
    _GreenCall.finish: await            settled if the task waits
      `finished`

When the task's step runs in the dispatcher (the usual case), ``fn`` starts
inside that step: it runs up to its first green-blocking call before the
``await`` yields, and a ``fn`` that never blocks costs no loop iteration.
Elsewhere (a step that a portal greenlet runs, ``_portal``) the carrier
starts from a zero-delay hub timer instead.

Cancelling the task while ``fn`` runs kills the carrier (:func:`_kill`) and
waits until it is dead, since its ``finally`` clauses may block green; the
task then ends cancelled.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from bridge._core import current_hub, in_dispatcher
from bridge._crossings._carriers import Carrier, Failed, take_carrier

__all__ = ("to_async",)

P = ParamSpec("P")
T = TypeVar("T")


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
    ``bridge/_crossings/_carriers.py``).

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


# _GreenCall.outcome before the carrier reported (a Failed, or fn's result, may be None).
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
