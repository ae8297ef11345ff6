"""A small mixed-mode program: an aiohttp server and an eventlet.wsgi server
on one asyncio loop, in one thread, each serving requests from the other
world's client.

Run it with ``python examples/one_loop.py``. It starts both
servers on 127.0.0.1, sends a few requests to each from an aiohttp client
(async) and from a green ``urllib`` client (in greenthreads), prints the
answers and exits.
"""

from __future__ import annotations

import asyncio
import os
import warnings

os.environ.setdefault("EVENTLET_HUB", "bridge.hub")
# eventlet warns on import that it is deprecated; this program is how you
# leave it, so the warning is not news here.
warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import eventlet  # noqa: E402
import eventlet.wsgi  # noqa: E402
from aiohttp import ClientSession, web  # noqa: E402
from eventlet.green.urllib import request as green_request  # noqa: E402

TIMEOUT = 10  # seconds; every wait below is bounded by it


def legacy_wsgi_app(environ: dict[str, object], start_response: object) -> list[bytes]:
    """The legacy side: a plain WSGI app doing green I/O (here, a green sleep)."""
    eventlet.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
    return [f"eventlet.wsgi answered {environ['PATH_INFO']}".encode()]


async def migrated_handler(request: web.Request) -> web.Response:
    """The migrated side: an aiohttp handler doing async I/O."""
    await asyncio.sleep(0.01)
    return web.Response(text=f"aiohttp answered {request.path}")


def green_get(url: str) -> str:
    """A legacy client: green urllib, run in a greenthread."""
    with green_request.urlopen(url, timeout=TIMEOUT) as response:
        return response.read().decode()


async def main() -> None:
    # The migrated service: aiohttp on the running loop.
    app = web.Application()
    app.router.add_get("/{tail:.*}", migrated_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    aio_port = runner.addresses[0][1]

    # The legacy service: eventlet.wsgi in a greenthread, on the same loop.
    listener = eventlet.listen(("127.0.0.1", 0))
    wsgi_port = listener.getsockname()[1]
    wsgi_server = eventlet.spawn(eventlet.wsgi.server, listener, legacy_wsgi_app, log_output=False)

    urls = [f"http://127.0.0.1:{port}/item/{i}" for i in range(3) for port in (aio_port, wsgi_port)]
    try:
        async with ClientSession() as session:

            async def async_get(url: str) -> str:
                async with session.get(url) as response:
                    return await response.text()

            # Both clients at once: async requests and green requests interleave.
            async_answers, green_answers = await asyncio.wait_for(
                asyncio.gather(
                    asyncio.gather(*(async_get(url) for url in urls)),
                    asyncio.gather(*(eventlet.spawn(green_get, url) for url in urls)),
                ),
                TIMEOUT,
            )
        print(f"aiohttp on port {aio_port}, eventlet.wsgi on port {wsgi_port}, one loop:")
        for url, via_async, via_green in zip(urls, async_answers, green_answers, strict=True):
            print(f"  {url}")
            print(f"    async client: {via_async}")
            print(f"    green client: {via_green}")
    finally:
        wsgi_server.kill()
        listener.close()
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
