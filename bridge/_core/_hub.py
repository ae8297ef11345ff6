"""bridge's eventlet hub: eventlet's scheduler running on an asyncio event loop.

eventlet runs green code on a *hub*: a greenlet that owns the event loop,
fires timers and wakes greenthreads when their fds are ready. asyncio runs
async code on an *event loop*. :class:`Hub` is an eventlet hub that runs on
an asyncio loop -- its own (owner mode) or one that already runs (guest
mode) -- so that a service in migration keeps green and async code on one
loop in one thread. eventlet's own asyncio hub only knows owner mode and
polls its timers through ``asyncio.wait_for``; it cannot join a running loop.

The hub is built as *rooms*, one mechanism a module, each a mixin over
:class:`~bridge._core._state.HubBase` (which declares every room's state):

* ``_topology``: the dispatcher (the greenlet running the loop's callbacks)
  and the *anchor* that greenthreads switch to; green-blocking calls on the
  loop refused, or suspending a portal's task; requests handed to the
  dispatcher;
* ``_rounds``: eventlet's loop run as rounds from loop callbacks: the ready
  queue, eventlet's timer heap, the one wake-up handle;
* ``_fds``: green fds in a kernel poller of the hub's own (``_poller``);
* ``_modes``: owner and guest mode, making the owner loop, moving work
  between loops, the running-loop hooks;
* ``_inbox``: work handed over by other OS threads;
* ``_forks``: what a forked child gives up;
* this module: the assembly, statistics, and wiring the hooks
  (``_hooks``: every hook into asyncio's and eventlet's internals).

``docs/how-it-works.md`` draws who calls whom on a crossing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Literal

import eventlet.patcher
from eventlet.hubs.hub import READ

from bridge._core import _forks, _hooks, _modes, _native, _registry
from bridge._core._fds import _GreenFds
from bridge._core._forks import _Forks
from bridge._core._inbox import _Inbox
from bridge._core._modes import _Modes
from bridge._core._rounds import _Rounds
from bridge._core._state import HubSlots
from bridge._core._topology import _Topology

__all__ = ("Hub", "HubStatistics", "is_available")

_real_threading = eventlet.patcher.original("threading")


def is_available() -> bool:
    """Tell eventlet's ``use_hub`` that this hub works here (it always does)."""
    return True


@dataclasses.dataclass(frozen=True)
class HubStatistics:
    """A snapshot of a hub, from :meth:`Hub.statistics`.

    :ivar mode: ``"owner"`` (the hub runs its own loop), ``"guest"`` (it has
        joined a loop that runs in this thread) or ``"idle"`` (no loop yet).
    :ivar loop: the loop the hub's timers and fds are registered on.
    :ivar timers: pending eventlet timers (not cancelled, not yet fired).
    :ivar readers: fds with at least one reading greenthread.
    :ivar writers: fds with at least one writing greenthread.
    """

    mode: Literal["owner", "guest", "idle"]
    loop: asyncio.AbstractEventLoop | None
    timers: int
    readers: int
    writers: int


class Hub(_Topology, _Rounds, _GreenFds, _Modes, _Inbox, _Forks):
    """An eventlet hub on an asyncio event loop, owning it or joining it.

    Select it with ``EVENTLET_HUB=bridge.hub`` (or
    ``eventlet.hubs.use_hub("bridge.hub")``). It is a subclass of eventlet's
    asyncio hub, so eventlet's ``await greenthread`` and
    ``eventlet.asyncio.spawn_for_awaitable`` work with it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.thread_id = _real_threading.get_ident()
        _registry.register(self)
        # What the layers above keep per hub (carriers, portals...).
        self._slots = HubSlots()
        self._init_modes()
        self._init_topology()  # after modes: the first dispatcher is the owner greenlet
        self._init_rounds()
        self._init_fds()
        self._init_inbox()

    def _post_initialize(self) -> None:
        from bridge._core import _blocking

        _native.ensure_native_asyncio()
        _blocking.start_from_environment(self)
        running = _modes.get_running_loop_hook()  # None for a discarded hub's owner loop
        if running is not None:
            self._enter_guest(running)

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<bridge.hub.Hub {s.mode} loop={s.loop!r} timers={s.timers} "
            f"readers={s.readers} writers={s.writers}>"
        )

    def statistics(self) -> HubStatistics:
        """Return a :class:`HubStatistics` snapshot of this hub."""
        return HubStatistics(
            mode=self.mode,
            loop=self._loop,
            timers=sum(
                not getattr(item, "called", False)
                for item in itertools.chain(
                    (item for _, item in self._ready),
                    (timer for _, timer in self.timers),
                    (timer for _, timer in self.next_timers),
                )
            ),
            readers=len(self.listeners[READ]),
            writers=len(self.listeners[self.WRITE]),
        )


def slots_of(hub: Hub) -> HubSlots:
    """What the layers above the core keep per hub (see :class:`HubSlots`)."""
    return hub._slots


def _install() -> None:
    _hooks.verify()
    _hooks.install_running_loop_hooks(_modes.running_loop_hook, _modes.get_running_loop_hook)
    if not getattr(_install, "done", False):
        _hooks.install_fork_hooks(
            _forks.before_fork, _forks.after_fork_in_parent, _forks.after_fork_in_child
        )
        _install.done = True  # type: ignore[attr-defined]
    _native.install_hooks()
    _hooks.install_eventlet_patches(
        lambda hub: isinstance(hub, Hub), lambda hub, fileno: hub.fd_closed(fileno)
    )


_install()
