"""bridge's eventlet hub: eventlet's scheduler running on an asyncio event loop.

The problem
-----------
eventlet runs green code on a *hub*: a greenlet that owns the event loop,
fires timers and wakes greenthreads when their fds are ready. asyncio runs
async code on an *event loop*. A service in migration has both, and they
must share one loop in one thread, whichever of them started first:

* a legacy green main (``eventlet.monkey_patch(); serve()``) has no loop
  running; the hub must make one and run it (*owner mode*);
* an async main (``asyncio.run``, aiohttp's ``run_app``, uvicorn,
  pytest-asyncio) already runs a loop; the hub must *join* it (*guest mode*);
* and a process moves between the two: a green main that has used the hub
  calls ``asyncio.run(new_main())`` and goes on green when it returns.

eventlet's own asyncio hub only knows owner mode and polls its timers
through ``asyncio.wait_for``; it cannot join a running loop.

The mechanism
-------------
*eventlet's loop, run from the loop's callbacks.* Zero-delay timers
(``sleep(0)``, ``spawn``, every wake-up) wait in a ready queue
(``self._ready``); delayed timers in eventlet's own heap (``self.timers``,
with eventlet's lazy cancellation and its counters); green fds in a kernel
poller of the hub's own (``bridge._core._poller``: an epoll instance), whose
one fd is a reader of the loop. Three loop callbacks run *rounds* of
eventlet's loop (``_run_rounds``): a ``call_soon`` when work is made ready
(``_drain``), one ``call_later`` handle armed for the earliest delayed timer
(``_fire_due``), and the poller's fd turning readable (``_on_green_io``). A
round (``_round``) does what one pass of eventlet's own loop does, in its
order: due timers and ready work, then a poll of the green fds and their
callbacks. Moving everything to another loop (``_migrate``) is re-arming one
handle, re-scheduling one drain and moving one reader.

Why green fds are not the loop's own ``add_reader`` registrations: the loop
knows an fd by its number, green code closes fds in ways the hub never
hears of, and the number is reused by asyncio at once; see ``_poller``.

Why not one loop handle per timer: asyncio's ``TimerHandle`` compares in
Python, so scheduling 10k timers cost 5-8 us each and firing them ran
~20 ms late in a trial; eventlet's heap of ``(deadline, timer)`` tuples
compares in C.

*The dispatcher* is the greenlet in which the loop runs our callbacks, and
so the greenlet that greenthreads switch back to when they block:

* owner mode: a greenlet of ours (``_owner_greenlet``) whose ``run`` is
  ``owner_loop.run_forever()``;
* guest mode: whichever greenlet called the running loop's ``run_forever``
  (usually the thread's main greenlet).

*The anchor* solves the problem that the dispatcher changes while
greenthreads are parked. A greenlet that finishes returns to its parent, and
greenthreads would have the dispatcher of the day they were spawned as
parent. So ``hub.greenlet`` -- the greenlet eventlet spawns greenthreads
under and switches to -- is a greenlet that has already finished: the
*anchor*. Switching to a finished greenlet goes to its parent, and a
greenlet finishing under a finished parent goes to that parent's parent.
The anchor's parent is always the current dispatcher, so retargeting every
greenthread at once is one assignment (``_set_dispatcher``). A useful side
effect: ``hub.greenlet is getcurrent()`` is never true, so eventlet's own
"do not call blocking functions from the mainloop" checks defer to
:meth:`Hub.switch`, which gives the clear error of :exc:`BlockingCallError`.

*The running loop.* asyncio keeps one "running loop" per thread, not per
greenlet. In owner mode all green code, green main included, sees the owner
loop as running (once it has run), as on eventlet's asyncio hub: green code
may call ``asyncio.get_running_loop()``, ``create_task()`` and so on, and the
owner loop is also the thread's current event loop. But asyncio *refuses*
to start a loop while another one runs, and a green main must be able to
call ``asyncio.run(new_main())``. Those refusals are made by the pure-Python
checks of ``asyncio.run``/``Runner.run`` and ``run_forever``, which call
``asyncio.events._get_running_loop``; that function is wrapped
(``_get_running_loop_hook``) so that, called from green main while the owner
loop is the running one, it steps the owner loop aside (clears the thread's
running loop) and answers None. The owner loop is put back when green main
next waits on the hub, or when the loop it started stops. A greenthread
asking the same question still gets the owner loop: ``asyncio.run()`` from a
greenthread would block the loop, and is refused.

*Mode changes* are seen two ways: asyncio's ``events._set_running_loop``
is wrapped (``_running_loop_hook``), so the hub learns at once when a loop
starts or stops in its thread and moves its timers and fds there, even if
no green code touches the hub meanwhile; and every registration checks the
thread's running loop against its own (``_registration_loop``), which
catches loops whose start the hook cannot see (uvloop binds the function
at its import).

Invariants
----------
* ``self._anchor`` is dead and ``self._anchor.parent is self._dispatcher``.
* While ``self.timers`` or ``self.next_timers`` is not empty, exactly one
  wake-up handle is armed on ``self._loop`` (``self._wakeup_handle``), for a
  deadline no later than the earliest timer's.
* The fds in ``self._armed`` are exactly those in ``self.listeners``; an fd
  there with a non-zero value is armed in the poller for at least the
  interests of its listeners (0: an event disarmed it, ``_poll_green`` arms
  it again). While any is, the poller's fd is a reader of ``self._loop``
  (``self._poller_loop``) and of no other loop.
* ``self._guest`` is true exactly while ``self._loop`` runs in the thread and
  is not the owner loop.

Failure modes that remain
-------------------------
* asyncio tasks and futures created on the owner loop cannot move to a
  guest loop; they wait until owner mode resumes (the hub's own timers and
  fds do move).
* ``os.fork()`` while a guest loop runs is not supported (asyncio does not
  support forking a running loop either); from owner mode the child gets a
  fresh owner loop, and the parent's is kept alive, unclosed, because closing
  it would unregister the parent's fds from the epoll set the two share.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import heapq
import itertools
import logging
import math
import os
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeAlias, TypeVar

import eventlet.greenthread
import eventlet.hubs
import eventlet.patcher
import eventlet.queue
import greenlet
from eventlet.hubs import _threadlocal
from eventlet.hubs import asyncio as eventlet_asyncio_hub
from eventlet.hubs.hub import READ, BaseHub, FdListener
from eventlet.hubs.timer import Timer

from bridge._core import _eventlet_patches, _native
from bridge._core._poller import READABLE, WRITABLE, Poller, make_poller
from bridge._core._signals import SignalWakeup
from bridge._errors import BlockingCallError, BridgeInternalError

__all__ = ("Hub", "HubStatistics", "current_hub", "hub_of_thread", "is_available")

_get_running_loop: Callable[[], asyncio.AbstractEventLoop | None] = getattr(
    asyncio.events._get_running_loop,
    "__bridge_wrapped__",
    asyncio.events._get_running_loop,
)
# The unwrapped setter: the hub's own clear/restore must not look like a
# loop starting or stopping.
_set_running_loop: Callable[[asyncio.AbstractEventLoop | None], None] = getattr(
    asyncio.events._set_running_loop,
    "__bridge_wrapped__",
    asyncio.events._set_running_loop,
)
_getcurrent = greenlet.getcurrent
# Inside Hub, "greenlet" is the property; annotations use this name.
_Greenlet: TypeAlias = greenlet.greenlet
_T = TypeVar("_T")
_SLEEP_CODE = eventlet.greenthread.sleep.__code__
# eventlet functions that compare hub.greenlet with getcurrent() to decide
# whether to take their "in the mainloop" path; see Hub.greenlet.
_MAINLOOP_QUESTIONS = frozenset(
    f.__code__
    for f in (
        eventlet.queue.Waiter.switch,
        eventlet.queue.Waiter.throw,
        eventlet.queue.LightQueue.put,
        eventlet.queue.LightQueue.get,
        # kill() from the mainloop must not schedule a switch back to it: in
        # the dispatcher, that switch would land in a later mode's drain.
        eventlet.greenthread.kill,
    )
)

# How many callbacks _run_rounds may run before the loop gets its turn.
_ROUNDS_BUDGET = 64

# Every owner loop of every bridge hub: green main steps them aside (see
# "The running loop"), including the loop of a hub that use_hub() discarded.
_owner_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


# What Hub._loop_work_of answers for a greenlet that runs loop work.
_ON_LOOP: Any = object()


def _portal_switch(hub: Hub, state: Any) -> Any:
    """Replaced by bridge._portal's switch when that module loads (it imports this one)."""
    raise BridgeInternalError("a portal greenlet exists but bridge._portal is not loaded")


