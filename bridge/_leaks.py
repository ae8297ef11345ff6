"""What a test left behind: greenthreads, fd listeners, timers (for the test helpers).

Shared by the pytest plugin and the testtools fixture. :class:`LeakTracker`
starts before a test (and its fixtures) and is checked after them.
"""

from __future__ import annotations

import sys
import traceback
import weakref
from typing import Any

from bridge._core._hub import Hub

__all__ = ("LeakTracker",)


class LeakTracker:
    """Tracks the greenthreads created, and the hub's fds and timers, since ``start()``."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._created: weakref.WeakSet[Any] = weakref.WeakSet()
        self._fds, self._timers = self._snapshot()
        self._original_init: Any = None

    def start(self) -> LeakTracker:
        from eventlet import greenthread

        original = self._original_init = greenthread.GreenThread.__init__
        created = self._created

        def __init__(gt: Any, parent: Any) -> None:
            original(gt, parent)
            gt._bridge_spawned_at = traceback.extract_stack(limit=12)[:-1]
            created.add(gt)

        greenthread.GreenThread.__init__ = __init__
        return self

    def stop(self) -> list[str]:
        """Stop tracking; describe each leftover (after letting finishing work finish)."""
        import eventlet
        from eventlet import greenthread

        if self._original_init is not None:
            greenthread.GreenThread.__init__ = self._original_init
            self._original_init = None
        eventlet.sleep(0)
        leaks = [_describe(gt) for gt in list(self._created) if not gt.dead]
        fds, timers = self._snapshot()
        leaks += [f"fd listener on fd {fd}" for fd in sorted(fds - self._fds)]
        leaks += [f"timer {t!r}" for t in timers - self._timers]
        return leaks

    def _snapshot(self) -> tuple[set[int], set[Any]]:
        hub = self.hub
        fds = {fd for bucket in hub.listeners.values() for fd in bucket} - _infrastructure_fds()
        timers = {t for _, t in hub.timers + hub.next_timers if not t.called}
        return fds, timers


def _infrastructure_fds() -> set[int]:
    """fds that eventlet itself keeps watched for the process: tpool's wake-up pipe."""
    tpool = sys.modules.get("eventlet.tpool")
    rsock = getattr(tpool, "_rsock", None)
    return {rsock.fileno()} if rsock is not None else set()


def _describe(gt: Any) -> str:
    site = getattr(gt, "_bridge_spawned_at", None)
    where = ""
    if site:
        ours = ("eventlet", "pytest_plugin", "bridge/testing.py", "_leaks.py")
        frame = next(
            (f for f in reversed(site) if not any(part in f.filename for part in ours)),
            site[-1],
        )
        where = f", spawned at {frame.filename}:{frame.lineno} ({frame.line})"
    return f"greenthread {gt!r}{where}"
