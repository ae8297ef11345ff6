"""The eventlet hub, selected with ``EVENTLET_HUB=bridge.hub``.

eventlet imports this module by name and takes its ``Hub`` class; the
implementation lives in :mod:`bridge._core`.
"""

from bridge._core import Hub as Hub
from bridge._core import HubStatistics as HubStatistics
from bridge._core import is_available as is_available

__all__ = ("Hub", "HubStatistics", "is_available")

# Tracebacks, reprs and the docs show the public path.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