# The hub of each OS thread that has one: bridge.from_thread's targets.
_hubs_by_thread: weakref.WeakValueDictionary[int, Hub] = weakref.WeakValueDictionary()
_real_threading = eventlet.patcher.original("threading")
_asyncio_logger = logging.getLogger("asyncio")

# Owner loops and greenlets of hubs whose process forked: never collected,
# never closed (see "Failure modes" above).
_forked_away: list[object] = []

LOOP_REENTERED_ADVICE = (
    "bridge's hub was re-entered while it was making its event loop: code that ran inside the "
    "loop's construction (a signal handler, a __del__ method) made a green-blocking call or "
    "asked for the hub's loop. Such code may spawn greenthreads, schedule timers and send "
    "events, which run once the loop exists; move blocking calls into a greenthread "
    "(eventlet.spawn)."
)

BLOCKING_CALL_ADVICE = (
    "Green-blocking calls (eventlet.sleep, green socket I/O, eventlet queues, locks and "
    "events...) suspend the calling greenthread, and the event loop's greenlet is not a "
    "greenthread: blocking it would stop every task and greenthread in this thread. Run the "
    "green code in a greenthread: `await bridge.to_async(func)(*args)`; or decorate the "
    "coroutine function with `@bridge.portal`, so that green-blocking calls inside it "
    "suspend only its task; or use the asyncio equivalent (e.g. `await asyncio.sleep(...)`)."
)


