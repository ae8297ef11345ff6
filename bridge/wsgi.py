"""Serve a legacy WSGI application from aiohttp, each request in a greenthread.

A service can move its HTTP server to aiohttp before it touches its WSGI
application::

    from aiohttp import web
    import bridge.wsgi

    app = web.Application()
    app.router.add_route("*", "/{path_info:.*}", bridge.wsgi.handler(legacy_wsgi_app))
    web.run_app(app)

Each request runs the WSGI application in its own greenthread (with
``bridge.to_async``), so green code in it blocks only that request. The
request body is streamed to ``wsgi.input``; a response body the application
returns as a list or tuple (the usual case) is sent whole, with the headers,
and any other iterable is streamed to the client chunk by chunk as the
application produces it. The environ follows PEP 3333. When the client goes
away, the response iterable's ``close()`` is called (as PEP 3333 requires)
and, if aiohttp cancels the handler, the greenthread is killed.

Requires aiohttp (``pip install eventlet-asyncio-bridge[aiohttp]``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar, final
from urllib.parse import unquote_to_bytes

from aiohttp import web

from bridge import _crossings

__all__ = ("handler",)

WSGIApp = Callable[[dict[str, Any], Callable[..., Callable[[bytes], None]]], Iterable[bytes]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
_R = TypeVar("_R", bound=web.StreamResponse)

# Hop-by-hop headers (RFC 9110 7.6.1): the server's business, not the application's.
_HOP_BY_HOP = frozenset(
    ["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
     "trailers", "transfer-encoding", "upgrade"]
)  # fmt: skip


def handler(
    application: WSGIApp, *, script_name: str = ""
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Return an aiohttp handler (a coroutine function) that serves ``application``.

    Who calls the result: aiohttp, for each request. Where ``application``
    runs: in a new greenthread per request.

    :param application: the WSGI callable.
    :param script_name: the mount point, as ``SCRIPT_NAME``; ``PATH_INFO`` is
        the rest of the path.
    """
    server = _WSGIServer(application, script_name)
    serve = _crossings.to_async(server.serve)

    async def handle_wsgi(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = await serve(request)
        return response

    handle_wsgi.__qualname__ = f"handler({getattr(application, '__name__', application)!r})"
    return handle_wsgi


@final
class _WSGIServer:
    """One WSGI application behind aiohttp."""

    __slots__ = ("application", "script_name")

    def __init__(self, application: WSGIApp, script_name: str) -> None:
        self.application = application
        self.script_name = script_name.rstrip("/")

    # -- in the request's greenthread ------------------------------------------

    def serve(self, request: web.Request) -> web.StreamResponse:
        environ = self._environ(request)
        response = _Response(request)
        body = self.application(environ, response.start_response)
        try:
            if isinstance(body, (list, tuple)) and response.stream is None:
                # Known in full, and nothing written yet: aiohttp sends headers and
                # body in one write, and nothing crosses back to the loop until then.
                return response.whole(body)
            for chunk in body:
                if chunk:
                    response.write(chunk)
                if response.disconnected:
                    break
            if not response.disconnected:
                response.finish()
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return response.prepared()

    def _environ(self, request: web.Request) -> dict[str, Any]:
        raw_path, _, query = request.raw_path.partition("?")
        # PEP 3333: PATH_INFO is the undecoded path's bytes, as latin-1.
        path = unquote_to_bytes(raw_path).decode("latin-1")
        if self.script_name and path.startswith(self.script_name):
            path = path[len(self.script_name) :]
        host, port = _server_address(request)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": self.script_name,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": host,
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
            "REMOTE_ADDR": peer[0] if peer else "",
            "REMOTE_PORT": str(peer[1]) if peer else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.scheme,
            "wsgi.input": _Input(request),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,  # greenthreads share the process
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ


def _server_address(request: web.Request) -> tuple[str, str]:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if sockname and isinstance(sockname, tuple):
        return str(sockname[0]), str(sockname[1])
    return request.host.partition(":")[0], "80"


@final
class _Input:
    """``wsgi.input``: the request body, read from green code as it arrives."""

    __slots__ = ("_content",)

    def __init__(self, request: web.Request) -> None:
        self._content = request.content

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return _crossings.await_(self._content.read())
        return _crossings.await_(self._read_up_to(size)) if size else b""

    async def _read_up_to(self, size: int) -> bytes:
        # A file's read(size): size bytes unless the body ends first. (The
        # stream's own read(size) returns whatever has arrived, maybe less.)
        try:
            return await self._content.readexactly(size)
        except asyncio.IncompleteReadError as short:
            return short.partial

    def readline(self, size: int = -1) -> bytes:
        line = _crossings.await_(self._content.readline())
        if size is not None and size >= 0 and len(line) > size:
            # StreamReader has no "at most size" readline: keep the rest for later reads.
            self._content.unread_data(line[size:])
            line = line[:size]
        return line

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> _Input:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


@final
class _Response:
    """The WSGI response side: ``start_response``, ``write``, streaming to aiohttp."""

    __slots__ = ("disconnected", "headers", "request", "status", "stream")

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.stream: web.StreamResponse | None = None
        self.disconnected = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.stream is not None:  # headers sent: too late to change them
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.status is not None:
            raise RuntimeError("start_response() called twice without exc_info (PEP 3333)")
        self.status, self.headers = status, headers
        return self.write

    def _status(self) -> tuple[int, str | None]:
        if self.status is None:
            raise RuntimeError("the WSGI application returned before calling start_response()")
        code, _, reason = self.status.partition(" ")
        return int(code), reason or None

    def _headed(self, response: _R) -> _R:
        for name, value in self.headers:
            if name.lower() not in _HOP_BY_HOP:
                response.headers.add(name, value)
        return response

    def whole(self, body: list[bytes] | tuple[bytes, ...]) -> web.Response:
        """The response with all of ``body``, for aiohttp to send when the handler returns."""
        code, reason = self._status()
        response = self._headed(web.Response(status=code, reason=reason))
        response.body = b"".join(body)
        return response

    def _prepare(self) -> web.StreamResponse:
        code, reason = self._status()
        stream = self._headed(web.StreamResponse(status=code, reason=reason))
        self.stream = stream
        try:
            _crossings.await_(stream.prepare(self.request))
        except ConnectionError:  # the client went away before the headers
            self.disconnected = True
        return stream

    def prepared(self) -> web.StreamResponse:
        return self.stream if self.stream is not None else self._prepare()

    def write(self, chunk: bytes) -> None:
        stream = self.prepared()
        if self.disconnected or self.request.method == "HEAD":
            # aiohttp's StreamResponse would send a HEAD response's body too,
            # and the client would read it as the next response.
            return
        try:
            _crossings.await_(stream.write(chunk))
        except ConnectionError:  # the client went away
            self.disconnected = True

    def finish(self) -> None:
        stream = self.prepared()
        try:
            _crossings.await_(stream.write_eof())
        except ConnectionError:
            self.disconnected = True
