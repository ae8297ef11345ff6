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
"""

from __future__ import annotations

import types
from typing import Any

import eventlet.debug
from eventlet.greenio import base as greenio_base
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
        hub = _bridge_hub(getattr(_threadlocal, "hub", None))
        if hub is not None:
            hub.notify_close(fileno)


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
