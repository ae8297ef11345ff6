"""The rounds room: eventlet's loop, run from the asyncio loop's callbacks.

Zero-delay timers (``sleep(0)``, ``spawn``, every wake-up) wait in a ready
queue (``self._ready``), each with the time it was made ready; delayed timers
in eventlet's own heap (``self.timers``, with eventlet's lazy cancellation and
its counters). Three loop callbacks run *rounds* of eventlet's loop
(``_run_rounds``): a ``call_soon`` when work is made ready (``_drain``), one
``call_later`` handle armed for the earliest delayed timer (``_fire_due``),
and the green-fd poller turning readable (``_on_green_io``, the fds room). A
round (``_round``) does what one pass of eventlet's own loop does, in its
order: due timers and ready work in deadline order, then a poll of the green
fds and their callbacks.

Why not one loop handle per timer: asyncio's ``TimerHandle`` compares in
Python, so scheduling 10k timers cost 5-8 us each and firing them ran
~20 ms late in a trial; eventlet's heap of ``(deadline, timer)`` tuples
compares in C.

Invariants: while ``self.timers`` or ``self.next_timers`` is not empty,
exactly one wake-up handle is armed on ``self._loop``
(``self._wakeup_handle``), for a deadline no later than the earliest
timer's; while ``self._ready`` is not empty, a ``_drain`` is scheduled
(``self._drain_pending``) or rounds run in the dispatcher and schedule one
when they stop with work left.

Room API: ``_run_rounds``, ``_make_ready``, ``_arm``, ``_drain``. For the
layers above: :func:`make_ready`.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import math
from collections.abc import Callable

from eventlet.hubs.hub import BaseHub
from eventlet.hubs.timer import Timer

from bridge._core._state import HubBase
from bridge._core._topology import let_go

__all__ = ("make_ready",)

# How many callbacks _run_rounds may run before the loop gets its turn.
_ROUNDS_BUDGET = 64


class _Rounds(HubBase):
    def _init_rounds(self) -> None:
        # Zero-delay work, with the time it was made ready: eventlet keeps it
        # in its timer heap, so a round runs it in deadline order with the
        # delayed timers that are due (_round).
        self._ready = collections.deque()
        # True while a _drain is scheduled on self._loop and has not started.
        self._drain_pending = False
        # Delayed timers live in eventlet's self.timers/self.next_timers;
        # this handle wakes the loop for the earliest (see _arm).
        self._wakeup_handle = None
        self._wakeup_at = math.inf
        self._closed_scheduled = False

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        """Arm the wake-up handle for the earliest delayed timer, if needed."""
        deadlines = [when for when, timer in self.next_timers if not timer.called]
        if self.timers:
            deadlines.append(self.timers[0][0])
        deadline = min(deadlines, default=math.inf)
        if deadline < self._wakeup_at:
            self._arm_at(loop, deadline)

    def _arm_at(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        if self._wakeup_handle is not None:
            self._wakeup_handle.cancel()
        self._wakeup_at = deadline
        # Rounded up to whole milliseconds: uvloop's timers have that
        # resolution and fire up to 1 ms early, before the timer is due by
        # our clock (the hub then woke ~80 times per timer, re-arming); the
        # stdlib loop's poll rounds its timeout up the same way.
        delay = math.ceil((deadline - self.clock()) * 1000) / 1000
        self._wakeup_handle = loop.call_later(delay, self._fire_due)

    def _fire_due(self) -> None:
        """The wake-up handle's callback: the earliest delayed timer is due."""
        self._wakeup_handle = None
        self._wakeup_at = math.inf
        try:
            self._run_rounds()
        finally:
            # Also when a KeyboardInterrupt unwinds the loop: the timers left
            # must fire when the owner loop runs again.
            if self._loop is not None and (self.timers or self.next_timers):
                self._arm(self._loop)

    def _drain(self) -> None:
        """Scheduled with ``call_soon`` when work is made ready (see _make_ready)."""
        self._drain_pending = False
        self._run_rounds()

    def _run_rounds(self) -> None:
        """Run rounds of eventlet's loop until one finds nothing to do, within a budget.

        A round (:meth:`_round`) is what one pass of eventlet's own loop
        does. Running the next one at once, rather than from the loop's next
        iteration, saves an iteration of the loop (a poll of the loop's
        selector, ~4 us) per round; ``_ROUNDS_BUDGET`` callbacks in, the loop
        gets its turn, so that asyncio's own callbacks and I/O keep flowing
        in a busy green service.
        """
        budget = _ROUNDS_BUDGET
        try:
            while budget > 0:
                done = self._round()
                if not done:
                    break
                budget -= done
        finally:
            # Also when KeyboardInterrupt, SystemExit or retirement unwinds the
            # loop: what is still ready runs when a loop runs again.
            if self._ready and not self._drain_pending and self._loop is not None:
                self._drain_pending = True
                self._loop.call_soon(self._drain)

    def _round(self) -> int:
        """Run one round of eventlet's loop; return how many callbacks it ran.

        eventlet's hubs run every timer due when a round starts, in deadline
        order (zero-delay ones, i.e. every spawn and wake-up, included, their
        deadline being when they were made), then poll for I/O and run the
        ready fds' callbacks, then start the next round: a greenthread made
        ready during a round runs after that poll. Green
        code relies on it (a loopback reply that has arrived is seen before
        work made ready meanwhile: a retry loop of instant failures does not
        use up its budget before one round trip), so a round ends with a
        poll of the green fds (:meth:`_poll_green`). Leaving the next round
        to a ``call_soon`` would not do: asyncio runs it before the
        callbacks of the I/O its next poll finds.
        """
        if self._requests:  # left by a dispatch that a KeyboardInterrupt unwound
            self._serve_requests()
        timers = self.timers
        ready = self._ready
        heappop = heapq.heappop
        dispatch = self._dispatch
        now = self.clock()
        todo = len(ready)  # what is ready when the round starts: this round's
        done = 0
        while True:
            if self.next_timers:
                # As each round of eventlet's own hubs does: timers cancelled
                # since they were added never reach the heap.
                self.prepare_timers()
            if timers and timers[0][0] <= now and not (todo and ready[0][0] < timers[0][0]):
                timer = heappop(timers)[1]
                if timer.called:
                    self.timers_canceled -= 1
                    continue
                item = timer
            elif todo and ready:  # (a mode change may have taken the rest away)
                todo -= 1
                item = ready.popleft()[1]
            else:
                break
            exc_info = dispatch(item)
            if exc_info is not None:
                self.squelch_timer_exception(item, exc_info)
                let_go(exc_info)
                exc_info = None  # a round may be suspended in a switch: hold nothing
            if self._requests:
                self._serve_requests()
            done += 1
        if self._armed:
            done += self._poll_green()
        return done

    def _make_ready(self, item: Callable[[], object]) -> None:
        self._ready.append((self.clock(), item))
        if not self._drain_pending:
            loop = self._loop_now()
            if loop is not None:  # else the loop being made schedules the drain
                self._drain_pending = True
                loop.call_soon(self._drain)

    def _close_all(self) -> None:
        self._closed_scheduled = False
        while self.closed:
            self.close_one()

    def add_timer(self, timer: Timer) -> float:
        seconds = timer.seconds
        if seconds <= 0:
            self._make_ready(timer)
            return self.clock()
        loop = self._loop_now()
        deadline = BaseHub.add_timer(self, timer)
        timer._bridge_hub = self
        if loop is not None and deadline < self._wakeup_at:
            self._arm_at(loop, deadline)
        return deadline

    def timer_canceled(self, timer: Timer) -> None:
        # Count only timers in our heap: zero-delay ones are skipped by _drain,
        # and a timer of a hub that use_hub() replaced is not ours to count.
        if getattr(timer, "_bridge_hub", None) is self:
            BaseHub.timer_canceled(self, timer)

    def get_timers_count(self) -> int:
        ready = sum(1 for _, item in self._ready if not getattr(item, "called", False))
        return BaseHub.get_timers_count(self) + ready


def make_ready(hub: HubBase, item: Callable[[], object]) -> None:
    """Run ``item()`` in the dispatcher at the hub's next round, as a zero-delay timer."""
    hub._make_ready(item)
