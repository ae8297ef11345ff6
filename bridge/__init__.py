"""eventlet-asyncio-bridge: eventlet green code and asyncio code on one loop.

Select the hub with ``EVENTLET_HUB=bridge.hub``. This module re-exports the
public names; the implementation lives in private modules.
"""

from bridge import from_thread as from_thread
from bridge import hub as hub
from bridge._adapters import await_ as await_
from bridge._adapters import to_async as to_async
from bridge._adapters import to_green as to_green
from bridge._blocking import BlockingDetector as BlockingDetector
from bridge._blocking import detect_blocking as detect_blocking
from bridge._errors import BlockingCallError as BlockingCallError
from bridge._errors import BridgeInternalError as BridgeInternalError
from bridge._handles import TaskHandle as TaskHandle
from bridge._handles import spawn_async as spawn_async
from bridge._portal import has_portal as has_portal
from bridge._portal import portal as portal
from bridge._sync import Event as Event
from bridge._sync import Lock as Lock
from bridge._sync import Queue as Queue
from bridge._sync import Semaphore as Semaphore
from bridge._sync import SyncStatistics as SyncStatistics

__all__ = (
    "BlockingCallError",
    "BlockingDetector",
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

# Tracebacks, reprs and the docs show the public path.
for _name in __all__:
    _value = globals()[_name]
    if not isinstance(_value, type(hub)):
        _value.__module__ = __name__
del _name, _value
