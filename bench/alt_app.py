"""The application every path of ``bench/alternatives.py`` serves, written twice.

An API service's request, I/O bound the way OpenStack's are: ``GET /v1/nodes/<n>`` asks a
backend over a real TCP socket for node ``n``'s power state (the backend answers after
20 ms, ``bench/alt_backend.py``) and reads the node's row from SQLite, then answers
~120 bytes of JSON.

* :func:`make_wsgi_app` is the legacy application: plain WSGI, blocking ``socket`` and
  ``sqlite3``. It is the same code in all four paths that serve it (``eventlet.wsgi`` on
  either hub, ``bridge.wsgi.handler``, cheroot); under ``eventlet.monkey_patch()`` its
  sockets are green, under cheroot they are real and each request has an OS thread.
* :func:`make_aiohttp_handler` is the same application rewritten for asyncio: what a team
  ends with. The backend call is ``await``-ed over asyncio streams; the SQLite query stays
  synchronous, as it is in the legacy app under eventlet (a sub-millisecond indexed read
  that never waits on the network; sending it to a thread would cost more than it takes).

The conductor workload (``bench/alt_conductor.py``) reuses :class:`BackendSession` and
:class:`AsyncBackendSession`: one job talks to one node's BMC.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

ROWS = 1000  # nodes in the table; requests ask for node 1..ROWS
REPLY_SUFFIX = b" power on\n"  # the backend appends this to each request line


def make_database(path: Path, rows: int = ROWS) -> None:
    """Create the SQLite file the application reads (``rows`` nodes with an index)."""
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        with db:  # commits
            db.execute(
                "CREATE TABLE nodes (id INTEGER PRIMARY KEY, name TEXT NOT NULL, driver TEXT,"
                " provision_state TEXT, conductor_group TEXT)"
            )
            db.execute("CREATE INDEX nodes_name ON nodes (name)")
            db.executemany(
                "INSERT INTO nodes VALUES (?, ?, ?, ?, ?)",
                [
                    (i, f"node-{i}", ("ipmi", "redfish")[i % 2], "active", f"group-{i % 8}")
                    for i in range(1, rows + 1)
                ],
            )
    finally:
        db.close()


class Database:
    """A lazily grown pool of SQLite connections, safe from threads and greenthreads.

    The pool grows to the number of queries that run at the same time (one under eventlet
    and asyncio, where a query never yields; up to the pool size under threads), as a
    SQLAlchemy ``QueuePool`` would. ``list.pop``/``append`` are atomic, so no lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._idle: list[sqlite3.Connection] = []

    def node(self, index: int) -> tuple[Any, ...]:
        try:
            db = self._idle.pop()
        except IndexError:
            db = sqlite3.connect(self.path, check_same_thread=False)
        try:
            row = db.execute(
                "SELECT name, driver, provision_state FROM nodes WHERE id = ?", (index,)
            ).fetchone()
        finally:
            self._idle.append(db)
        if row is None:
            raise LookupError(f"node {index} is not in {self.path}")
        return tuple(row)


def _expect_reply(request: bytes, reply: bytes) -> bytes:
    if reply != request.rstrip(b"\n") + REPLY_SUFFIX:
        raise ConnectionError(f"backend answered {reply!r} to {request!r}")
    return reply[: -len(REPLY_SUFFIX)].split(b" ", 1)[0]


class BackendSession:
    """A blocking connection to the backend: one line out, one line back (after 20 ms)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, key: str) -> str:
        request = key.encode() + b"\n"
        self.sock.sendall(request)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the backend closed the connection mid-reply")
            reply += chunk
        _expect_reply(request, reply)
        return "on"

    def close(self) -> None:
        self.sock.close()


class BackendPool:
    """Keep-alive backend connections reused across requests (LIFO, grown on demand).

    A request holds one connection while it waits, so the pool grows to the number of
    requests waiting on the backend at once: the clients' concurrency under eventlet and
    asyncio, at most the thread pool's size under threads.
    """

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self._idle: list[BackendSession] = []

    def call(self, key: str) -> str:
        try:
            session = self._idle.pop()
        except IndexError:
            session = BackendSession(self.address)
        try:
            answer = session.call(key)
        except BaseException:
            session.close()
            raise
        self._idle.append(session)
        return answer


class AsyncBackendSession:
    """:class:`BackendSession` over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, address: tuple[str, int]) -> AsyncBackendSession:
        # asyncio sets TCP_NODELAY on its TCP transports itself.
        reader, writer = await asyncio.open_connection(*address)
        return cls(reader, writer)

    async def call(self, key: str) -> str:
        request = key.encode() + b"\n"
        self.writer.write(request)
        reply = await self.reader.readline()
        if not reply.endswith(b"\n"):
            raise ConnectionError("the backend closed the connection mid-reply")
        _expect_reply(request, reply)
        return "on"

    def close(self) -> None:
        self.writer.close()


class AsyncBackendPool:
    """:class:`BackendPool` for asyncio."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self._idle: list[AsyncBackendSession] = []

    async def call(self, key: str) -> str:
        try:
            session = self._idle.pop()
        except IndexError:
            session = await AsyncBackendSession.open(self.address)
        try:
            answer = await session.call(key)
        except BaseException:
            session.close()
            raise
        self._idle.append(session)
        return answer


def _node_index(path: str) -> int | None:
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "v1" and parts[1] == "nodes" and parts[2].isdigit():
        index = int(parts[2])
        if 1 <= index <= ROWS:
            return index
    return None


def _body(index: int, power: str, row: tuple[Any, ...]) -> bytes:
    name, driver, state = row
    document = {"node": name, "index": index, "driver": driver, "provision_state": state}
    document["power"] = power
    return json.dumps(document).encode()


_JSON = [("Content-Type", "application/json")]
_NOT_FOUND = b'{"error": "no such node"}'


def make_wsgi_app(
    backend: BackendPool, db: Database
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The legacy WSGI application (blocking I/O; green under ``monkey_patch()``)."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        index = _node_index(environ["PATH_INFO"])
        if index is None or environ["REQUEST_METHOD"] != "GET":
            start_response("404 Not Found", [*_JSON, ("Content-Length", str(len(_NOT_FOUND)))])
            return [_NOT_FOUND]
        power = backend.call(f"node-{index}")
        body = _body(index, power, db.node(index))
        start_response("200 OK", [*_JSON, ("Content-Length", str(len(body)))])
        return [body]

    return application


def make_aiohttp_handler(
    backend: AsyncBackendPool, db: Database
) -> Callable[[Any], Awaitable[Any]]:
    """The same application as a native aiohttp handler (the end of the migration)."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        index = _node_index(request.path)
        if index is None or request.method != "GET":
            return web.Response(status=404, body=_NOT_FOUND, content_type="application/json")
        power = await backend.call(f"node-{index}")
        body = _body(index, power, db.node(index))
        return web.Response(body=body, content_type="application/json")

    return handle
