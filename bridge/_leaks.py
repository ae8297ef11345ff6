"""What a test left behind: greenthreads, fd listeners, timers (for the test helpers).

Shared by the pytest plugin and the testtools fixture. :class:`LeakTracker`
starts before a test (and its fixtures) and is checked after them.
"""

from __future__ import annotations

import traceback
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bridge._errors import BridgeInternalError

if TYPE_CHECKING:  # importing it would install the hub's hooks (see the pytest plugin)
    from bridge._core import Hub

__all__ = ("LeakTracker",)


class LeakTracker:
    """Tracks the greenthreads created, and the hub's fds and timers, since ``start()``.

    :param hub: the hub whose fds and timers are compared; None to only
        count greenthreads with :meth:`stop_counting`.
    :param describe: record where each greenthread is spawned (a stack
        capture per spawn), for :meth:`stop`'s descriptions.
    """

    def __init__(self, hub: Hub | None, *, describe: bool = True) -> None:
        self.hub = hub
        self.describe = describe
        self._created: weakref.WeakSet[Any] = weakref.WeakSet()
        self._fds, self._timers = _snapshot(hub) if hub is not None else (set(), set())
        self._undo: Callable[[], None] | None = None

    def start(self) -> LeakTracker:
        from bridge._core import track_greenthreads

        created = self._created
        if self.describe:

            def spawned(gt: Any) -> None:
                gt._bridge_spawned_at = traceback.extract_stack(limit=13)[:-2]
                created.add(gt)

            self._undo = track_greenthreads(spawned)
        else:
            self._undo = track_greenthreads(created.add)
        return self

    def stop(self) -> list[str]:
        """Stop tracking; describe each leftover (after letting finishing work finish)."""
        import eventlet

        self._restore()
        if self.hub is None:
            raise BridgeInternalError("LeakTracker.stop() needs a hub; this one only counts")
        eventlet.sleep(0)
        leaks = [_describe(gt) for gt in list(self._created) if not gt.dead]
        fds, timers = _snapshot(self.hub)
        leaks += [f"fd listener on fd {fd}" for fd in sorted(fds - self._fds)]
        leaks += [f"timer {t!r}" for t in timers - self._timers]
        return leaks

    def stop_counting(self) -> bool:
        """Stop tracking; tell whether a greenthread created since ``start()`` is not dead.

        Unlike :meth:`stop`, gives the hub no turn first (the suite's
        scheduling stays as it was), so a greenthread about to finish counts.
        """
        self._restore()
        return any(not gt.dead for gt in list(self._created))

    def _restore(self) -> None:
        if self._undo is not None:
            self._undo()
            self._undo = None


def _snapshot(hub: Hub) -> tuple[set[int], set[Any]]:
    fds = {fd for bucket in hub.listeners.values() for fd in bucket} - _infrastructure_fds()
    timers = {t for _, t in hub.timers + hub.next_timers if not t.called}
    return fds, timers


def _infrastructure_fds() -> set[int]:
    """fds that eventlet itself keeps watched for the process: tpool's wake-up pipe."""
    from bridge._core import tpool_wakeup_fd

    fd = tpool_wakeup_fd()
    return {fd} if fd is not None else set()


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
