"""eventlet-asyncio-bridge: eventlet green code and asyncio code on one loop.

Select the hub with ``EVENTLET_HUB=bridge.hub``; see the documentation for
the adapters between the two worlds.
"""

from bridge._errors import BlockingCallError as BlockingCallError
from bridge._errors import BridgeInternalError as BridgeInternalError
from bridge.hub import Hub as Hub
from bridge.hub import HubStatistics as HubStatistics

__all__ = ("BlockingCallError", "BridgeInternalError", "Hub", "HubStatistics")
