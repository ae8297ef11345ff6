"""The topology room: which greenlet runs the loop, and how greenthreads get back to it.

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
:meth:`switch`, which gives the clear error of :exc:`BlockingCallError`.

*Loop work and green code.* A greenlet runs loop work when the dispatcher
is among its ancestors before the anchor is (``_loop_work_of``): then a
green-blocking call there would suspend the loop, and is refused; unless a
portal greenlet comes first, whose task it suspends instead.

*Requests.* A greenthread that needs loop work done at once (``await_``'s
first step) hands it to the dispatcher and switches there
(``_run_in_dispatcher``); the dispatcher serves it when the callback that
switched to green code returns (``_serve_requests``), so every step of a
task runs in the loop's greenlet.

Invariants: ``self._anchor`` is dead and ``self._anchor.parent is
self._dispatcher``; ``self._requests`` is empty whenever the dispatcher
leaves a round or a dispatch of its own.

Room API (for the other rooms): ``_dispatch``, ``_set_dispatcher``,
``_owner_dispatcher``, ``_serve_requests``. For the layers above (through
``bridge._core``): :func:`in_dispatcher`, :func:`anchor_of`,
:func:`switch_to_dispatcher`, :func:`resume_green`, :func:`run_in_dispatcher`,
:func:`portal_of`, :func:`let_go`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import greenlet

from bridge._core import _hooks
from bridge._core._state import LOOP_REENTERED_ADVICE, Greenlet, HubBase, PortalLike, RetireHub
from bridge._errors import BlockingCallError, BridgeInternalError

__all__ = (
    "BLOCKING_CALL_ADVICE",
    "anchor_of",
    "can_run_in_dispatcher",
    "in_dispatcher",
    "let_go",
    "portal_of",
    "resume_green",
    "run_in_dispatcher",
    "switch_to_dispatcher",
)

_getcurrent = greenlet.getcurrent
_T = TypeVar("_T")

# What _loop_work_of answers for a greenlet that runs loop work.
_ON_LOOP: Any = object()

BLOCKING_CALL_ADVICE = (
    "Green-blocking calls (eventlet.sleep, green socket I/O, eventlet queues, locks and "
    "events...) suspend the calling greenthread, and the event loop's greenlet is not a "
    "greenthread: blocking it would stop every task and greenthread in this thread. Run the "
    "green code in a greenthread: `await bridge.to_async(func)(*args)`; or decorate the "
    "coroutine function with `@bridge.portal`, so that green-blocking calls inside it "
    "suspend only its task; or use the asyncio equivalent (e.g. `await asyncio.sleep(...)`)."
)


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


def _return_none() -> None:
    return None


def _main_greenlet() -> greenlet.greenlet:
    g = _getcurrent()
    while g.parent is not None:
        g = g.parent
    return g


class _Topology(HubBase):
    def _init_topology(self) -> None:
        anchor = greenlet.greenlet(_return_none)
        anchor.switch()
        self._anchor = anchor
        # Until a loop is joined, the dispatcher is the (unstarted) owner greenlet.
        self._dispatcher = self._owner_dispatcher()
        anchor.parent = self._dispatcher
        # The dispatcher, while it is inside _dispatch (else None, or a
        # dispatcher of another mode): then it serves _requests when the
        # callback that switched to green code returns (_run_in_dispatcher).
        self._dispatching_in = None
        # [requester, fn, args] handed over by greenthreads, served in order.
        self._requests = []

    @property
    def greenlet(self) -> Greenlet:
        """The greenlet eventlet spawns under and switches to: the anchor.

        A few eventlet functions ask "am I running in the mainloop?" by
        comparing this with ``getcurrent()`` and then do something
        non-blocking instead (a queue hands an item over directly, ``sleep(0)``
        returns). Asked from the dispatcher by one of those, the answer is the
        dispatcher itself. Everything else gets the anchor, so that blocking
        calls reach :meth:`switch` and its :exc:`BlockingCallError`.
        """
        current = _getcurrent()
        if current is self._dispatcher and _hooks.asks_from_mainloop(sys._getframe(1)):
            return current
        return self._anchor

    @greenlet.setter
    def greenlet(self, value: Greenlet) -> None:
        pass  # BaseHub.__init__ makes a hub greenlet; ours are made on demand

    def _set_dispatcher(self, dispatcher: Greenlet) -> None:
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
        if not anchor.dead or anchor.parent is not dispatcher:  # the room's invariant
            raise BridgeInternalError(
                f"the hub's anchor {anchor!r} is not a dead child of its dispatcher {dispatcher!r}"
            )

    def _owner_dispatcher(self) -> Greenlet:
        g = self._owner_greenlet
        if g is None or g.dead:
            g = self._owner_greenlet = greenlet.greenlet(self.run, _main_greenlet())
        return g

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
                raise RetireHub(_hooks.get_running_loop()) from None
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

    def switch(self) -> Any:
        """Suspend the current greenthread until the hub switches back to it."""
        cur = _getcurrent()
        if self._making_loop:
            raise RuntimeError(LOOP_REENTERED_ADVICE)
        self._registration_loop()
        if not self._guest and self._dispatcher.dead:
            self._set_dispatcher(self._owner_dispatcher())
        anchor = self._anchor
        if cur.parent is not anchor or self._slots.portals:  # not plainly a greenthread
            where = self._loop_work_of(cur)
            if where is _ON_LOOP:
                raise BlockingCallError(self._blocking_message())
            if where is not None:  # green code inline in a task: suspend the task
                return where.block(self)
        switch_out = getattr(cur, "switch_out", None)
        if switch_out is not None:
            try:
                switch_out()
            except Exception:
                self.squelch_generic_exception(sys.exc_info())
        if not self._guest and self._dispatcher and cur.parent is None:
            # Green main may have stepped the owner loop aside (see "The
            # running loop" above); the loop is about to go on running.
            _hooks.set_running_loop(self._owner_loop)
        parent = cur.parent
        if parent is not anchor and parent is not None:  # None: a main greenlet
            try:
                cur.parent = anchor
            except ValueError:
                pass  # an ancestor of the dispatcher
        return anchor.switch()

    def _loop_work_of(self, g: Greenlet | None) -> Any:
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
        portals = self._slots.portals
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


# -- for the layers above (re-exported by bridge._core) ----------------------------


def in_dispatcher(hub: HubBase) -> bool:
    """True in the greenlet that runs the hub's loop callbacks (loop work, not green code)."""
    return _getcurrent() is hub._dispatcher


