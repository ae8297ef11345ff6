"""The modes room: which loop the hub is on, owner or guest, and moving between loops.

eventlet runs green code on a *hub*, asyncio runs async code on an *event
loop*; a service in migration has both, on one loop in one thread,
whichever of them started first:

* a legacy green main (``eventlet.monkey_patch(); serve()``) has no loop
  running; the hub makes one and runs it (*owner mode*);
* an async main (``asyncio.run``, aiohttp's ``run_app``, uvicorn,
  pytest-asyncio) already runs a loop; the hub *joins* it (*guest mode*);
* and a process moves between the two: a green main that has used the hub
  calls ``asyncio.run(new_main())`` and goes on green when it returns.

*The running loop.* asyncio keeps one "running loop" per thread, not per
greenlet. In owner mode all green code, green main included, sees the owner
loop as running (once it has run), as on eventlet's asyncio hub. But
asyncio *refuses* to start a loop while another one runs, and a green main
must be able to call ``asyncio.run(new_main())``. Those refusals are made by
the pure-Python checks of ``asyncio.run``/``Runner.run`` and
``run_forever``, which call ``asyncio.events._get_running_loop``; that
function is wrapped (``_get_running_loop_hook``) so that, called from green
main while the owner loop is the running one, it steps the owner loop aside
and answers None. The owner loop is put back when green main next waits on
the hub, or when the loop it started stops. A greenthread asking the same
question still gets the owner loop: ``asyncio.run()`` from a greenthread
would block the loop, and is refused.

*Mode changes* are seen two ways: asyncio's ``events._set_running_loop`` is
wrapped (``_running_loop_hook``), so the hub learns at once when a loop
starts or stops in its thread and moves its work there (``_migrate``: one
handle re-armed, one drain re-scheduled, one reader moved); and every
registration checks the thread's running loop against its own
(``_registration_loop``), which catches loops whose start the hook cannot
see (uvloop binds the function at its import).

*Making the owner loop* can run user code (asyncio logs "Using selector" at
DEBUG; a ``__del__`` or signal handler may run): what it registers then is
kept and brought to the loop once it exists, and asyncio's records wait for
a greenthread of their own (``_records_held``).

Invariant: ``self._guest`` is true exactly while ``self._loop`` runs in the
thread and is not the owner loop.

Failure mode that remains: asyncio tasks and futures created on the owner
loop cannot move to a guest loop; they wait until owner mode resumes (the
hub's own timers and fds do move).

Room API: ``_registration_loop``, ``_loop_now``, ``_use_owner_loop``,
``_enter_guest``, ``_migrate``, ``_running_loop_changed``. For the layers
above: :func:`current_loop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import weakref
from collections.abc import Iterator
from typing import Literal

import eventlet.greenthread
import eventlet.patcher
from eventlet.hubs.hub import READ

from bridge._core import _hooks, _native
from bridge._core._forks import forking_here
from bridge._core._signals import SignalWakeup
from bridge._core._state import LOOP_REENTERED_ADVICE, HubBase, RetireHub
from bridge._core._topology import _getcurrent

__all__ = ("LOOP_REENTERED_ADVICE", "current_loop")

_get_running_loop = _hooks.get_running_loop
_set_running_loop = _hooks.set_running_loop
_real_threading = eventlet.patcher.original("threading")
_asyncio_logger = logging.getLogger("asyncio")

# Every owner loop of every bridge hub: green main steps them aside (see
# "The running loop"), including the loop of a hub that use_hub() discarded.
_owner_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


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


class _Modes(HubBase):
    def _init_modes(self) -> None:
        # The loop our timers and fds are registered on; None before any.
        self._loop = None
        # True while self._loop is a loop someone else runs in this thread.
        self._guest = False
        self._owner_loop = None
        self._owner_greenlet = None
        # True while this hub makes its owner loop (see _use_owner_loop).
        self._making_loop = False
        self._wakeup = None

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
        except RetireHub as exc:
            _set_running_loop(exc.running_loop)
        finally:
            self.running = False
            self.stopping = False
            wakeup.detach()

    def abort(self, wait: bool = False) -> None:
        """Stop the owner loop (owner mode); a guest hub leaves its loop alone."""
        if self._guest or not self.running or self._owner_loop is None:
            return
        self.stopping = True
        self._owner_loop.stop()
        if wait:
            self.switch()

    def _pending_work(self) -> bool:
        return bool(
            self._ready
            or self._inbox
            or self.timers
            or self.next_timers
            or self.listeners[READ]
            or self.listeners[self.WRITE]
        )

    def _running_loop_changed(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is None:
            if self._guest and _getcurrent() is self._dispatcher:
                self._leave_guest()
        elif loop is not self._owner_loop and loop is not self._loop:
            self._enter_guest(loop)


def current_loop(hub: HubBase) -> asyncio.AbstractEventLoop | None:
    """The loop the hub is on now, without making one (None before any)."""
    return hub._loop


def running_loop_hook(loop: asyncio.AbstractEventLoop | None) -> None:
    """asyncio's ``_set_running_loop``, wrapped: tell this thread's hub (see "Mode changes")."""
    _set_running_loop(loop)
    if forking_here():
        # asyncio's own fork handler (3.12+) clears the running loop in the
        # child: that is no loop stopping, and the hub must not move (to a
        # new loop, unregistering its reader from the loop it shares with
        # the parent). The forks room deals with the child.
        return
    hub = _hooks.thread_hub()
    if isinstance(hub, _Modes):
        hub._running_loop_changed(loop)


def get_running_loop_hook() -> asyncio.AbstractEventLoop | None:
    """asyncio's ``_get_running_loop``, wrapped (see "The running loop")."""
    loop = _get_running_loop()
    if loop is not None and loop in _owner_loops and _getcurrent().parent is None:
        # Green main asks, about to run a loop of its own or to make a hub.
        _set_running_loop(None)
        return None
    return loop
