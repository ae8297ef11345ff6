"""The forks room: what a forked child gives up, and when a fork is under way.

``os.fork()`` from green main (oslo.service's ``ProcessLauncher``) gives the
child a copy of the hub whose kernel objects -- the green-fd poller's epoll
instance, the owner loop's -- are shared with the parent: a registration
changed in the child changes the parent's. The child gives them up untouched
and makes its own when green code next needs them. Forking while a guest
loop runs is not supported (asyncio does not support forking a running loop
either). uvloop runs the fork hooks for its own subprocesses too, so all of
this is cheap.
"""

from __future__ import annotations

import eventlet.patcher

from bridge._core import _hooks
from bridge._core._state import HubBase

__all__ = ("after_fork_in_child", "after_fork_in_parent", "before_fork", "forking_here")

_real_threading = eventlet.patcher.original("threading")

# Pollers, owner loops and greenlets of hubs whose process forked: never
# collected, never closed (closing the loop would unregister the parent's fds).
_forked_away: list[object] = []

# The thread that is forking, from just before os.fork() until the hooks
# after it have run, in the parent and in the child.
_forking_thread: int | None = None


class _Forks(HubBase):
    def _after_fork_in_child(self) -> None:
        """Give up, untouched, what the child shares with its parent.

        The poller's epoll instance, and the owner loop's, are the parent's
        too: a registration changed here would change the parent's. So they
        are only dropped (kept referenced, never closed: closing the loop
        would unregister the parent's fds), and the child makes its own when
        green code next needs them (``_migrate`` arms the waits again). Cheap,
        as the child is often about to ``exec`` (uvloop's subprocesses run
        these hooks).
        """
        _forked_away.append((self._poller, self._owner_loop, self._owner_greenlet, self._wakeup))
        self._poller = self._poller_loop = None
        for fileno in self._armed:
            self._armed[fileno] = 0  # armed in the parent's poller only
        if self._guest:
            return  # forking while a guest loop runs is not supported (nor by asyncio)
        self._wakeup = None
        self._owner_loop = self._owner_greenlet = self._loop = None
        self.running = False


def forking_here() -> bool:
    """True between ``os.fork()``'s hooks, in the thread that forks."""
    return _forking_thread == _real_threading.get_ident()


def before_fork() -> None:
    global _forking_thread
    _forking_thread = _real_threading.get_ident()


def after_fork_in_parent() -> None:
    global _forking_thread
    _forking_thread = None


def after_fork_in_child() -> None:
    global _forking_thread
    _forking_thread = None
    hub = _hooks.thread_hub()
    if isinstance(hub, _Forks):
        hub._after_fork_in_child()
