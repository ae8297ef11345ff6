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
*Timers and fds are the loop's own.* Zero-delay timers (``sleep(0)``,
``spawn``, every wake-up) wait in a ready queue that one ``call_soon``
callback drains (``_drain``). Delayed timers wait in eventlet's own heap
(``self.timers``, with eventlet's lazy cancellation and its counters), and
one ``call_later`` handle is armed for the earliest deadline
(``_arm``). An fd listener is an ``add_reader``/``add_writer``
registration. Moving everything to another loop (``_migrate``) is then
re-arming one handle, re-scheduling one drain and re-registering the fds.

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
  deadline no later than the earliest timer's; every fd in
  ``self.listeners`` is registered on ``self._loop`` and nowhere else.
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

XX: a reader registration could be kept between waits (it doubled TCP echo
in a trial), but needs every fd close to be seen first; see performance.md.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import itertools
import math
import os
import sys
import weakref
from collections.abc import Callable
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

# How many items that become ready during a drain it may run (see _drain).
_DRAIN_LOOKAHEAD = 64

# Every owner loop of every bridge hub: green main steps them aside (see
# "The running loop"), including the loop of a hub that use_hub() discarded.
_owner_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _portal_switch(hub: Hub, state: Any) -> Any:
    """Replaced by bridge._portal's switch when that module loads (it imports this one)."""
    raise BridgeInternalError("a portal greenlet exists but bridge._portal is not loaded")


# The hub of each OS thread that has one: bridge.from_thread's targets.
_hubs_by_thread: weakref.WeakValueDictionary[int, Hub] = weakref.WeakValueDictionary()
_real_threading = eventlet.patcher.original("threading")

# Owner loops and greenlets of hubs whose process forked: never collected,
# never closed (see "Failure modes" above).
_forked_away: list[object] = []

BLOCKING_CALL_ADVICE = (
    "Green-blocking calls (eventlet.sleep, green socket I/O, eventlet queues, locks and "
    "events...) suspend the calling greenthread, and the event loop's greenlet is not a "
    "greenthread: blocking it would stop every task and greenthread in this thread. Run the "
    "green code in a greenthread: `await bridge.to_async(func)(*args)`; or decorate the "
    "coroutine function with `@bridge.portal`, so that green-blocking calls inside it "
    "suspend only its task; or use the asyncio equivalent (e.g. `await asyncio.sleep(...)`)."
)


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
        self._ready: collections.deque[Callable[[], object]] = collections.deque()
        # Invariant: while _ready is not empty, a _drain is scheduled on
        # self._loop or is running (not suspended) in the dispatcher.
        self._drain_pending = False
        self._closed_scheduled = False
        # (evtype, fileno) still registered with self._loop but with no
        # listener; see _flush_idle.
        self._idle: set[tuple[str, int]] = set()
        self._idle_flush_pending = False
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
                    self._ready,
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

    def _use_owner_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._owner_loop
        if loop is None or loop.is_closed():
            _native.ensure_native_asyncio()
            loop = self._owner_loop = asyncio.new_event_loop()
            _owner_loops.add(loop)
            # As on eventlet's asyncio hub: asyncio.get_event_loop() and
            # ensure_future() from green main find it before it first runs.
            asyncio.set_event_loop(loop)
        previous, self._loop = self._loop, loop
        self._set_dispatcher(self._owner_dispatcher())
        self._move_work(previous, loop)
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
        """The hub now registers on ``loop``: bring its work over from ``previous``."""
        if previous is not None and previous is not loop:
            self._migrate(previous, loop)
        elif self._inbox:  # no loop before: work handed over meanwhile waits
            loop.call_soon(self._drain_inbox)

    def _migrate(
        self,
        old: asyncio.AbstractEventLoop,
        new: asyncio.AbstractEventLoop,
        *,
        unwatch_old: bool = True,
    ) -> None:
        if unwatch_old:
            for evtype, fileno in self._idle:
                self._unwatch(old, evtype, fileno)
        self._idle.clear()
        self._idle_flush_pending = False
        if self._wakeup_handle is not None:
            self._wakeup_handle.cancel()
            self._wakeup_handle = None
        self._wakeup_at = math.inf
        self._arm(new)
        for evtype, bucket in self.listeners.items():
            for fileno in bucket:
                if unwatch_old:
                    self._unwatch(old, evtype, fileno)
                self._watch(new, evtype, fileno)
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
        try:
            fn(*args)
        except greenlet.GreenletExit:
            if self._guest:
                return sys.exc_info()
            # Thrown into the owner greenlet (garbage collection of a
            # discarded hub, or retirement): unwind run_forever.
            raise _RetireHub(_get_running_loop()) from None
        except self.SYSTEM_EXCEPTIONS:
            raise
        except BaseException:
            return sys.exc_info()
        finally:
            if self.debug_blocking:
                self.block_detect_post()
        return None

    def _stand_in(self, fn: Callable[..., _T], *args: object) -> _T:
        """Return ``fn(*args)``, called in the calling greenlet standing in for the dispatcher.

        For loop work done early, outside the loop (``await_`` starts a
        task and runs its first step this way): while ``fn`` runs, the calling
        greenlet is treated as the dispatcher in every way -- green-blocking
        calls raise :exc:`BlockingCallError`, eventlet's "in the mainloop"
        shortcuts apply, and greenthreads that ``fn`` switches to come back
        here when they block or end (the anchor's parent).
        """
        current = _getcurrent()
        dispatcher = self._dispatcher
        anchor = self._anchor
        parent = current.parent
        if parent is not None:
            current.parent = dispatcher  # or anchor -> current -> anchor would be a cycle
        anchor.parent = current
        self._dispatcher = current
        try:
            return fn(*args)
        finally:
            if self._dispatcher is current:  # else a mode change has set a newer one
                self._dispatcher = dispatcher
                anchor.parent = dispatcher
            if parent is not None:
                current.parent = parent

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
        self._wakeup_handle = loop.call_later(deadline - self.clock(), self._fire_due)

    def _fire_due(self) -> None:
        self._wakeup_handle = None
        self._wakeup_at = math.inf
        timers = self.timers
        try:
            self.prepare_timers()
            now = self.clock()
            while timers and timers[0][0] <= now:
                timer = heapq.heappop(timers)[1]
                if timer.called:
                    self.timers_canceled -= 1
                    continue
                exc_info = self._dispatch(timer)
                if exc_info is not None:
                    self.squelch_timer_exception(timer, exc_info)
        finally:
            # Also when a KeyboardInterrupt unwinds the loop: the timers left
            # must fire when the owner loop runs again.
            if self._loop is not None and (timers or self.next_timers):
                self._arm(self._loop)

    def _fd_ready(self, evtype: str, fileno: int) -> None:
        if self.next_timers:  # see _drain
            self.prepare_timers()
        listener = self.listeners[evtype].get(fileno)
        if listener is None:
            self._unwatch_idle(evtype, fileno)
            return
        exc_info = self._dispatch(listener.cb, fileno)
        if exc_info is not None:
            self.squelch_exception(fileno, exc_info)

    def _make_ready(self, item: Callable[[], object]) -> None:
        self._ready.append(item)
        if not self._drain_pending:
            self._drain_pending = True
            self._registration_loop().call_soon(self._drain)

    def _drain(self) -> None:
        """Run ready green work: what is ready now, and maybe a little more.

        One stdlib loop iteration polls the selector (~4 us). eventlet's own
        hubs poll for I/O between two rounds of ready greenthreads only when
        some greenthread waits on an fd, and code relies on a ``sleep(0)``
        letting such I/O in. So: everything ready when the drain started
        runs; then, while no greenthread waits on an fd, up to
        ``_DRAIN_LOOKAHEAD`` items that became ready meanwhile run too, so a
        greenthread yielding with ``sleep(0)`` does not pay for a poll each
        time, and asyncio callbacks still get a turn every so often.
        """
        ready = self._ready
        listeners = self.listeners
        now = len(ready)
        later = _DRAIN_LOOKAHEAD
        try:
            while ready:
                if self.next_timers:
                    # As each round of eventlet's own hubs does: timers
                    # cancelled since they were added never reach the heap.
                    self.prepare_timers()
                if now:
                    now -= 1
                elif later and not (listeners[READ] or listeners[self.WRITE]):
                    later -= 1
                else:
                    break
                item = ready.popleft()
                exc_info = self._dispatch(item)
                if exc_info is not None:
                    self.squelch_timer_exception(item, exc_info)
        except BaseException:
            # KeyboardInterrupt, SystemExit or retirement unwinds the loop;
            # what is still ready runs when a loop runs again.
            self._drain_pending = bool(ready) and self._loop is not None
            if self._drain_pending:
                self._loop.call_soon(self._drain)  # type: ignore[union-attr]
            raise
        if ready:
            self._registration_loop().call_soon(self._drain)
        else:
            self._drain_pending = False

    def submit_threadsafe(self, work: Callable[[], object]) -> None:
        """Run ``work()`` in the dispatcher, soon; callable from any OS thread.

        ``work`` runs as a loop callback of whichever loop the hub is on when
        it gets there (the hub may change loops meanwhile: the inbox moves).
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
            except RuntimeError:  # closed meanwhile; the hub has moved on
                if self._loop is loop:
                    raise

    def _drain_inbox(self) -> None:
        inbox = self._inbox
        while inbox:
            work = inbox.popleft()
            exc_info = self._dispatch(work)
            if exc_info is not None:
                self.squelch_generic_exception(exc_info)

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
        if self._portals:
            state = self._portals.get(cur)
            if state is not None:  # green code inline in a task: suspend the task
                return _portal_switch(self, state)
        self._registration_loop()
        if not self._guest and self._dispatcher.dead:
            self._set_dispatcher(self._owner_dispatcher())
        if cur is self._dispatcher:
            raise BlockingCallError(self._blocking_message())
        switch_out = getattr(cur, "switch_out", None)
        if switch_out is not None:
            try:
                switch_out()
            except Exception:
                self.squelch_generic_exception(sys.exc_info())
        anchor = self._anchor
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
        loop = self._registration_loop()
        deadline = BaseHub.add_timer(self, timer)
        timer._bridge_hub = self
        if deadline < self._wakeup_at:
            self._arm_at(loop, deadline)
        return deadline

    def timer_canceled(self, timer: Timer) -> None:
        # Count only timers in our heap: zero-delay ones are skipped by _drain,
        # and a timer of a hub that use_hub() replaced is not ours to count.
        if getattr(timer, "_bridge_hub", None) is self:
            BaseHub.timer_canceled(self, timer)

    def get_timers_count(self) -> int:
        ready = sum(1 for item in self._ready if not getattr(item, "called", False))
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

    # An fd whose last listener leaves stays registered with the loop until
    # the current loop iteration ends (_flush_idle): a greenthread that waits
    # on the same fd again within the iteration -- the common
    # recv/send/recv pattern -- then costs no add_reader/remove_reader pair.
    # It is unregistered at once when the hub hears the fd was closed or
    # reused (notify_close, mark_as_reopened), when it turns ready with no
    # listener, and when the listener was not a greenthread's wait (a
    # long-lived listener, like green zmq's, goes when its socket closes).
    # Keeping it longer is faster still, but a close the hub does not hear
    # of (a raw os.close) would leave a stale registration that breaks the
    # next owner of the fd number; one iteration bounds that risk.

    def _watch(self, loop: asyncio.AbstractEventLoop, evtype: str, fileno: int) -> None:
        if evtype is READ:
            loop.add_reader(fileno, self._fd_ready, READ, fileno)
        else:
            loop.add_writer(fileno, self._fd_ready, evtype, fileno)

    def _unwatch(self, loop: asyncio.AbstractEventLoop, evtype: str, fileno: int) -> None:
        if loop.is_closed():
            return
        try:
            if evtype is READ:
                loop.remove_reader(fileno)
            else:
                loop.remove_writer(fileno)
        except (OSError, ValueError):
            pass  # the fd was closed behind our back; the kernel dropped it already

    def _unwatch_idle(self, evtype: str, fileno: int) -> None:
        key = (evtype, fileno)
        if key in self._idle:
            self._idle.discard(key)
            if self._loop is not None:
                self._unwatch(self._loop, evtype, fileno)

    def _flush_idle(self) -> None:
        self._idle_flush_pending = False
        idle, self._idle = self._idle, set()
        loop = self._loop
        if loop is not None:
            for evtype, fileno in idle:
                self._unwatch(loop, evtype, fileno)

    def add(
        self,
        evtype: str,
        fileno: int,
        cb: Callable[[int], object],
        tb: Callable[[BaseException], object],
        mark_as_closed: Callable[[], object] | None,
    ) -> FdListener:
        loop = self._registration_loop()
        first = fileno not in self.listeners[evtype]
        listener = BaseHub.add(self, evtype, fileno, cb, tb, mark_as_closed)
        if first:
            key = (evtype, fileno)
            if key in self._idle:
                self._idle.discard(key)
                return listener
            try:
                self._watch(loop, evtype, fileno)
            except BaseException:
                BaseHub.remove(self, listener)
                raise
        return listener

    def remove(self, listener: FdListener) -> None:
        if listener.spent:
            return
        BaseHub.remove(self, listener)
        evtype = listener.evtype
        fileno = listener.fileno
        if fileno in self.listeners[evtype] or self._loop is None:
            return
        if not isinstance(getattr(listener.cb, "__self__", None), greenlet.greenlet):
            # Not a greenthread's wait (trampoline's cb is its switch) but a
            # long-lived listener being dropped, e.g. by green zmq's close():
            # the fd may be closed and its number reused at once.
            self._unwatch(self._loop, evtype, fileno)
            return
        self._idle.add((evtype, fileno))
        if not self._idle_flush_pending:
            self._idle_flush_pending = True
            self._loop.call_soon(self._flush_idle)

    def remove_descriptor(self, fileno: int) -> None:
        watched = [e for e, bucket in self.listeners.items() if fileno in bucket]
        BaseHub.remove_descriptor(self, fileno)
        for evtype in (READ, self.WRITE):
            self._unwatch_idle(evtype, fileno)
        if self._loop is not None:
            for evtype in watched:
                self._unwatch(self._loop, evtype, fileno)

    def _obsolete(self, fileno: int) -> bool:
        for evtype in (READ, self.WRITE):
            self._unwatch_idle(evtype, fileno)
        found = BaseHub._obsolete(self, fileno)
        if found and not self._closed_scheduled:
            self._closed_scheduled = True
            self._make_ready(self._close_all)
        return found

    def notify_close(self, fileno: int) -> None:
        """``fileno`` was closed: wake its waiters with ``IOClosed`` (eventlet
        only does this when the number is reused)."""
        self._obsolete(fileno)

    # -- process events ------------------------------------------------------

    def _running_loop_changed(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is None:
            if self._guest and _getcurrent() is self._dispatcher:
                self._leave_guest()
        elif loop is not self._owner_loop and loop is not self._loop:
            self._enter_guest(loop)

    def _after_fork_in_child(self) -> None:
        if self._guest:
            return
        old_loop, old_greenlet = self._loop, self._owner_greenlet
        _forked_away.append((old_loop, old_greenlet, self._wakeup))
        self._wakeup = None
        self._owner_loop = self._owner_greenlet = self._loop = None
        self.running = False
        if old_loop is None:
            return
        new = self._use_owner_loop()
        self._migrate(old_loop, new, unwatch_old=False)


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
    hub = getattr(_threadlocal, "hub", None)
    if isinstance(hub, Hub):
        hub._running_loop_changed(loop)


def _get_running_loop_hook() -> asyncio.AbstractEventLoop | None:
    loop = _get_running_loop()
    if loop is not None and loop in _owner_loops and _getcurrent().parent is None:
        hub = getattr(_threadlocal, "hub", None)
        if isinstance(hub, Hub) and hub._dispatcher is _getcurrent():
            return loop  # green main runs a task's step (Hub._stand_in): it is on the loop
        # Green main asks, about to run a loop of its own or to make a hub;
        # see "The running loop" in the module docstring.
        _set_running_loop(None)
        return None
    return loop


def _after_fork_in_child() -> None:
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
        os.register_at_fork(after_in_child=_after_fork_in_child)
    _native.install_hooks()
    _eventlet_patches.install(Hub)


_install()
