"""Documentation example: a green producer feeds an async consumer.

Included in docs/primitives.md; pytest runs it.
"""

import asyncio
import os

os.environ.setdefault("EVENTLET_HUB", "bridge.hub")

import eventlet

import bridge


# Legacy code is handed the green face and uses eventlet's queue API.
def legacy_producer(out, count: int) -> None:
    for i in range(count):
        out.put(f"event {i}")  # blocks this greenthread while the queue is full
    out.put(None)


# Migrated code uses the async face of the same queue.
async def consumer(inbox: bridge.Queue) -> list[str]:
    received = []
    while (item := await inbox.get()) is not None:
        received.append(item)
    return received


async def main() -> list[str]:
    queue: bridge.Queue = bridge.Queue(maxsize=10)
    eventlet.spawn(legacy_producer, queue.green, 3)
    return await consumer(queue)


def test_green_producer_async_consumer() -> None:
    assert asyncio.run(main()) == ["event 0", "event 1", "event 2"]
