"""The fds room: green fds in the hub's own kernel poller, one reader of the loop.

A loop knows an fd by its number, green code closes fds in ways the hub never
hears of, and the number is reused by asyncio at once: so green fds never
enter the loop's selector (``_poller``'s docstring has the whole story).
They live in an epoll instance of the hub's own, whose fd is one reader of
the loop (``_watch_poller``); a round polls it at its end (``_poll_green``).

Invariant: the fds in ``self._armed`` are exactly those in
``self.listeners``; an fd there with a non-zero value is armed in the
poller for at least the interests of its listeners (0: an event disarmed
it, ``_poll_green`` arms it again). While any is, the poller's fd is a
reader of ``self._loop`` (``self._poller_loop``) and of no other loop.

Room API: ``_poll_green``, ``_watch_poller``, ``_rearm``, ``_obsolete``,
and eventlet's contract (``add``, ``remove``, ``remove_descriptor``,
``notify_close``) plus ``fd_closed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from eventlet.hubs.hub import READ, BaseHub, FdListener

from bridge._core._poller import READABLE, WRITABLE, Poller, make_poller
from bridge._core._state import HubBase
from bridge._core._topology import let_go

__all__ = ()


class _GreenFds(HubBase):
    def _init_fds(self) -> None:
        # Made on first use; its fd is a reader of self._poller_loop.
        self._poller = None
        self._poller_loop = None
        # fd -> the interests (READABLE|WRITABLE) armed in the poller. Holds
        # exactly the fds with a listener: an fd whose last listener left is
        # dropped, so its next wait arms it again (its number may belong to
        # a new file by then).
        self._armed = {}

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

    def _on_green_io(self) -> None:
        """The poller's fd is readable: a green fd is ready."""
        self._run_rounds()

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
