"""Wake the event loop when a signal arrives, so Python handlers take effect.

A Python-level signal handler (``signal.signal(SIGTERM, handler)``) runs
between bytecodes of the main thread. If the loop is blocked in
``epoll_wait`` at that moment, the kernel interrupts the call, Python runs
the handler, and then *retries* the wait (PEP 475) with the remaining
timeout. A handler that schedules green work (``event.send()``,
``eventlet.spawn()``) puts a callback on the loop's ready queue, but the
loop does not look at it until the wait times out, which may be never.

asyncio solves this for its own ``add_signal_handler`` with
``signal.set_wakeup_fd``. :class:`SignalWakeup` does the same for handlers
installed any other way: a socketpair whose read end the loop watches, and
whose write end is the process's wakeup fd while a hub-driven loop runs.

Politeness: the wakeup fd is taken only in the main thread and only if no
one else holds it (uvloop and asyncio's own signal handling do); it is given
back only if it is still ours.
"""

from __future__ import annotations

import asyncio
import signal

from eventlet import patcher

__all__ = ("SignalWakeup",)

_socket = patcher.original("socket")


class SignalWakeup:
    """A wakeup socketpair attached to at most one loop at a time."""

    def __init__(self) -> None:
        self._rsock, self._wsock = _socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._loop: asyncio.AbstractEventLoop | None = None
        # True while the process's wakeup fd is our write end.
        self._owns_wakeup_fd = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop:
            return
        self.detach()
        loop.add_reader(self._rsock.fileno(), self._drain)
        self._loop = loop
        ours = self._wsock.fileno()
        try:
            previous = signal.set_wakeup_fd(ours, warn_on_full_buffer=False)
        except ValueError:  # not the main thread: signals never run here
            return
        if previous not in (-1, ours):
            signal.set_wakeup_fd(previous)
        else:
            self._owns_wakeup_fd = True

    def detach(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._rsock.fileno())
        if self._owns_wakeup_fd:
            self._owns_wakeup_fd = False
            try:
                current = signal.set_wakeup_fd(-1)
            except ValueError:
                return
            if current != self._wsock.fileno():
                signal.set_wakeup_fd(current)

    def close(self) -> None:
        self.detach()
        self._rsock.close()
        self._wsock.close()

    def _drain(self) -> None:
        try:
            while self._rsock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
