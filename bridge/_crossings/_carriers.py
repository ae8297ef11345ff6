"""Reusable greenthreads for ``to_async`` (and ``from_thread.run_green``): one call after
another, each seeing a fresh greenthread.

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
  call starts with none. :func:`_watch_green_locals` records which locals a
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
        # GreenThread.__init__ would make the greenlet run GreenThread.main.
        greenlet.greenlet.__init__(self, self._serve, hub.greenlet)
        _start_fresh(self)
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
        # it is a fresh one again for the next call.
        _exit_and_start_fresh(self, outcome, outcome.exception if type(outcome) is Failed else None)
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


def _touched(carrier: Carrier, greens: Any) -> None:
    carrier.touched_locals.append(greens)


# -- eventlet's internals ------------------------------------------------------------
# The only lines of bridge._crossings that know eventlet's private names: what
# GreenThread.__init__ and GreenThread.main keep about a greenthread's exit
# (its exit event, its links), and how eventlet.corolocal keeps a local's
# values per greenthread. They belong in bridge._core._hooks, whose table
# checks such names when the hub is imported; fenced here until they move.


def _start_fresh(gt: greenthread.GreenThread) -> None:
    """What ``GreenThread.__init__`` sets up: an exit event not sent, no links."""
    gt._exit_event = event.Event()
    gt._resolving_links = False
    gt._exit_funcs = None


def _exit_and_start_fresh(
    gt: greenthread.GreenThread, result: Any, exception: BaseException | None
) -> None:
    """What ``GreenThread.main`` does when its function ends (send the exit event,
    call the links); then a new exit event and no links, as :func:`_start_fresh`
    sets up (``_resolve_links`` leaves ``_resolving_links`` false).

    Most calls had neither waiters nor links: their untouched event serves the
    next call.
    """
    exit_event = gt._exit_event
    if exit_event._waiters or gt._exit_funcs:
        if exception is not None:
            exit_event.send_exception(exception)
        else:
            exit_event.send(result)
        gt._resolve_links()
        gt._exit_event = event.Event()
        gt._exit_funcs = None


def _watch_green_locals(cls: type, first_use: Callable[[Any, Any], None]) -> None:
    """Call ``first_use(gt, greens)`` when a greenthread of class ``cls`` first
    uses an ``eventlet.corolocal.local``; ``greens`` maps greenthreads to their
    values of that local, and ``gt``'s entry is about to be made. Once per process.
    """
    original_patch = corolocal._patch

    def _patch(thrl: Any) -> None:
        current = greenlet.getcurrent()
        if isinstance(current, cls):
            greens = object.__getattribute__(thrl, "_local__greens")
            if current not in greens:
                first_use(current, greens)
        original_patch(thrl)

    corolocal._patch = _patch


_watch_green_locals(Carrier, _touched)
