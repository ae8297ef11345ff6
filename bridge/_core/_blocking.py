"""The blocking detector: who held the event loop when it stalled.

A greenthread or task that blocks without yielding (an unpatched
``time.sleep``, a C library waiting on a socket, a long computation) stalls
every task and greenthread in its thread. eventlet's own detector raises an
exception from ``SIGALRM`` in the culprit; ours observes instead, so it is
safe in production:

* a *heartbeat* hub timer fires every ``threshold / 2`` and stamps the time;
  it is an ordinary eventlet timer, so it follows the hub between owner and
  guest mode and works on any loop (uvloop included);
* a *watchdog* OS thread (a real one, even under ``monkey_patch``) checks the
  stamp; when it is older than ``threshold``, it samples the stack of the
  hub's thread (``sys._current_frames()``: the greenlet that is running
  there is the culprit) and logs one record per stall on the logger
  ``bridge.blocking``, with the task's name when a task held the loop.

Turn it on with :func:`detect_blocking`, or set ``BRIDGE_BLOCKING_THRESHOLD``
(seconds) in the environment before the hub starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any, final

from eventlet import patcher

from bridge._core._modes import current_loop
from bridge._core._registry import current_hub

if TYPE_CHECKING:
    from bridge._core._hub import Hub

__all__ = ("BlockingDetector", "detect_blocking", "start_from_environment")

logger = logging.getLogger("bridge.blocking")

_threading = patcher.original("threading")
_time = patcher.original("time")

ENV_THRESHOLD = "BRIDGE_BLOCKING_THRESHOLD"


def detect_blocking(threshold: float = 0.1) -> BlockingDetector:
    """Start reporting stalls of this thread's event loop longer than ``threshold`` s.

    Who calls: green or async code in the hub's thread. Returns the running
    :class:`BlockingDetector`; call its ``stop()`` to turn it off. One
    detector per hub: starting another stops the previous one.

    :raises ValueError: ``threshold`` is not a positive number of seconds.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be a positive number of seconds, not {threshold!r}")
    hub = current_hub()
    previous = hub._slots.blocking_detector
    if previous is not None:
        previous.stop()
    detector = BlockingDetector._start(hub, threshold)
    hub._slots.blocking_detector = detector
    return detector


def start_from_environment(hub: Hub) -> None:
    """Start a detector on ``hub`` if ``BRIDGE_BLOCKING_THRESHOLD`` is set."""
    value = os.environ.get(ENV_THRESHOLD)
    if not value:
        return
    try:
        threshold = float(value)
    except ValueError:
        threshold = -1.0
    if not threshold > 0:
        logger.error(
            "%s=%r is not a positive number of seconds; detector off", ENV_THRESHOLD, value
        )
        return
    hub._slots.blocking_detector = BlockingDetector._start(hub, threshold)


@final
class BlockingDetector:
    """A running blocking detector (see :func:`detect_blocking`)."""

    __slots__ = ("_hub", "_last_beat", "_reported", "_stopped", "_timer", "_watchdog", "threshold")

    threshold: float
    _hub: Hub
    _last_beat: float
    _reported: bool
    _stopped: Any
    _timer: Any
    _watchdog: Any

    def __init__(self) -> None:
        raise TypeError("BlockingDetector has no public constructor; use bridge.detect_blocking()")

    @classmethod
    def _start(cls, hub: Hub, threshold: float) -> BlockingDetector:
        self = object.__new__(cls)
        self._hub = hub
        self.threshold = threshold
        self._last_beat = _time.monotonic()
        self._reported = False
        self._stopped = _threading.Event()
        self._timer = hub.schedule_call_global(threshold / 2, self._heartbeat)
        self._watchdog = _threading.Thread(
            target=self._watch, name="bridge-blocking-watchdog", daemon=True
        )
        self._watchdog.start()
        return self

    def __repr__(self) -> str:
        state = "stopped" if self._stopped.is_set() else "running"
        return f"<bridge.BlockingDetector {state} threshold={self.threshold}s>"

    def stop(self) -> None:
        """Stop the heartbeat and the watchdog thread."""
        self._stopped.set()
        self._timer.cancel()
        if self._hub._slots.blocking_detector is self:
            self._hub._slots.blocking_detector = None

    def _heartbeat(self) -> None:
        self._last_beat = _time.monotonic()
        self._reported = False
        if not self._stopped.is_set():
            self._timer = self._hub.schedule_call_global(self.threshold / 2, self._heartbeat)

    def _watch(self) -> None:  # the watchdog thread
        while not self._stopped.wait(self.threshold / 4):
            stalled = _time.monotonic() - self._last_beat
            if stalled > self.threshold and not self._reported:
                self._reported = True
                self._report(stalled)

    def _report(self, stalled: float) -> None:
        frame = sys._current_frames().get(self._hub.thread_id)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)"
        loop = current_loop(self._hub)
        task = None
        if loop is not None:
            try:
                task = asyncio.current_task(loop)
            except RuntimeError:
                task = None
        holder = f"task {task.get_name()!r}" if task is not None else "green code"
        logger.warning(
            "event loop blocked for more than %.3f s (threshold %.3f s) by %s:\n%s",
            stalled,
            self.threshold,
            holder,
            stack,
            extra={"stalled_for": stalled, "holder": holder, "stack": stack},
        )