def anchor_of(hub: HubBase) -> Greenlet:
    """The dead greenlet whose parent is the dispatcher: what greenthreads switch to."""
    return hub._anchor


def switch_to_dispatcher(hub: HubBase) -> Any:
    """Switch from green code to the dispatcher; return what it is switched back with."""
    return hub._dispatcher.switch()


def resume_green(hub: HubBase, switch: Callable[[], object]) -> None:
    """In the dispatcher: run green code now (``switch`` to it) until it blocks or ends.

    Its error, if one escapes, is reported and let go; then the greenthreads'
    requests it left (``run_in_dispatcher``) are served.
    """
    exc_info = hub._dispatch(switch)
    if exc_info is not None:
        hub.squelch_generic_exception(exc_info)
        let_go(exc_info)
        exc_info = None
    if hub._requests:
        hub._serve_requests()


def can_run_in_dispatcher(hub: HubBase) -> bool:
    """True when :func:`run_in_dispatcher` can hand work to the dispatcher now."""
    return hub._can_run_in_dispatcher()


def run_in_dispatcher(hub: HubBase, fn: Callable[..., _T], *args: object) -> _T:
    """From a greenthread: ``fn(*args)`` run in the dispatcher, now (see ``_run_in_dispatcher``)."""
    return hub._run_in_dispatcher(fn, *args)


def portal_of(hub: HubBase, g: Greenlet) -> PortalLike | None:
    """The portal whose task green code in ``g`` runs for, if any."""
    where = hub._loop_work_of(g)
    return where if isinstance(where, PortalLike) else None
