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
  call starts with none. ``watch_green_locals`` (the core's hooks) records which locals a
  carrier touched, so the reset does not scan every local in the process;
* its ``contextvars`` context: each call runs in the copy made for it.

What stays the same across calls is ``getcurrent()``'s identity (and
``id()``); code that compares greenthread identities across calls (a lock
left held by an earlier call) would see one thread.

A carrier that is killed (its task cancelled) dies as any greenthread does
and is not reused. The pool is per hub and bounded (``_POOL_SIZE``): a
carrier that finds it full after its call ends as a greenthread does, for
a parked greenlet is never collected (its frames are invisible to the
garbage collector) and would keep its last call alive for good.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Callable
from typing import Any

import greenlet
from eventlet import greenthread

from bridge._core import (
    anchor_of,
    exit_and_start_fresh,
    slots_of,
    start_fresh,
    watch_green_locals,
)

__all__ = ("Carrier", "Failed", "take_carrier")

# Parked carriers cost ~10 KB each; beyond this many calls at once, new carriers
# end with their call (starting one costs 6-13 us on 3.11+).
_POOL_SIZE = 256


class Carrier(greenthread.GreenThread):
    """A GreenThread that runs jobs one after another (see the module docstring).

    Invariant: a carrier is in its hub's pool exactly while it is parked
    between jobs (``self.job`` is None).
    """

    def __init__(self, hub: Any) -> None:
        # GreenThread.__init__ would make the greenlet run GreenThread.main.
        greenlet.greenlet.__init__(self, self._serve, hub.greenlet)
        start_fresh(self)
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
            while self._run_job():
                self._park()
        finally:
            if self.on_death is not None:
                self.on_death()
        self._home()  # ending, too, goes to the dispatcher

    def _run_job(self) -> bool:
        """Run the job given, if any; True to park for the next one, False to exit.

        A method of its own so that its frame, which refers to the call's
        function, arguments and outcome, is gone while the carrier parks.
        """
        job = self.job
        if job is None:  # a spurious wake-up while parked
            return True
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
        if len(pool) >= _POOL_SIZE:
            # Nothing would ever resume a carrier left out of the pool, and a
            # parked greenlet's frames are invisible to the garbage collector:
            # it ends here, as a greenthread does after its one call.
            return False
        pool.append(self)
        return True

    def _park(self) -> None:
        """Wait for run_job: straight to the dispatcher, as ``Hub.switch`` would go.

        ``Hub.switch``'s other cases cannot apply to a carrier between jobs (a
        portal greenlet, green main, the dispatcher itself); only its parent
        may have changed, if a job made it the dispatcher (``asyncio.run``).
        """
        self._home().switch()

    def _home(self) -> greenlet.greenlet:
        anchor = anchor_of(self.hub)
        me: greenlet.greenlet = self
        if me.parent is not anchor:
            me.parent = anchor
        return anchor

    def _end_call(self, outcome: Any) -> None:
        self.job = None
        self.on_death = None
        # As if the greenthread had exited: links fire, wait() answers; then
        # it is a fresh one again for the next call.
        try:
            exit_and_start_fresh(
                self, outcome, outcome.exception if type(outcome) is Failed else None
            )
        except Exception:
            # A link that raises: eventlet's greenthread would die of it and
            # the hub print it. The call's outcome stands, and its caller gets it.
            self.hub.squelch_generic_exception(sys.exc_info())
            start_fresh(self)
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


watch_green_locals(Carrier, _touched)
