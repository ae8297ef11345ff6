"""The slow backend of ``bench/alternatives.py``: answers each line after a fixed delay.

Usage (normally only ``bench/alternatives.py`` starts it)::

    python bench/alt_backend.py [--delay 0.02] [--port 0]

Each request is one line (``node-42\\n``); the reply is the same line with `` power on``
appended, sent ``--delay`` seconds later, as a BMC or a database would answer. Connections
are kept alive and may carry any number of requests. It prints ``READY <port>`` once it
listens and runs until it gets SIGTERM or SIGINT.

It must never be the bottleneck: it runs in its own process, on uvloop when installed,
with bare protocols (no streams) and one loop timer per request, about 10-20 µs of CPU
per request; ``bench/alternatives.py`` reports how much CPU it used.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from alt_app import REPLY_SUFFIX

BACKLOG = 4096  # the machine's somaxconn: connection bursts from 1,000s of jobs must fit


class _Line(asyncio.Protocol):
    """One backend connection: every complete line is answered after the delay."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self.loop, self.delay = loop, delay
        self.transport: Any = None
        self.buffer = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\n")) >= 0:
            line, self.buffer = self.buffer[:end], self.buffer[end + 1 :]
            self.loop.call_later(self.delay, self._reply, line + REPLY_SUFFIX)

    def _reply(self, reply: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(reply)


async def serve(delay: float, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Line(loop, delay), "127.0.0.1", port, backlog=BACKLOG
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.02, help="seconds before each reply")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any)")
    args = parser.parse_args(argv)
    if args.delay < 0:
        parser.error("--delay must not be negative")
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.delay, args.port))
    else:
        uvloop.run(serve(args.delay, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
