"""eventlet-asyncio-bridge: eventlet green code and asyncio code on one loop.

Select the hub with ``EVENTLET_HUB=bridge.hub``. This module re-exports the
public names; the implementation lives in private modules.

The names load on first use (PEP 562), so that importing ``bridge`` -- as
pytest does for every session through the plugin's entry point -- neither
imports eventlet nor installs the hub's hooks in asyncio until something
uses them. Where eventlet is imported already, importing ``bridge`` installs
the hooks that keep asyncio native after ``monkey_patch()`` (``_native``).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge import from_thread as from_thread
    from bridge import hub as hub
    from bridge._core import BlockingDetector as BlockingDetector
    from bridge._core import detect_blocking as detect_blocking
    from bridge._crossings._async_to_green import to_async as to_async
    from bridge._crossings._green_to_async import await_ as await_
    from bridge._crossings._green_to_async import to_green as to_green
    from bridge._crossings._handles import TaskHandle as TaskHandle
    from bridge._crossings._handles import spawn_async as spawn_async
    from bridge._crossings._portal import has_portal as has_portal
    from bridge._crossings._portal import portal as portal
    from bridge._errors import BlockingCallError as BlockingCallError
    from bridge._errors import BridgeInternalError as BridgeInternalError
    from bridge._sync import BoundedSemaphore as BoundedSemaphore
    from bridge._sync import Event as Event
    from bridge._sync import Lock as Lock
    from bridge._sync import Queue as Queue
    from bridge._sync import Semaphore as Semaphore
    from bridge._sync import SyncStatistics as SyncStatistics

# Public name -> the module that defines it (None: the name is a submodule).
_SOURCES: dict[str, str | None] = {
    "BlockingCallError": "bridge._errors",
    "BoundedSemaphore": "bridge._sync",
    "BlockingDetector": "bridge._core",
    "BridgeInternalError": "bridge._errors",
    "Event": "bridge._sync",
    "Lock": "bridge._sync",
    "Queue": "bridge._sync",
    "Semaphore": "bridge._sync",
    "SyncStatistics": "bridge._sync",
    "TaskHandle": "bridge._crossings._handles",
    "await_": "bridge._crossings._green_to_async",
    "detect_blocking": "bridge._core",
    "from_thread": None,
    "has_portal": "bridge._crossings._portal",
    "hub": None,
    "portal": "bridge._crossings._portal",
    "spawn_async": "bridge._crossings._handles",
    "to_async": "bridge._crossings._async_to_green",
    "to_green": "bridge._crossings._green_to_async",
}

__all__ = (
    "BlockingCallError",
    "BlockingDetector",
    "BoundedSemaphore",
    "BridgeInternalError",
    "Event",
    "Lock",
    "Queue",
    "Semaphore",
    "SyncStatistics",
    "TaskHandle",
    "await_",
    "detect_blocking",
    "from_thread",
    "has_portal",
    "hub",
    "portal",
    "spawn_async",
    "to_async",
    "to_green",
)


if "eventlet" in sys.modules:
    # A process that uses eventlet: keep asyncio native from now on, even if
    # bridge's hub is first needed inside a monkey_patch() call (which then
    # could not be wrapped). Projects without eventlet are left alone.
    from bridge._core import _native

    _native.install_hooks()


def __getattr__(name: str) -> Any:
    try:
        source = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module 'bridge' has no attribute {name!r}") from None
    if source is None:
        value: Any = importlib.import_module(f"bridge.{name}")
    else:
        value = getattr(importlib.import_module(source), name)
        value.__module__ = __name__  # documented, and shown in reprs, as bridge.<name>
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
