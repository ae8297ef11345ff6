"""The load generator of ``bench/alternatives.py``: N keep-alive clients, bounded in time.

Usage (normally only ``bench/alternatives.py`` starts it)::

    python bench/alt_load.py --port PORT --clients 100 [--warmup 2] [--duration 10]

Each of ``--clients`` clients holds one HTTP/1.1 keep-alive connection and sends
``GET /v1/nodes/<n>`` back to back (a closed loop: the next request leaves when the answer
to the last one arrived). Phases: connect every client (at most 128 connects in flight;
each connected client starts sending at once), ``--warmup`` seconds, then the measured
window of ``--duration`` seconds, announced on stdout by ``WINDOW_START`` and
``WINDOW_END`` lines so that the caller can read the server's CPU time at both ends. The
last line is ``LOAD_RESULT <json>``: requests completed in the window, requests/s,
latency percentiles of those requests, and errors by kind.

Errors, each followed by a new connection: ``connect`` (refused or not accepted within
10 s), ``closed`` (the server closed or reset a connection with a request outstanding),
``timeout`` (no complete answer within ``--timeout`` s), ``status NNN`` (not 200),
``bad response`` (no Content-Length, or a body without the requested node's name).

It runs on uvloop when installed, with bare protocols, to stay cheap: on a small machine
it shares the CPUs with the server it measures; the caller reports its CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

ROWS = 1000  # must match alt_app.ROWS
CONNECTS_IN_FLIGHT = 128
CONNECT_TIMEOUT = 10.0


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))]


class Run:
    """Shared state of one load run: the window, the samples, the errors."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port, self.timeout = port, timeout
        self.window: tuple[float, float] | None = None  # (start, end); end = inf while open
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()  # in the window
        self.errors_total: Counter[str] = Counter()
        # Connections the server ended between requests (no error): with a
        # "Connection: close" header, or silently.
        self.closed_idle: Counter[str] = Counter()
        self.stopping = False
        self.clients: list[Client] = []
        self.gate = asyncio.Semaphore(CONNECTS_IN_FLIGHT)

    def in_window(self, now: float) -> bool:
        return self.window is not None and self.window[0] <= now <= self.window[1]

    def answered(self, latency: float, now: float) -> None:
        if self.in_window(now):
            self.latencies.append(latency)

    def error(self, kind: str) -> None:
        self.errors_total[kind] += 1
        if self.in_window(time.perf_counter()):
            self.errors[kind] += 1

    async def connect(self, client: Client) -> None:
        """(Re)connect ``client`` until it is connected or the run stops."""
        loop = asyncio.get_running_loop()
        while not self.stopping:
            async with self.gate:
                try:
                    await asyncio.wait_for(
                        loop.create_connection(lambda: client, "127.0.0.1", self.port),
                        CONNECT_TIMEOUT,
                    )
                    return
                except (OSError, asyncio.TimeoutError):
                    self.error("connect")
            await asyncio.sleep(0.1)

    def reconnect(self, client: Client) -> None:
        if not self.stopping:
            asyncio.get_running_loop().create_task(self.connect(client))

    async def watch_timeouts(self) -> None:
        while not self.stopping:
            await asyncio.sleep(0.25)
            deadline = time.perf_counter() - self.timeout
            for client in self.clients:
                if client.pending and client.sent_at < deadline:
                    client.fail("timeout")


class Client(asyncio.Protocol):
    """One keep-alive connection sending one request at a time."""

    def __init__(self, run: Run, index: int) -> None:
        self.run, self.index = run, index
        self.transport: Any = None
        self.buffer = b""
        self.sent = 0
        self.sent_at = 0.0
        self.pending = False
        self.expect = b""
        self.closing = False  # we are closing the connection: its loss is no news

    def connection_made(self, transport: Any) -> None:
        self.transport, self.buffer, self.closing = transport, b"", False
        self.send()

    def send(self) -> None:
        self.sent += 1
        node = (self.index * 7 + self.sent) % ROWS + 1
        self.expect = b'"node-%d"' % node
        self.pending = True
        self.sent_at = time.perf_counter()
        self.transport.write(b"GET /v1/nodes/%d HTTP/1.1\r\nHost: bench\r\n\r\n" % node)

    def fail(self, kind: str) -> None:
        """Count an error and start over on a new connection."""
        self.pending = False
        self.run.error(kind)
        if self.transport is not None:
            self.closing = True
            self.transport.abort()  # connection_lost reconnects

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0 or not self.pending:
            return
        head = buffer[:end].lower()
        if not head.startswith(b"http/1.1 200 "):
            self.fail(f"status {head[9:12].decode(errors='replace')}")
            return
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self.fail("bad response")
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(buffer) < total:
            return
        now = time.perf_counter()
        if self.expect not in buffer[end + 4 : total]:
            self.fail("bad response")
            return
        self.buffer = buffer[total:]
        self.pending = False
        self.run.answered(now - self.sent_at, now)
        if b"\r\nconnection: close" in head:
            self.run.closed_idle["header"] += 1
            self.closing = True
            self.transport.close()  # the server ends keep-alive: not an error
        elif not self.run.stopping:
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.run.stopping:
            return
        if self.pending:
            self.pending = False
            self.run.error("closed")
        elif not self.closing:
            self.run.closed_idle["silently"] += 1
        self.run.reconnect(self)


async def load(args: argparse.Namespace) -> dict[str, Any]:
    run = Run(args.port, args.timeout)
    run.clients = [Client(run, i) for i in range(args.clients)]
    started = time.perf_counter()
    connecting = [asyncio.create_task(run.connect(c)) for c in run.clients]
    watcher = asyncio.create_task(run.watch_timeouts())
    # Connects that are still failing after the connect phase go on in the background.
    await asyncio.wait(connecting, timeout=args.connect_phase)
    connect_seconds = time.perf_counter() - started
    await asyncio.sleep(args.warmup)
    connected = sum(1 for c in run.clients if c.transport is not None)
    start = time.perf_counter()
    run.window = (start, float("inf"))
    print("WINDOW_START", flush=True)
    await asyncio.sleep(args.duration)
    end = time.perf_counter()
    run.window = (start, end)
    print("WINDOW_END", flush=True)
    run.stopping = True
    watcher.cancel()
    for task in connecting:
        task.cancel()
    for client in run.clients:
        if client.transport is not None:
            client.transport.abort()
    latencies = sorted(run.latencies)
    seconds = end - start
    ms = {
        f"{name}_ms": None if value is None else value * 1e3
        for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        for value in [_percentile(latencies, fraction)]
    }
    return {
        "clients": args.clients,
        "connected": connected,
        "connect_seconds": connect_seconds,
        "requests": len(latencies),
        "seconds": seconds,
        "rate": len(latencies) / seconds,
        **ms,
        "errors": dict(run.errors),
        "errors_total": dict(run.errors_total),
        "closed_idle": dict(run.closed_idle),
        "load_cpu_seconds": time.process_time(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="server port on 127.0.0.1")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window")
    parser.add_argument("--duration", type=float, default=10.0, help="window, seconds")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument(
        "--connect-phase", type=float, default=30.0, help="at most this long to connect all"
    )
    args = parser.parse_args(argv)
    for name in ("clients", "duration", "timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(load(args))
    else:
        result = uvloop.run(load(args))
    print("LOAD_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
