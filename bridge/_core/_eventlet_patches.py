"""The two places where eventlet itself has to be taught about our hub.

Both are installed when :mod:`bridge.hub` is imported, and both leave
eventlet's behaviour on its own hubs exactly as it was.

1. ``eventlet.debug.hub_prevent_multiple_readers(False)`` refuses any hub that
   is an ``eventlet.hubs.asyncio.Hub``, because eventlet's asyncio hub cannot
   serve several readers of one fd. Ours is such a subclass (eventlet's
   ``await gt`` and ``spawn_for_awaitable`` check for it) and *can* serve
   them, so the function is replaced by one that refuses only eventlet's hub.

2. ``GreenSocket.close`` is the real socket's ``close``: the hub is never told.
   On a poll-based hub a greenthread still waiting on that fd then waits
   forever (the kernel drops a closed fd from epoll silently). We route
   ``close`` through :func:`_close_and_notify`, which tells our hub once the fd
   is really closed (not merely released while ``makefile()`` objects still
   hold it), and the hub wakes the waiters with ``IOClosed``.
   ``GreenFileIO.close`` (green pipes) calls eventlet's ``notify_close`` on
   every call, the second close of a closed pipe included, when the number
   may already be another file's; it is wrapped the same way, to tell our
   hub only of the close that closed the fd.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import eventlet.debug
from eventlet.greenio import base as greenio_base
from eventlet.greenio import py3 as greenio_py3
from eventlet.hubs import _threadlocal
from eventlet.hubs import hub as eventlet_base_hub

__all__ = ("install",)

# bridge's Hub class, set by install(): imported lazily it would fail in
# socket finalizers at interpreter shutdown.
_hub_class: type[Any] | None = None


def _bridge_hub(hub: object) -> Any:
    """``hub`` if it is bridge's hub, else None."""
    if _hub_class is not None and isinstance(hub, _hub_class):
        return hub
    return None


def hub_prevent_multiple_readers(state: bool = True) -> None:
    """Refuse (True, the default) or allow (False) several readers of one fd.

    bridge's replacement for eventlet's function of the same name: it allows
    several readers on bridge's hub, and refuses them on eventlet's own
    asyncio hub, as eventlet does. See eventlet's documentation for why
    allowing them is rarely a good idea.
    """
    from eventlet.hubs import asyncio as eventlet_asyncio_hub
    from eventlet.hubs import get_hub

    hub = get_hub()
    if not state and isinstance(hub, eventlet_asyncio_hub.Hub) and _bridge_hub(hub) is None:
        raise RuntimeError("Multiple readers are not yet supported by asyncio hub")
    eventlet_base_hub.g_prevent_multiple_readers = state


def _close_and_notify(sock: Any) -> None:
    real_close = sock.__dict__["_bridge_real_close"]
    fd = sock.fd
    fileno = fd.fileno()
    real_close()
    if fileno >= 0 and fd.fileno() == -1:
        _tell_hub(fileno)


def _tell_hub(fileno: int) -> None:
    hub = _bridge_hub(getattr(_threadlocal, "hub", None))
    if hub is not None:
        hub.fd_closed(fileno)


def _file_close_and_notify(real_close: Callable[[Any], None]) -> Callable[[Any], None]:
    @functools.wraps(real_close)
    def close(self: Any) -> None:
        fileno = -1 if self._closed else self._fileno
        real_close(self)
        if fileno >= 0:
            _tell_hub(fileno)

    return close


class _NotifyingClose:
    """Class attribute ``GreenSocket.close``: stores the real close, serves ours."""

    def __set__(self, sock: Any, real_close: Any) -> None:
        sock.__dict__["_bridge_real_close"] = real_close

    def __get__(self, sock: Any, owner: type | None = None) -> Any:
        if sock is None:
            return self
        if "_bridge_real_close" not in sock.__dict__:
            raise AttributeError("close")
        return types.MethodType(_close_and_notify, sock)


def install(hub_class: type[Any]) -> None:
    """Install the patches for ``hub_class`` (bridge's Hub); idempotent."""
    global _hub_class
    if _hub_class is not None:
        return
    _hub_class = hub_class
    eventlet.debug.hub_prevent_multiple_readers = hub_prevent_multiple_readers
    greenio_base.GreenSocket.close = _NotifyingClose()
    greenio_py3.GreenFileIO.close = _file_close_and_notify(greenio_py3.GreenFileIO.close)
