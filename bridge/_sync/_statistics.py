"""What a primitive's ``statistics()`` returns: a frozen snapshot."""

from __future__ import annotations

import dataclasses

__all__ = ("SyncStatistics",)


@dataclasses.dataclass(frozen=True)
class SyncStatistics:
    """A snapshot of a primitive, from its ``statistics()`` method.

    :ivar waiters: parked waiters not woken yet, of both worlds (for a Queue:
        getters).
    :ivar green_waiters: how many of them are greenthreads.
    """

    waiters: int
    green_waiters: int
