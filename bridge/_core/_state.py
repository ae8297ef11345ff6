"""The state every room of the hub shares, typed and owned room by room.

``bridge._core`` builds the hub as *rooms*, one mechanism a module (trio's
``_core`` is the model): each room is a mixin class over :class:`HubBase`
that initialises, owns and documents its own attributes, and calls the other
rooms only through the methods its module docstring names. This module
declares all of it in one place, so that a type checker sees the whole hub
and a reader finds who owns what:

========================  ================================================
room (module)             owns
========================  ================================================
``_topology``             the anchor, the dispatcher, requests handed to it
``_rounds``               the ready queue, the timer wake-up, rounds
``_fds``                  the green-fd poller and what is armed in it
``_modes``                the loop in use, owner/guest mode, moving loops
``_inbox``                work handed over by other OS threads
``_forks``                what a forked child gives up
``_hub``                  assembly, statistics, the layers' slots
========================  ================================================
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import greenlet
from eventlet.hubs import asyncio as eventlet_asyncio_hub

if TYPE_CHECKING:
    from bridge._core._blocking import BlockingDetector
    from bridge._core._poller import Poller
    from bridge._core._signals import SignalWakeup

__all__ = ("LOOP_REENTERED_ADVICE", "HubBase", "HubSlots", "PortalLike", "RetireHub")

Greenlet: TypeAlias = greenlet.greenlet

LOOP_REENTERED_ADVICE = (
    "bridge's hub was re-entered while it was making its event loop: code that ran inside the "
    "loop's construction (a signal handler, a __del__ method) made a green-blocking call or "
    "asked for the hub's loop. Such code may spawn greenthreads, schedule timers and send "
    "events, which run once the loop exists; move blocking calls into a greenthread "
    "(eventlet.spawn)."
)


class RetireHub(SystemExit):
    """Unwinds an owner greenlet's ``run_forever`` from inside a callback.

    A SystemExit so that asyncio's callback handling lets it through; caught
    by :meth:`Hub.run`, which puts back the running loop of whoever retired
    the greenlet (``run_forever``'s cleanup has just cleared it).
    """

    def __init__(self, running_loop: asyncio.AbstractEventLoop | None) -> None:
        super().__init__()
        self.running_loop = running_loop


class PortalLike:
    """What the hub needs of a portal's state (``bridge._crossings._portal.PortalState``)."""

    __slots__ = ()

    def block(self, hub: Any) -> Any:
        """Suspend the task instead of the loop; return what eventlet woke us with."""
        raise NotImplementedError


@dataclasses.dataclass
class HubSlots:
    """Per-hub state of the layers above the core, kept by the hub for them.

    :ivar carriers: parked greenthreads that run ``to_async`` calls
        (``bridge._crossings._carriers``).
    :ivar portals: portal greenlet -> its state (``bridge._crossings._portal``);
        the hub's ``switch`` finds a green call's portal there.
    :ivar eager_starts: tasks ``await_`` has started; it budgets first steps.
    :ivar blocking_detector: the running blocking detector, if any (``_blocking``).
    """

    carriers: list[Any] = dataclasses.field(default_factory=list)
    portals: dict[Greenlet, PortalLike] = dataclasses.field(default_factory=dict)
    eager_starts: int = 0
    blocking_detector: BlockingDetector | None = None


class HubBase(eventlet_asyncio_hub.Hub):
    """eventlet's hub contract, plus the attributes of every room (see the table above)."""

    # _hub
    thread_id: int
    _slots: HubSlots
    # _topology
    _anchor: Greenlet
    _dispatcher: Greenlet
    _dispatching_in: Greenlet | None
    _requests: list[list[Any]]
    # _rounds
    _ready: collections.deque[tuple[float, Callable[[], object]]]
    _drain_pending: bool
    _wakeup_handle: asyncio.TimerHandle | None
    _wakeup_at: float
    _closed_scheduled: bool
    # _fds
    _poller: Poller | None
    _poller_loop: asyncio.AbstractEventLoop | None
    _armed: dict[int, int]
    # _modes
    _loop: asyncio.AbstractEventLoop | None
    _guest: bool
    _owner_loop: asyncio.AbstractEventLoop | None
    _owner_greenlet: Greenlet | None
    _making_loop: bool
    _wakeup: SignalWakeup | None
    # _inbox
    _inbox: collections.deque[Callable[[], object]]

    if TYPE_CHECKING:  # the rooms' methods that other rooms call

        def _dispatch(self, fn: Callable[..., object], *args: object) -> Any: ...
        def _serve_requests(self) -> None: ...
        def _set_dispatcher(self, dispatcher: Greenlet) -> None: ...
        def _owner_dispatcher(self) -> Greenlet: ...
        def _run_rounds(self) -> None: ...
        def _make_ready(self, item: Callable[[], object]) -> None: ...
        def _arm(self, loop: asyncio.AbstractEventLoop) -> None: ...
        def _drain(self) -> None: ...
        def _poll_green(self) -> int: ...
        def _watch_poller(self, loop: asyncio.AbstractEventLoop) -> None: ...
        def _rearm(self, fileno: int) -> None: ...
        def _registration_loop(self) -> asyncio.AbstractEventLoop: ...
        def _loop_now(self) -> asyncio.AbstractEventLoop | None: ...
        def _use_owner_loop(self) -> asyncio.AbstractEventLoop: ...
        def _enter_guest(self, loop: asyncio.AbstractEventLoop) -> None: ...
        def _signal_wakeup(self) -> SignalWakeup: ...
        def _drain_inbox(self) -> None: ...
        def _pending_work(self) -> bool: ...
