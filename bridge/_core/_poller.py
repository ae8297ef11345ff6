"""The hub's own kernel poller for green fds, registered once with the loop.

Why not the loop's ``add_reader``/``add_writer``
------------------------------------------------
An asyncio loop knows an fd by its *number*. Green code closes fds in ways
the hub never hears of (``os.close``, a garbage-collected socket, a
``makefile()`` copy closed last, ``detach()``, a subprocess pipe), and the
kernel hands the number out again at once, often to an asyncio transport.
A green registration left in the loop's selector then collides with
asyncio's own: the stdlib loop fails in ``selector.modify`` with ENOENT
(the kernel dropped the closed fd, the selector's map did not), uvloop
refuses ``remove_reader`` with "File descriptor N is used by transport".
No bookkeeping in the hub can close that gap, because the close is not
seen.

So green fds never enter the loop's selector. They live in a poller of the
hub's own (an epoll instance; kqueue on BSD and macOS), and only that
poller's fd is registered with the loop, once, as a reader: it turns
readable when any green fd is ready. The kernel removes a closed fd from
epoll and kqueue by itself, so a registration can never outlive its fd,
whichever way it was closed, and the loop's selector only ever holds
asyncio's fds and ours.

Registrations are one-shot (``EPOLLONESHOT``, ``EV_ONESHOT``), like a
greenthread's wait: a registration fires at most once and is then disarmed
until the hub arms it again. What remains of a registration whose fd was
duplicated and then closed under one of its numbers (epoll keys a
registration by fd *and* open file) can therefore wake a greenthread
spuriously at most once; green I/O retries on a spurious wake-up. And a
registration that stays armed after its waiter left (a timeout) costs at
most one ignored event, so the hub does not pay a system call to disarm it.

Arming always asks the kernel (``EPOLL_CTL_MOD``, then ``ADD`` if the fd is
not registered): a fd number whose old registration the kernel dropped on
close is registered anew, never assumed armed.
"""

from __future__ import annotations

import errno
import functools
from typing import Protocol

from eventlet import patcher

__all__ = ("READABLE", "WRITABLE", "Poller", "make_poller")

_select = patcher.original("select")

READABLE = 1
WRITABLE = 2


class Poller(Protocol):
    """What the hub needs of a kernel poller (see the module docstring)."""

    #: The bits of an event mask from :meth:`poll` that wake readers, and
    #: writers. Errors and hang-ups are in both, as on eventlet's poll hubs:
    #: the waiter finds out by trying.
    readable: int
    writable: int

    def fileno(self) -> int: ...

    def arm(self, fd: int, interests: int) -> None:
        """Arm one-shot interest in ``interests`` (READABLE|WRITABLE) of ``fd``.

        Any event on ``fd`` disarms all of its interests (a kqueue, which
        could keep the others, is treated the same: one rule for the hub).

        :raises OSError: ``fd`` is closed (EBADF) or cannot be polled (EPERM:
            a regular file).
        :raises ValueError: ``fd`` is negative.
        """
        ...

    def forget(self, fd: int) -> None:
        """Drop ``fd``'s registration if the kernel still has one; never raises."""
        ...

    def poll(self) -> list[tuple[int, int]]:
        """Return ``(fd, event mask)`` for each fd ready now; never blocks."""
        ...

    def close(self) -> None: ...


class EpollPoller:
    """Green fds in an epoll instance of the hub's own (Linux)."""

    __slots__ = ("_epoll", "_mask_of", "poll", "readable", "writable")

    def __init__(self) -> None:
        epoll = self._epoll = _select.epoll()
        one_shot = _select.EPOLLONESHOT
        self._mask_of = (
            one_shot,
            _select.EPOLLIN | _select.EPOLLPRI | one_shot,
            _select.EPOLLOUT | one_shot,
            _select.EPOLLIN | _select.EPOLLPRI | _select.EPOLLOUT | one_shot,
        )
        self.readable = _select.EPOLLIN | _select.EPOLLPRI | _select.EPOLLERR | _select.EPOLLHUP
        self.writable = _select.EPOLLOUT | _select.EPOLLERR | _select.EPOLLHUP
        # The hub polls once a round: a C call, no Python frame of ours.
        self.poll = functools.partial(epoll.poll, 0)

    def fileno(self) -> int:
        return self._epoll.fileno()

    def arm(self, fd: int, interests: int) -> None:
        mask = self._mask_of[interests]
        try:
            self._epoll.modify(fd, mask)
        except FileNotFoundError:
            self._epoll.register(fd, mask)

    def forget(self, fd: int) -> None:
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            pass  # closed already: the kernel dropped it

    def close(self) -> None:
        self._epoll.close()


class KqueuePoller:
    """Green fds in a kqueue of the hub's own (BSD, macOS).

    Not exercised by CI (Linux only); kept to the same contract as
    :class:`EpollPoller`, which the hub's tests pin down.
    """

    __slots__ = ("_kqueue",)

    readable = READABLE
    writable = WRITABLE

    def __init__(self) -> None:
        self._kqueue = _select.kqueue()

    def fileno(self) -> int:
        return self._kqueue.fileno()

    def arm(self, fd: int, interests: int) -> None:
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
        # A filter left armed from an earlier wait fires at most once, and is
        # ignored then, as with epoll; so only the wanted ones are added.
        flags = _select.KQ_EV_ADD | _select.KQ_EV_ONESHOT
        changes = []
        if interests & READABLE:
            changes.append(_select.kevent(fd, _select.KQ_FILTER_READ, flags))
        if interests & WRITABLE:
            changes.append(_select.kevent(fd, _select.KQ_FILTER_WRITE, flags))
        self._kqueue.control(changes, 0, 0)

    def forget(self, fd: int) -> None:
        for kfilter in (_select.KQ_FILTER_READ, _select.KQ_FILTER_WRITE):
            try:
                self._kqueue.control([_select.kevent(fd, kfilter, _select.KQ_EV_DELETE)], 0, 0)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.EBADF):
                    raise

    def poll(self) -> list[tuple[int, int]]:
        try:
            events = self._kqueue.control(None, 1024, 0)
        except InterruptedError:
            return []
        ready: dict[int, int] = {}
        for ev in events:
            if ev.flags & _select.KQ_EV_ERROR:
                fired = READABLE | WRITABLE
            elif ev.filter == _select.KQ_FILTER_READ:
                fired = READABLE
            else:
                fired = WRITABLE
            ready[ev.ident] = ready.get(ev.ident, 0) | fired
        return list(ready.items())

    def close(self) -> None:
        self._kqueue.close()


def make_poller() -> Poller:
    """A new poller of the best kind this platform has.

    :raises RuntimeError: the platform has neither epoll nor kqueue.
    """
    if hasattr(_select, "epoll"):
        return EpollPoller()
    if hasattr(_select, "kqueue"):
        return KqueuePoller()
    raise RuntimeError(
        "bridge.hub needs epoll (Linux) or kqueue (BSD, macOS) to watch green file "
        "descriptors; this platform has neither. Use eventlet's own hubs here."
    )
