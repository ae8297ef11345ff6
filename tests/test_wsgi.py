"""bridge.wsgi: a legacy WSGI app served by aiohttp, each request in a greenthread."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from wsgiref.validate import validator

import aiohttp
import eventlet
import pytest
from aiohttp import web

import bridge
import bridge.wsgi

BOUND = 10
Run = Callable[[Callable[[], Awaitable[Any]]], Any]


@pytest.fixture(params=["owner", "guest"])
def run(request: pytest.FixtureRequest) -> Run:
    def owner(afn: Callable[[], Awaitable[Any]]) -> Any:
        return bridge.await_(asyncio.wait_for(afn(), BOUND))

    def guest(afn: Callable[[], Awaitable[Any]]) -> Any:
        return asyncio.run(asyncio.wait_for(afn(), BOUND))

    return owner if request.param == "owner" else guest


async def serve(wsgi_app: Any, **options: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{path_info:.*}", bridge.wsgi.handler(wsgi_app, **options))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def environ_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    eventlet.sleep(0.001)  # green code in the request path
    keys = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "HTTP_X_TWICE")
    text = "\n".join(f"{k}={environ.get(k)}" for k in keys)
    text += f"\nsha={hashlib.sha256(body).hexdigest()}\nlen={len(body)}"
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-App", "legacy")])
    return [text.encode("latin-1")]


def test_environ_follows_pep_3333_and_bodies_stream_both_ways(run: Run) -> None:
    payload = bytes(range(256)) * 20000  # 5 MB

    async def main() -> tuple[str, str]:
        runner, url = await serve(validator(environ_app))  # wsgiref checks PEP 3333
        try:
            async with aiohttp.ClientSession() as client:
                async with client.post(
                    f"{url}/a%20b/c%C3%A9?x=1&y=2",
                    data=payload,
                    headers=[("X-Twice", "1"), ("X-Twice", "2")],
                ) as resp:
                    assert resp.status == 200 and resp.headers["X-App"] == "legacy"
                    return await resp.text("latin-1"), hashlib.sha256(payload).hexdigest()
        finally:
            await runner.cleanup()

    text, sha = run(main)
    assert text.splitlines() == [
        "REQUEST_METHOD=POST",
        "SCRIPT_NAME=",
        "PATH_INFO=/a b/c\xc3\xa9",  # the path's bytes, as latin-1
        "QUERY_STRING=x=1&y=2",
        "HTTP_X_TWICE=1,2",
        f"sha={sha}",
        f"len={len(payload)}",
    ]


def test_chunked_request_body_is_read_to_the_end(run: Run) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = b"".join(iter(lambda: environ["wsgi.input"].read(1000), b""))
        start_response("200 OK", [])
        return [str(len(body)).encode(), b" ", environ.get("CONTENT_LENGTH", "none").encode()]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"x" * 777

    async def main() -> str:
        runner, url = await serve(app)
        try:
            async with aiohttp.ClientSession() as client, client.post(url, data=chunks()) as resp:
                return await resp.text()
        finally:
            await runner.cleanup()

    assert run(main) == f"{50 * 777} none"


def test_response_streams_while_the_app_still_runs(run: Run) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        go_on = environ["test.go_on"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first "
        assert go_on.wait(timeout=BOUND)  # the client has the first chunk before we go on
        yield b"second"

    async def main() -> bytes:
        go_on = bridge.Event()

        def with_event(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
            environ["test.go_on"] = go_on.green
            return app(environ, start_response)

        runner, url = await serve(with_event)
        try:
            async with aiohttp.ClientSession() as client, client.get(url) as resp:
                first = await resp.content.readexactly(6)
                go_on.set()
                return first + await resp.content.read()
        finally:
            await runner.cleanup()

    assert run(main) == b"first second"


def test_client_disconnecting_early_closes_the_iterable(run: Run) -> None:
    closed = bridge.Event()

    class Endless:
        def __iter__(self) -> Iterator[bytes]:
            while True:
                eventlet.sleep(0.001)
                yield b"x" * 65536

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: Any) -> Endless:
        start_response("200 OK", [])
        return Endless()

    async def main() -> bool:
        runner, url = await serve(app)
        try:
            async with aiohttp.ClientSession() as client:
                resp = await client.get(url)
                await resp.content.readexactly(10)
                resp.close()  # goes away mid-response
            await asyncio.wait_for(closed.wait(), BOUND)
            return closed.is_set()
        finally:
            await runner.cleanup()

    assert run(main) is True


def test_app_errors_become_500_and_exc_info_replaces_headers(run: Run) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/boom":
            raise ValueError("legacy bug")
        start_response("200 OK", [("X-Stage", "first")])
        try:
            raise KeyError("late failure")
        except KeyError:
            import sys

            start_response("503 Service Unavailable", [("X-Stage", "error")], sys.exc_info())
        return [b"sorry"]

    async def main() -> list[tuple[int, str | None]]:
        runner, url = await serve(app)
        try:
            async with aiohttp.ClientSession() as client:
                results = []
                for path in ("/boom", "/late"):
                    async with client.get(url + path) as resp:
                        results.append((resp.status, resp.headers.get("X-Stage")))
                return results
        finally:
            await runner.cleanup()

    assert run(main) == [(500, None), (503, "error")]


def test_script_name_mount(run: Run) -> None:
    async def main() -> str:
        runner, url = await serve(environ_app, script_name="/legacy/")
        try:
            async with aiohttp.ClientSession() as client:
                async with client.get(url + "/legacy/v2/servers") as resp:
                    return await resp.text()
        finally:
            await runner.cleanup()

    lines = run(main).splitlines()
    assert lines[1:3] == ["SCRIPT_NAME=/legacy", "PATH_INFO=/v2/servers"]


def _hello(kind: str) -> Any:
    """An app answering b"hello" as a list (known in full) or as a generator (streamed)."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-App", "legacy")])
        return [b"hel", b"lo"] if kind == "list" else iter([b"hel", b"lo"])

    return app