class _RecordHolder(logging.Filter):
    """Holds back the records that one OS thread logs; other threads' pass."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = _real_threading.get_ident()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if _real_threading.get_ident() != self.thread:
            return True
        self.records.append(record)
        return False


@contextlib.contextmanager
def _records_held(logger: logging.Logger) -> Iterator[list[logging.LogRecord]]:
    """Hold back what this thread logs to ``logger``, into the list it gives."""
    holder = _RecordHolder()
    logger.addFilter(holder)
    try:
        yield holder.records
    finally:
        logger.removeFilter(holder)


def _handle_records(logger: logging.Logger, records: list[logging.LogRecord]) -> None:
    # Not logger.handle(): the logger's filters passed these records already.
    for record in records:
        logger.callHandlers(record)


def let_go(exc_info: Any) -> None:
    """Drop the dispatcher's frames from an exception that has been reported.

    An exception that ends a greenthread is raised on in the dispatcher, and
    its traceback then holds the dispatcher's frames, from ``_dispatch`` out
    (frame objects keep their callers' frames alive); eventlet keeps the same
    exception in the dead greenthread's exit event. On CPython 3.11+ the
    garbage collector cannot see into the frames of a suspended greenlet, so
    that cycle was never freed: about one greenthread in eight that died
    raising after a wake-up stayed alive, with everything it held (sockets
    included). eventlet's own hubs leak the same way (eventlet issue 408).
    ``gt.wait()`` still raises the exception with the greenthread's frames:
    eventlet stored that traceback before the exception reached us.
    """
    exc = exc_info[1]
    if exc is not None:
        exc.__traceback__ = None


def is_available() -> bool:
    """Tell eventlet's ``use_hub`` that this hub works here (it always does)."""
    return True


def _return_none() -> None:
    return None


def _main_greenlet() -> greenlet.greenlet:
    g = _getcurrent()
    while g.parent is not None:
        g = g.parent
    return g


class _RetireHub(SystemExit):
    """Unwinds an owner greenlet's ``run_forever`` from inside a callback.

    A SystemExit so that asyncio's callback handling lets it through; caught
    by :meth:`Hub.run`, which puts back the running loop of whoever retired
    the greenlet (``run_forever``'s cleanup has just cleared it).
    """

    def __init__(self, running_loop: asyncio.AbstractEventLoop | None) -> None:
        super().__init__()
        self.running_loop = running_loop


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


class Hub(eventlet_asyncio_hub.Hub):
    """An eventlet hub on an asyncio event loop, owning it or joining it.

    Select it with ``EVENTLET_HUB=bridge.hub`` (or
    ``eventlet.hubs.use_hub("bridge.hub")``). It is a subclass of eventlet's
    asyncio hub, so eventlet's ``await greenthread`` and
    ``eventlet.asyncio.spawn_for_awaitable`` work with it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.thread_id = _real_threading.get_ident()
        _hubs_by_thread[self.thread_id] = self
        # Work handed over by other OS threads (bridge.from_thread): appended
        # there, popped here; deque operations are atomic.
        self._inbox: collections.deque[Callable[[], object]] = collections.deque()
        self._blocking_detector: Any = None  # bridge._blocking.BlockingDetector
        # Parked greenthreads that run to_async calls (bridge._carriers).
        self._carriers: list[Any] = []
        # Tasks bridge._adapters.await_ has started; it budgets eager starts.
        self._eager_starts = 0
        # Portal greenlet -> its state (bridge._portal); see Hub.switch.
        self._portals: dict[_Greenlet, Any] = {}
        # The loop our timers and fds are registered on; None before any.
        self._loop: asyncio.AbstractEventLoop | None = None
        # True while self._loop is a loop someone else runs in this thread.
        self._guest = False
        self._owner_loop: asyncio.AbstractEventLoop | None = None
        self._owner_greenlet: _Greenlet | None = None
        # Delayed timers live in eventlet's self.timers/self.next_timers;
        # this handle wakes the loop for the earliest (see _arm).
        self._wakeup_handle: asyncio.TimerHandle | None = None
        self._wakeup_at = math.inf
        # Zero-delay work, with the time it was made ready: eventlet keeps it
        # in its timer heap, so a round runs it in deadline order with the
        # delayed timers that are due (_round).
        self._ready: collections.deque[tuple[float, Callable[[], object]]] = collections.deque()
        # True while a _drain is scheduled on self._loop and has not started.
        # Invariant: while _ready is not empty, a _drain is scheduled, or
        # rounds run in the dispatcher (not suspended) and schedule one when
        # they stop with work left (_run_rounds).
        self._drain_pending = False
        self._closed_scheduled = False
        # Green fds live in a kernel poller of our own (see _poller), made on
        # first use; its fd is a reader of self._poller_loop.
        self._poller: Poller | None = None
        self._poller_loop: asyncio.AbstractEventLoop | None = None
        # fd -> the interests (READABLE|WRITABLE) armed in the poller. Holds
        # exactly the fds with a listener: an fd whose last listener left is
        # dropped, so its next wait arms it again (its number may belong to
        # a new file by then).
        self._armed: dict[int, int] = {}
        # True while this hub makes its owner loop (see _use_owner_loop).
        self._making_loop = False
        # The dispatcher, while it is inside _dispatch (else None, or a
        # dispatcher of another mode): then it serves _requests when the
        # callback that switched to green code returns (_run_in_dispatcher).
        self._dispatching_in: _Greenlet | None = None
        # [requester, fn, args] handed over by greenthreads, served in order.
        self._requests: list[list[Any]] = []
        self._wakeup: SignalWakeup | None = None
        anchor = greenlet.greenlet(_return_none)
        anchor.switch()
        self._anchor = anchor
        # Until a loop is joined, the dispatcher is the (unstarted) owner greenlet.
        self._dispatcher: _Greenlet = self._owner_dispatcher()
        anchor.parent = self._dispatcher

    @property
    def greenlet(self) -> _Greenlet:
        """The greenlet eventlet spawns under and switches to: the anchor.

        A few eventlet functions ask "am I running in the mainloop?" by
        comparing this with ``getcurrent()`` and then do something
        non-blocking instead (a queue hands an item over directly, ``sleep(0)``
        returns). Asked from the dispatcher by one of those, the answer is the
        dispatcher itself. Everything else gets the anchor, so that blocking
        calls reach :meth:`switch` and its :exc:`BlockingCallError`.
        """
        current = _getcurrent()
        if current is self._dispatcher:
            frame = sys._getframe(1)
            code = frame.f_code
            if code in _MAINLOOP_QUESTIONS or (
                code is _SLEEP_CODE and frame.f_locals.get("seconds", 1) <= 0
            ):
                return current
        return self._anchor

    @greenlet.setter
    def greenlet(self, value: _Greenlet) -> None:
        pass  # BaseHub.__init__ makes a hub greenlet; ours are made on demand

    def _post_initialize(self) -> None:
        from bridge import _blocking  # imports this module

        _native.ensure_native_asyncio()
        _blocking.start_from_environment(self)
        running = _get_running_loop_hook()  # None for a discarded hub's owner loop
        if running is not None:
            self._enter_guest(running)

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<bridge.hub.Hub {s.mode} loop={s.loop!r} timers={s.timers} "
            f"readers={s.readers} writers={s.writers}>"
        )

    # -- public introspection ------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop green work runs on now (created in owner mode if needed)."""
        return self._registration_loop()

    @property
    def mode(self) -> Literal["owner", "guest", "idle"]:
        """``"guest"``, ``"owner"``, or ``"idle"`` before the hub needed a loop."""
        if self._guest:
            return "guest"
        return "idle" if self._loop is None else "owner"

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

    # -- which loop, which dispatcher --------------------------------------

    def _registration_loop(self) -> asyncio.AbstractEventLoop:
        running = _get_running_loop()
        loop = self._loop
        if running is loop and loop is not None:
            return loop  # guest mode, or inside the owner greenlet
        if running is None and loop is self._owner_loop and loop is not None:
            return loop  # owner mode, in a greenthread
        if running is not None and running is not self._owner_loop:
            self._enter_guest(running)
            return running
        self._guest = False  # a guest loop stopped and the hook did not see it
        return self._use_owner_loop()

    def _set_dispatcher(self, dispatcher: _Greenlet) -> None:
        anchor = self._anchor
        previous = anchor.parent
        if previous is dispatcher:
            self._dispatcher = dispatcher
            return
        # A greenthread that becomes the dispatcher (it called asyncio.run)
        # has the anchor among its ancestors; hang it on the previous
        # dispatcher instead, or the anchor would become its own ancestor.
        g = dispatcher
        while g is not None:
            if g.parent is anchor:
                g.parent = previous
            g = g.parent
        anchor.parent = dispatcher
        self._dispatcher = dispatcher

    def _owner_dispatcher(self) -> _Greenlet:
        g = self._owner_greenlet
        if g is None or g.dead:
            g = self._owner_greenlet = greenlet.greenlet(self.run, _main_greenlet())
        return g

    def _loop_now(self) -> asyncio.AbstractEventLoop | None:
        """The loop to register on; None while this hub is making its loop.

        Code can run *inside* the making of a loop and re-enter the hub: a
        ``__del__`` or a signal handler between two bytecodes of it. Timers,
        fd waits and ready work registered then are kept, and brought to the
        loop when it exists (``_move_work``).
        """
        if self._making_loop:
            return None
        return self._registration_loop()

    def _use_owner_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._owner_loop
        if loop is not None and not loop.is_closed():
            self._settle_on_owner_loop(loop)
            return loop
        # asyncio logs "Using selector" while it makes a loop; a handler that
        # uses green code (a green lock, a sleep) would re-enter the hub
        # before it has a loop. Such records go to the handlers from a
        # greenthread of their own once the hub is on it: not here, where
        # the caller may be that handler, holding its locks.
        with _records_held(_asyncio_logger) as held:
            loop = self._make_owner_loop()
            self._settle_on_owner_loop(loop)
        if held:
            eventlet.greenthread.spawn_n(_handle_records, _asyncio_logger, held)
        return loop

    def _settle_on_owner_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        previous, self._loop = self._loop, loop
        self._set_dispatcher(self._owner_dispatcher())
        self._move_work(previous, loop)

    def _make_owner_loop(self) -> asyncio.AbstractEventLoop:
        if self._making_loop:
            raise RuntimeError(LOOP_REENTERED_ADVICE)
        self._making_loop = True
        try:
            _native.ensure_native_asyncio()
            loop = self._owner_loop = asyncio.new_event_loop()
            _owner_loops.add(loop)
            # As on eventlet's asyncio hub: asyncio.get_event_loop() and
            # ensure_future() from green main find it before it first runs.
            asyncio.set_event_loop(loop)
        finally:
            self._making_loop = False
        return loop

    def _enter_guest(self, loop: asyncio.AbstractEventLoop) -> None:
        _native.ensure_native_asyncio()
        previous, self._loop = self._loop, loop
        self._guest = True
        self._set_dispatcher(_getcurrent())
        self._move_work(previous, loop)
        self._signal_wakeup().attach(loop)

    def _leave_guest(self) -> None:
        self._guest = False
        if self._wakeup is not None:
            self._wakeup.detach()
        if self._pending_work():
            self._use_owner_loop()
        else:
            self._set_dispatcher(self._owner_dispatcher())
        if self._dispatcher:  # the owner loop is mid-run: it runs again
            _set_running_loop(self._owner_loop)

    def _move_work(
        self, previous: asyncio.AbstractEventLoop | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        """The hub now registers on ``loop``: bring its work over from ``previous``.

        With no loop before (``previous`` is None), the work is what was
        handed over or registered while there was none: from other threads,
        or re-entrant calls made while the loop was being made.
        """
        if previous is not loop:
            self._migrate(previous, loop)

    def _migrate(
        self, old: asyncio.AbstractEventLoop | None, new: asyncio.AbstractEventLoop
    ) -> None:
        if self._wakeup_handle is not None:
            self._wakeup_handle.cancel()
            self._wakeup_handle = None
        self._wakeup_at = math.inf
        self._arm(new)
        if self._poller is not None or self._armed:
            self._watch_poller(new)
            for fileno, armed in list(self._armed.items()):
                if not armed:  # waits of a forked child: armed in the parent's poller
                    self._rearm(fileno)
        if self._inbox:
            new.call_soon(self._drain_inbox)
        # A drain suspended in the old dispatcher no longer counts.
        self._drain_pending = bool(self._ready)
        if self._ready:
            new.call_soon(self._drain)

    def _signal_wakeup(self) -> SignalWakeup:
        if self._wakeup is None:
            self._wakeup = SignalWakeup()
        return self._wakeup

    # -- the dispatcher's side ----------------------------------------------

    def _dispatch(self, fn: Callable[..., object], *args: object) -> Any:
        """Call ``fn(*args)`` in the dispatcher, where it may switch to green code.

        Returns ``sys.exc_info()`` of an ordinary exception, for the caller to
        report, or None. KeyboardInterrupt and SystemExit propagate.
        """
        if self.debug_blocking:  # eventlet's SIGALRM-based detector
            self.block_detect_pre()
        outer = self._dispatching_in
        self._dispatching_in = self._dispatcher
        try:
            fn(*args)
        except greenlet.GreenletExit:
            if not self._guest:
                # Thrown into the owner greenlet (garbage collection of a
                # discarded hub, or retirement): unwind run_forever.
                raise _RetireHub(_get_running_loop()) from None
            exc_info: Any = sys.exc_info()
        except self.SYSTEM_EXCEPTIONS:
            raise
        except BaseException:
            exc_info = sys.exc_info()
        else:
            exc_info = None
        finally:
            self._dispatching_in = outer
            if self.debug_blocking:
                self.block_detect_post()
        return exc_info

    def _can_run_in_dispatcher(self) -> bool:
        """True when the dispatcher is suspended in _dispatch, switched to green code."""
        dispatcher = self._dispatcher
        return self._dispatching_in is dispatcher and dispatcher is not _getcurrent()

    def _run_in_dispatcher(self, fn: Callable[..., _T], *args: object) -> _T:
        """Return ``fn(*args)``, run in the dispatcher now, for a greenthread.

        For loop work that green code needs done at once: ``await_`` starts
        a task and runs its first step this way, which costs two greenlet
        switches instead of a loop iteration. The calling greenthread hands
        ``fn`` over and switches to the dispatcher, which is suspended in
        :meth:`_dispatch` (the caller checks :meth:`_can_run_in_dispatcher`);
        when the callback that had switched to green code returns, and its
        error, if any, has been reported and let go (an exception held by a
        suspended dispatcher would keep a dead greenthread alive; see
        :func:`let_go`), the dispatcher runs ``fn`` (:meth:`_serve_requests`)
        and switches straight back. No other green work runs in between.

        Why not run ``fn`` in the calling greenlet (an earlier design stood
        it in for the dispatcher): every step of a task must run in the same
        greenlet, the loop's. Libraries built on greenlets rely on it:
        SQLAlchemy's asyncio extension makes the greenlet that runs a step
        the parent of its own, and switches to that parent from later steps.
        """
        request = [_getcurrent(), fn, args]
        self._requests.append(request)
        try:
            ok, value = self._anchor.switch()  # to the dispatcher (the anchor is dead)
        except BaseException:
            # Thrown in (a Timeout, a kill) before the dispatcher got to it.
            if request in self._requests:
                self._requests.remove(request)
            raise
        if ok:
            return value
        raise value

    def _serve_requests(self) -> None:
        requests = self._requests
        while requests:
            requester, fn, args = requests.pop(0)
            outcome: Any
            try:
                outcome = (True, fn(*args))
            except BaseException as exc:  # the requester raises it
                outcome = (False, exc)
            # Reused for the exc_info: nothing of it may stay in this frame,
            # which a later request may suspend.
            outcome = self._dispatch(requester.switch, outcome)
            if outcome is not None:
                self.squelch_generic_exception(outcome)
                let_go(outcome)
                outcome = None

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

    def _on_green_io(self) -> None:
        """The poller's fd is readable: a green fd is ready."""
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

    def submit_threadsafe(self, work: Callable[[], object]) -> None:
        """Run ``work()`` in the dispatcher, soon; callable from any OS thread.

        ``work`` runs as a loop callback of whichever loop the hub is on when
        it gets there (the hub may change loops meanwhile: the inbox moves).
        While the hub has no loop, or only a closed one (an ``asyncio.run()``
        of that thread has returned), ``work`` waits for the next.
        """
        self._inbox.append(work)
        while True:
            loop = self._loop
            if loop is None:
                loop = self._owner_loop
            if loop is None:
                return  # no loop yet: the first one drains the inbox (_migrate)
            try:
                loop.call_soon_threadsafe(self._drain_inbox)
                return
            except RuntimeError:  # closed
                if self._loop is loop:
                    return  # as with no loop: the next loop the hub is on drains it

    def _drain_inbox(self) -> None:
        inbox = self._inbox
        while inbox:
            work = inbox.popleft()
            exc_info = self._dispatch(work)
            if exc_info is not None:
                self.squelch_generic_exception(exc_info)
                let_go(exc_info)
                exc_info = None
            if self._requests:
                self._serve_requests()

    def _close_all(self) -> None:
        self._closed_scheduled = False
        while self.closed:
            self.close_one()

    def run(self, *a: object, **kw: object) -> None:
        """The owner greenlet: run the owner loop until aborted or retired."""
        loop = self._owner_loop
        if loop is None:
            return
        wakeup = self._signal_wakeup()
        wakeup.attach(loop)
        self.running = True
        try:
            loop.run_forever()
        except _RetireHub as exc:
            _set_running_loop(exc.running_loop)
        finally:
            self.running = False
            self.stopping = False
            wakeup.detach()

    # -- the greenthreads' side ---------------------------------------------

    def switch(self) -> Any:
        """Suspend the current greenthread until the hub switches back to it."""
        cur = _getcurrent()
        if self._making_loop:
            raise RuntimeError(LOOP_REENTERED_ADVICE)
        self._registration_loop()
        if not self._guest and self._dispatcher.dead:
            self._set_dispatcher(self._owner_dispatcher())
        anchor = self._anchor
        if cur.parent is not anchor or self._portals:  # not plainly a greenthread
            where = self._loop_work_of(cur)
            if where is _ON_LOOP:
                raise BlockingCallError(self._blocking_message())
            if where is not None:  # green code inline in a task: suspend the task
                return _portal_switch(self, where)
        switch_out = getattr(cur, "switch_out", None)
        if switch_out is not None:
            try:
                switch_out()
            except Exception:
                self.squelch_generic_exception(sys.exc_info())
        if not self._guest and self._dispatcher and cur.parent is None:
            # Green main may have stepped the owner loop aside (see "The
            # running loop" above); the loop is about to go on running.
            _set_running_loop(self._owner_loop)
        parent = cur.parent
        if parent is not anchor and parent is not None:  # None: a main greenlet
            try:
                cur.parent = anchor
            except ValueError:
                pass  # an ancestor of the dispatcher
        return anchor.switch()

    def _loop_work_of(self, g: _Greenlet | None) -> Any:
        """What ``g`` runs for: ``_ON_LOOP``, a portal's state, or None (green code).

        A greenlet runs loop work when the dispatcher is its ancestor before
        the anchor is: it is the dispatcher, or a greenlet that loop work
        made and switched to (SQLAlchemy's asyncio extension runs sync code
        in such greenlets, from a task's step). A green-blocking call there
        would suspend the loop itself, unless a portal greenlet (a task
        running inline green code) comes first: then it suspends that task.
        Greenthreads have the anchor as parent; green main has none.
        """
        anchor = self._anchor
        dispatcher = self._dispatcher
        portals = self._portals
        while g is not None:
            if g is anchor:
                return None
            if portals:
                state = portals.get(g)
                if state is not None:
                    return state
            if g is dispatcher:
                return _ON_LOOP
            g = g.parent
        return None

    def _blocking_message(self) -> str:
        where = "in the event loop's greenlet"
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        if task is not None:
            where = f"in task {task.get_name()!r} ({task.get_coro()!r})"
        return f"A green-blocking call was made on the asyncio event loop, {where}. " + (
            BLOCKING_CALL_ADVICE
        )

    def ensure_greenlet(self) -> None:
        if not self._guest and self._dispatcher.dead:
            self._set_dispatcher(self._owner_dispatcher())

    def abort(self, wait: bool = False) -> None:
        """Stop the owner loop (owner mode); a guest hub leaves its loop alone."""
        if self._guest or not self.running or self._owner_loop is None:
            return
        self.stopping = True
        self._owner_loop.stop()
        if wait:
            self.switch()

    # -- timers -----------------------------------------------------------

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

    def _pending_work(self) -> bool:
        return bool(
            self._ready
            or self._inbox
            or self.timers
            or self.next_timers
            or self.listeners[READ]
            or self.listeners[self.WRITE]
        )

    # -- fds: the hub's own poller (see bridge._core._poller) ----------------

    def _make_poller(self) -> Poller:
        poller = self._poller = make_poller()
        return poller

    def _watch_poller(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make the poller's fd a reader of ``loop`` (and of no other loop)."""
        old = self._poller_loop
        if old is loop:
            return
        fileno = (self._poller or self._make_poller()).fileno()
        if old is not None and not old.is_closed():
            try:
                old.remove_reader(fileno)
            except (OSError, ValueError, RuntimeError):
                pass  # a loop being torn down
        loop.add_reader(fileno, self._on_green_io)
        self._poller_loop = loop

    def _poll_green(self) -> int:
        """Run the listeners of the green fds that are ready now, as eventlet's poll hubs do.

        Return how many listeners it ran.
        """
        poller = self._poller
        if poller is None:
            return 0
        events = poller.poll()
        if not events:
            return 0
        armed = self._armed
        readers = self.listeners[READ]
        writers = self.listeners[self.WRITE]
        readable = poller.readable
        writable = poller.writable
        # Collected first, as eventlet does, so that one callback cannot
        # change which listeners this poll wakes.
        woken: list[FdListener] = []
        for fileno, mask in events:
            if fileno in armed:
                armed[fileno] = 0  # one event disarms all of an fd's interests
            if mask & readable:
                listener = readers.get(fileno)
                if listener is not None:
                    woken.append(listener)
            if mask & writable:
                listener = writers.get(fileno)
                if listener is not None:
                    woken.append(listener)
        try:
            for listener in woken:
                if self.listeners[listener.evtype].get(listener.fileno) is not listener:
                    continue  # removed by an earlier callback: its greenthread moved on
                exc_info = self._dispatch(listener.cb, listener.fileno)
                if exc_info is not None:
                    self.squelch_exception(listener.fileno, exc_info)
                    let_go(exc_info)
                    exc_info = None
                if self._requests:
                    self._serve_requests()
        finally:
            # Whoever still waits on a disarmed fd needs it armed again; a
            # waiter that came back during its callback (the usual
            # recv/send/recv) has armed it already (add).
            for fileno, _ in events:
                if armed.get(fileno) == 0:
                    self._rearm(fileno)
        return len(woken)

    def _rearm(self, fileno: int) -> None:
        want = self._interests(fileno)
        if not want:
            self._armed.pop(fileno, None)
            return
        try:
            self._poller.arm(fileno, want)  # type: ignore[union-attr]
        except (OSError, ValueError):
            # Closed behind the hub's back while waited on: the waiters get
            # IOClosed, as on eventlet's hubs when the number is reused.
            self._armed.pop(fileno, None)
            self._obsolete(fileno)
            return
        self._armed[fileno] = want

    def _interests(self, fileno: int) -> int:
        return (READABLE if fileno in self.listeners[READ] else 0) | (
            WRITABLE if fileno in self.listeners[self.WRITE] else 0
        )

    def add(
        self,
        evtype: str,
        fileno: int,
        cb: Callable[[int], object],
        tb: Callable[[BaseException], object],
        mark_as_closed: Callable[[], object] | None,
    ) -> FdListener:
        if self._poller_loop is not self._loop or self._loop is None:
            # First wait, or the hub changed loops. (A loop change that the
            # hook missed is found by the switch() that follows the wait.)
            loop = self._loop_now()
            if loop is not None:
                self._watch_poller(loop)
        listener = BaseHub.add(self, evtype, fileno, cb, tb, mark_as_closed)
        armed = self._armed.get(fileno, 0)
        if not armed & (READABLE if evtype is READ else WRITABLE):
            want = self._interests(fileno)
            try:
                (self._poller or self._make_poller()).arm(fileno, want)
            except BaseException:
                BaseHub.remove(self, listener)
                raise
            self._armed[fileno] = want
        return listener

    def remove(self, listener: FdListener) -> None:
        if listener.spent:
            return
        BaseHub.remove(self, listener)
        # The poller keeps the fd armed (one ignored event at most) rather
        # than pay a system call; dropped from _armed, it is armed anew by the
        # next wait, whatever file its number names by then.
        fileno = listener.fileno
        if fileno not in self.listeners[READ] and fileno not in self.listeners[self.WRITE]:
            self._armed.pop(fileno, None)

    def remove_descriptor(self, fileno: int) -> None:
        BaseHub.remove_descriptor(self, fileno)
        self._armed.pop(fileno, None)
        if self._poller is not None:
            self._poller.forget(fileno)

    def _obsolete(self, fileno: int) -> bool:
        found = BaseHub._obsolete(self, fileno)
        self._armed.pop(fileno, None)
        if found and not self._closed_scheduled:
            self._closed_scheduled = True
            self._make_ready(self._close_all)
        return found

    def notify_close(self, fileno: int) -> None:
        """eventlet's hook, a no-op here as on eventlet's own hubs.

        eventlet calls it from ``GreenFileIO.close()`` whether or not the
        file was open: a second ``close()`` of a green pipe would wake the
        waiters of whatever file has the number by then. Closes that really
        closed an fd come to :meth:`fd_closed` instead.
        """

    def fd_closed(self, fileno: int) -> None:
        """``fileno`` was just closed by green code: wake its waiters with ``IOClosed``.

        eventlet does this only when it sees the number reused; without it, a
        greenthread waiting on a socket that another greenthread closes
        would wait forever (the kernel drops a closed fd from epoll silently).
        Called by bridge's wrappers of ``GreenSocket.close`` and
        ``GreenFileIO.close`` (``_eventlet_patches``), only for a close that
        closed the fd.
        """
        self._obsolete(fileno)

    # -- process events ------------------------------------------------------

    def _running_loop_changed(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is None:
            if self._guest and _getcurrent() is self._dispatcher:
                self._leave_guest()
        elif loop is not self._owner_loop and loop is not self._loop:
            self._enter_guest(loop)

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


WRONG_HUB_ADVICE = (
    "bridge needs its own eventlet hub, but this thread's hub is {hub}. Select bridge's hub "
    "before eventlet makes one: set EVENTLET_HUB=bridge.hub in the environment, or call "
    "eventlet.hubs.use_hub('bridge.hub') before any green code runs."
)


def hub_of_thread(thread_id: int) -> Hub | None:
    """The bridge hub of the OS thread ``thread_id``, if it has one."""
    return _hubs_by_thread.get(thread_id)


def current_hub() -> Hub:
    """This thread's hub, which must be bridge's (made now if there is none yet).

    :raises RuntimeError: another eventlet hub is in use in this thread.
    """
    hub = eventlet.hubs.get_hub()
    if not isinstance(hub, Hub):
        name = f"{type(hub).__module__}.{type(hub).__qualname__}"
        raise RuntimeError(WRONG_HUB_ADVICE.format(hub=name))
    return hub


def _running_loop_hook(loop: asyncio.AbstractEventLoop | None) -> None:
    _set_running_loop(loop)
    if _forking_thread == _real_threading.get_ident():
        # asyncio's own fork handler (3.12+) clears the running loop in the
        # child: that is no loop stopping, and the hub must not move (to a
        # new loop, unregistering its reader from the loop it shares with
        # the parent). _after_fork_in_child deals with the child.
        return
    hub = getattr(_threadlocal, "hub", None)
    if isinstance(hub, Hub):
        hub._running_loop_changed(loop)


def _get_running_loop_hook() -> asyncio.AbstractEventLoop | None:
    loop = _get_running_loop()
    if loop is not None and loop in _owner_loops and _getcurrent().parent is None:
        # Green main asks, about to run a loop of its own or to make a hub;
        # see "The running loop" in the module docstring.
        _set_running_loop(None)
        return None
    return loop


# The thread that is forking, from just before os.fork() until the hooks
# after it have run, in the parent and in the child.
_forking_thread: int | None = None


def _before_fork() -> None:
    global _forking_thread
    _forking_thread = _real_threading.get_ident()


def _after_fork_in_parent() -> None:
    global _forking_thread
    _forking_thread = None


def _after_fork_in_child() -> None:
    global _forking_thread
    _forking_thread = None
    hub = getattr(_threadlocal, "hub", None)
    if isinstance(hub, Hub):
        hub._after_fork_in_child()


def _install() -> None:
    if not hasattr(asyncio.events._set_running_loop, "__bridge_wrapped__"):
        _running_loop_hook.__bridge_wrapped__ = _set_running_loop  # type: ignore[attr-defined]
        asyncio.events._set_running_loop = _running_loop_hook
        asyncio._set_running_loop = _running_loop_hook
        _get_running_loop_hook.__bridge_wrapped__ = _get_running_loop  # type: ignore[attr-defined]
        asyncio.events._get_running_loop = _get_running_loop_hook
        asyncio._get_running_loop = _get_running_loop_hook
        # Registered after asyncio's (imported above): ours run first before
        # a fork, and after asyncio's in the child.
        os.register_at_fork(
            before=_before_fork,
            after_in_parent=_after_fork_in_parent,
            after_in_child=_after_fork_in_child,
        )
    _native.install_hooks()
    _eventlet_patches.install(Hub)


_install()
