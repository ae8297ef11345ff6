"""Reusable greenthreads for ``to_async``: one call after another, each seeing a fresh one.

Why: on CPython 3.11+ starting a greenlet costs 6-13 us (each maps a fresh
frame-stack chunk; 1 us on 3.10), more than the rest of a crossing. So
``to_async`` runs calls on *carriers*: started ``GreenThread`` objects that
park in a pool between calls.

What the callee must still see is a greenthread of its own, so a carrier
resets, after each call, everything eventlet keys by greenthread:

* its exit event and links: ``getcurrent().link(f)`` fires when the *call*
  ends, and ``getcurrent().wait()`` returns the call's result, as for a
  greenthread that ran just that call;
* green locals (``eventlet.corolocal.local``, which is ``threading.local``
  under ``monkey_patch``): the values the call set are dropped, so the next
  call starts with none. :func:`_patch_corolocal` records which locals a
  carrier touched, so the reset does not scan every local in the process;
* its ``contextvars`` context: each call runs in the copy made for it.

What stays the same across calls is ``getcurrent()``'s identity (and
``id()``); code that compares greenthread identities across calls (a lock
left held by an earlier call) would see one thread.

A carrier that is killed (its task cancelled) dies as any greenthread does
and is not reused. The pool is per hub and small (``_POOL_SIZE``): carriers
above it are not kept.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import greenlet
from eventlet import corolocal, event, greenthread

from bridge._core import anchor_of, slots_of

__all__ = ("Carrier", "Failed", "take_carrier")

_POOL_SIZE = 64


class Carrier(greenthread.GreenThread):
    """A GreenThread that runs jobs one after another (see the module docstring).

    Invariant: a carrier is in its hub's pool exactly while it is parked
    between jobs (``self.job`` is None).
    """

    def __init__(self, hub: Any) -> None:
        greenlet.greenlet.__init__(self, self._serve, hub.greenlet)
        self._exit_event = event.Event()
        self._resolving_links = False
        self._exit_funcs = None
        self.hub = hub
        self.job: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], Any] | None = None
        self.touched_locals: list[Any] = []
        self.on_death: Callable[[], None] | None = None

    def run_job(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        done: Callable[[Any], None],
        context: contextvars.Context,
    ) -> None:
        """Start a job (from the dispatcher): runs until it blocks or ends."""
        self.job = (fn, args, kwargs, done)
        self.gr_context = context
        self.switch()

    def _serve(self) -> None:
        try:
            while True:
                job = self.job
                if job is None:  # a spurious wake-up while parked
                    self.hub.switch()
                    continue
                fn, args, kwargs, done = job
                try:
                    outcome = fn(*args, **kwargs)
                except greenlet.GreenletExit as exc:
                    if self.on_death is None:
                        # Killed by some other green code, not by the caller
                        # giving up (that one waits for on_death): the call
                        # ends with that, or the caller would wait forever.
                        failed = Failed(exc)
                        self._end_call(failed)
                        done(failed)
                    raise
                except BaseException as exc:
                    outcome = Failed(exc)
                self._end_call(outcome)
                done(outcome)
                pool = slots_of(self.hub).carriers
                if len(pool) < _POOL_SIZE:
                    pool.append(self)
                self._park()
        finally:
            if self.on_death is not None:
                self.on_death()

    def _park(self) -> None:
        """Wait for run_job: straight to the dispatcher, as ``Hub.switch`` would go.

        ``Hub.switch``'s other cases cannot apply to a carrier between jobs (a
        portal greenlet, green main, the dispatcher itself); only its parent
        may have changed, if a job made it the dispatcher (``asyncio.run``).
        """
        anchor = anchor_of(self.hub)
        me: greenlet.greenlet = self
        if me.parent is not anchor:
            me.parent = anchor
        anchor.switch()

    def _end_call(self, outcome: Any) -> None:
        self.job = None
        self.on_death = None
        # As if the greenthread had exited: links fire, wait() answers; then
        # it is a fresh one again for the next call. Most calls had neither
        # waiters nor links: their untouched event serves the next call.
        exit_event = self._exit_event
        if exit_event._waiters or self._exit_funcs:
            if type(outcome) is Failed:
                exit_event.send_exception(outcome.exception)
            else:
                exit_event.send(outcome)
            self._resolve_links()
            self._exit_event = event.Event()
            self._exit_funcs = None
        if self.touched_locals:
            for greens in self.touched_locals:
                greens.pop(self, None)
            self.touched_locals.clear()
        self.gr_context = None  # type: ignore[assignment]  # greenlet: a fresh context on use


class Failed:
    """A job's outcome when its function raised: handed to ``done``, not raised,
    so that the hub does not also print it as an unhandled greenthread error."""

    __slots__ = ("exception",)

    def __init__(self, exception: BaseException) -> None:
        self.exception = exception


def take_carrier(hub: Any) -> Carrier:
    """A parked carrier from ``hub``'s pool, or a new one."""
    pool = slots_of(hub).carriers
    while pool:
        carrier = pool.pop()
        if not carrier.dead:
            return carrier
    return Carrier(hub)


_original_patch = corolocal._patch


def _patch_corolocal(thrl: Any) -> None:
    current = greenlet.getcurrent()
    if isinstance(current, Carrier):
        greens = object.__getattribute__(thrl, "_local__greens")
        if current not in greens:
            current.touched_locals.append(greens)
    _original_patch(thrl)


corolocal._patch = _patch_corolocal
