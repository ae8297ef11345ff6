"""eventlet-asyncio-bridge: eventlet green code and asyncio code on one loop.

Select the hub with ``EVENTLET_HUB=bridge.hub``. This module re-exports the
public names; the implementation lives in private modules.
"""

from bridge import hub as hub
from bridge._adapters import await_ as await_
from bridge._adapters import to_async as to_async
from bridge._adapters import to_green as to_green
from bridge._errors import BlockingCallError as BlockingCallError
from bridge._errors import BridgeInternalError as BridgeInternalError

__all__ = ("BlockingCallError", "BridgeInternalError", "await_", "hub", "to_async", "to_green")

# Tracebacks, reprs and the docs show the public path.
for _name in __all__:
    _value = globals()[_name]
    if not isinstance(_value, type(hub)):
        _value.__module__ = __name__
del _name, _value