@pytest.mark.parametrize("kind", ["list", "generator"])
def test_list_bodies_go_whole_and_others_stream(run: Run, kind: str) -> None:
    async def main() -> tuple[str | None, str | None, str | None, bytes]:
        runner, url = await serve(_hello(kind))
        try:
            async with aiohttp.ClientSession() as client, client.get(url) as resp:
                headers = resp.headers
                body = await resp.read()
                return (
                    headers.get("Content-Length"),
                    headers.get("Transfer-Encoding"),
                    headers.get("X-App"),
                    body,
                )
        finally:
            await runner.cleanup()

    length, encoding, x_app, body = run(main)
    assert (x_app, body) == ("legacy", b"hello")
    assert (length, encoding) == (("5", None) if kind == "list" else (None, "chunked"))


@pytest.mark.parametrize("kind", ["list", "generator"])
def test_head_responses_carry_no_body(run: Run, kind: str) -> None:
    # A streamed HEAD response used to send its body: on a keep-alive
    # connection the client read it as the start of the next response.
    async def main() -> list[bytes]:
        runner, url = await serve(_hello(kind))
        host, port = url.removeprefix("http://").split(":")
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
            heads = []
            for _ in range(2):
                heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.close()
            return heads
        finally:
            await runner.cleanup()

    head, get = run(main)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    assert get.startswith(b"HTTP/1.1 200 OK\r\n"), get


def test_client_gone_before_the_headers_is_not_an_error(
    run: Run, caplog: pytest.LogCaptureFixture
) -> None:
    # aiohttp's prepare() raises ConnectionResetError once the client is gone;
    # it was outside the handling write() and finish() have, so aiohttp logged
    # "Error handling request" with a traceback.
    go_on = bridge.Event()
    closed = bridge.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"too late"

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        assert go_on.green.wait(timeout=BOUND), "the test never let the app go on"
        start_response("200 OK", [])
        return Body()

    async def main() -> bool:
        runner, url = await serve(app)
        host, port = url.removeprefix("http://").split(":")
        try:
            _, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            await writer.drain()
            linger_0 = struct.pack("ii", 1, 0)  # close with a reset, as a client gone away does
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, linger_0
            )
            writer.close()
            await writer.wait_closed()

            async def server_saw_the_close() -> None:
                # aiohttp keeps the connection listed until the handler returns;
                # its transport is dropped when the connection is lost.
                assert runner.server is not None
                while runner.server.connections[0].transport is not None:
                    await asyncio.sleep(0.005)

            await asyncio.wait_for(server_saw_the_close(), BOUND)
            go_on.set()
            await asyncio.wait_for(closed.wait(), BOUND)
            return closed.is_set()
        finally:
            await runner.cleanup()

    with caplog.at_level("ERROR", logger="aiohttp.server"):
        assert run(main) is True
    assert [r.getMessage() for r in caplog.records if r.name == "aiohttp.server"] == []
