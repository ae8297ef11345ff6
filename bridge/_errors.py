"""The exceptions bridge raises on purpose."""

from __future__ import annotations

__all__ = ("BlockingCallError", "BridgeInternalError")


class BlockingCallError(RuntimeError):
    """A green-blocking call was made on the asyncio event loop itself.

    Green-blocking calls (``eventlet.sleep``, a green socket's ``recv``, an
    eventlet ``Queue.get``...) suspend the *greenthread* that makes them. The
    greenlet that runs the event loop is not a greenthread: suspending it
    would stop every task and greenthread in the thread. So the call is
    refused, and the message names the adapter that runs the call in a
    greenthread instead.

    It subclasses :class:`RuntimeError` because eventlet raises a
    ``RuntimeError`` for the same mistake on its other hubs.
    """


class BridgeInternalError(RuntimeError):
    """A bug in bridge itself: an invariant it keeps was found broken.

    Please file a bug with the traceback; the exception is chained from the
    error that revealed it.
    """
