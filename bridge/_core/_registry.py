"""The registry: the bridge hub of each OS thread, for ``bridge.from_thread``."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import eventlet.hubs

from bridge._core._state import HubBase

if TYPE_CHECKING:
    from bridge._core._hub import Hub

__all__ = ("WRONG_HUB_ADVICE", "current_hub", "hub_of_thread", "register")

_hubs_by_thread: weakref.WeakValueDictionary[int, Hub] = weakref.WeakValueDictionary()

WRONG_HUB_ADVICE = (
    "bridge needs its own eventlet hub, but this thread's hub is {hub}. Select bridge's hub "
    "before eventlet makes one: set EVENTLET_HUB=bridge.hub in the environment, or call "
    "eventlet.hubs.use_hub('bridge.hub') before any green code runs."
)


def register(hub: Hub) -> None:
    """Record ``hub`` as its thread's (``hub.thread_id``)."""
    _hubs_by_thread[hub.thread_id] = hub


def hub_of_thread(thread_id: int) -> Hub | None:
    """The bridge hub of the OS thread ``thread_id``, if it has one."""
    return _hubs_by_thread.get(thread_id)


def current_hub() -> Hub:
    """This thread's hub, which must be bridge's (made now if there is none yet).

    :raises RuntimeError: another eventlet hub is in use in this thread.
    """
    hub = eventlet.hubs.get_hub()
    if not isinstance(hub, HubBase):
        name = f"{type(hub).__module__}.{type(hub).__qualname__}"
        raise RuntimeError(WRONG_HUB_ADVICE.format(hub=name))
    return hub
