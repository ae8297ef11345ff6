"""Migrated: an asyncio-only event-bus client, and an in-process sink standing in for the bus.

The client knows nothing of eventlet: it is the kind of library a service
adopts during its migration (an async message-bus or HTTP client). Green
code calls it through :func:`bridge.await_`. Wire format: one JSON object per
line; the sink acknowledges each with ``ok\\n``, so a published event has
been received.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class EventClient:
    """One connection to the bus; publishes are serialised on it."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.published = 0
        self._lock = asyncio.Lock()
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def publish(self, event: dict[str, Any]) -> None:
        async with self._lock:
            if self._streams is None:
                self._streams = await asyncio.open_connection(*self.address)
            reader, writer = self._streams
            writer.write(json.dumps(event).encode() + b"\n")
            await writer.drain()
            if await reader.readline() != b"ok\n":
                raise ConnectionError("the event sink did not acknowledge the event")
            self.published += 1

    async def close(self) -> None:
        async with self._lock:
            if self._streams is not None:
                self._streams[1].close()
                await self._streams[1].wait_closed()
                self._streams = None


class EventSink:
    """Receives events, keeps them in order (``received``)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._server: asyncio.Server | None = None
        self.address: tuple[str, int] = ("", 0)

    async def start(self, host: str) -> None:
        self._server = await asyncio.start_server(self._serve, host, 0)
        self.address = self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                self.received.append(json.loads(line))
                writer.write(b"ok\n")
                await writer.drain()
        finally:
            writer.close()
