"""eventlet-asyncio-bridge: eventlet green code and asyncio code on one loop.

Select the hub with ``EVENTLET_HUB=bridge.hub``. This module re-exports the
public names; the implementation lives in private modules.
"""

from bridge import hub as hub
from bridge._errors import BlockingCallError as BlockingCallError
from bridge._errors import BridgeInternalError as BridgeInternalError

__all__ = ("BlockingCallError", "BridgeInternalError", "hub")

BlockingCallError.__module__ = __name__
BridgeInternalError.__module__ = __name__
