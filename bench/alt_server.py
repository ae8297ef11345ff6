"""Serve the benchmark's application one way: the server side of ``bench/alternatives.py``.

Usage (normally only ``bench/alternatives.py`` starts it)::

    EVENTLET_HUB=epolls python bench/alt_server.py eventlet-wsgi --backend PORT --db FILE
    python bench/alt_server.py cheroot --threads 10 --backend PORT --db FILE

Ways (the first argument):

* ``eventlet-wsgi`` -- ``eventlet.monkey_patch()``, then ``eventlet.wsgi.server`` serving
  the legacy WSGI app (paths 1 and 2: the hub is whatever ``EVENTLET_HUB`` names; green
  main, so ``bridge.hub`` owns its loop). One greenthread per connection, eventlet's
  default pool of 1,024.
* ``bridge-aiohttp`` -- ``eventlet.monkey_patch()``, then ``asyncio.run()`` of an aiohttp
  server whose catch-all route is ``bridge.wsgi.handler(app)`` (path 3: bridge.hub joins
  the loop; each request runs the unchanged WSGI app in a greenthread).
* ``aiohttp-native`` -- an aiohttp server with the application rewritten as an
  ``async def`` handler; no eventlet imported (path 4).
* ``cheroot`` -- ``cheroot.wsgi.Server`` with ``--threads`` worker threads serving the WSGI
  app, no eventlet (path 5). Everything else is cheroot's defaults, as Ironic uses it,
  unless ``--backlog`` (the listen backlog, cheroot's default 5) or ``--keepalive-limit``
  (how many idle keep-alive connections cheroot keeps; it closes the others after their
  response; default 10) say otherwise.

``--loop uvloop`` runs the two aiohttp ways on uvloop. The server listens on 127.0.0.1
(any free port), prints ``READY <port>`` and serves until it is killed. Access logs are
off in every way.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

WAYS = ("eventlet-wsgi", "bridge-aiohttp", "aiohttp-native", "cheroot")
BACKLOG = 1024  # listen backlog of the eventlet and aiohttp ways (cheroot: --backlog)

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


def _ready(port: int) -> None:
    print(f"READY {port}", flush=True)


def serve_eventlet_wsgi(args: argparse.Namespace) -> None:
    import eventlet

    eventlet.monkey_patch()
    import alt_app
    import eventlet.wsgi

    app = alt_app.make_wsgi_app(alt_app.BackendPool(args.backend), alt_app.Database(args.db))
    listener = eventlet.listen(("127.0.0.1", 0), backlog=BACKLOG)
    _ready(listener.getsockname()[1])
    eventlet.wsgi.server(listener, app, log_output=False, debug=False)


def _run_aiohttp(handler: Any, loop_kind: str) -> None:
    import asyncio

    from aiohttp import web

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{path_info:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=BACKLOG)
        await site.start()
        _ready(runner.addresses[0][1])
        await asyncio.Event().wait()  # until killed

    if loop_kind == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def serve_bridge_aiohttp(args: argparse.Namespace) -> None:
    if os.environ.get("EVENTLET_HUB") != "bridge.hub":
        raise SystemExit("bridge-aiohttp needs EVENTLET_HUB=bridge.hub in the environment")
    import eventlet

    eventlet.monkey_patch()
    import alt_app

    import bridge.wsgi

    app = alt_app.make_wsgi_app(alt_app.BackendPool(args.backend), alt_app.Database(args.db))
    _run_aiohttp(bridge.wsgi.handler(app), args.loop)


def serve_aiohttp_native(args: argparse.Namespace) -> None:
    import alt_app

    backend = alt_app.AsyncBackendPool(args.backend)
    _run_aiohttp(alt_app.make_aiohttp_handler(backend, alt_app.Database(args.db)), args.loop)


def serve_cheroot(args: argparse.Namespace) -> None:
    import alt_app
    from cheroot import wsgi

    app = alt_app.make_wsgi_app(alt_app.BackendPool(args.backend), alt_app.Database(args.db))
    # As ironic/common/wsgi_service.py builds it: only the pool size is ours.
    server = wsgi.Server(
        ("127.0.0.1", 0),
        app,
        numthreads=args.threads,
        server_name="bench",
        request_queue_size=args.backlog,
    )
    # cheroot ends keep-alive (Connection: close) on all but this many idle connections.
    server.keep_alive_conn_limit = args.keepalive_limit or None
    server.prepare()
    _ready(server.bind_addr[1])
    server.serve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("way", choices=WAYS)
    parser.add_argument("--backend", type=int, required=True, help="backend port on 127.0.0.1")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file (alt_app)")
    parser.add_argument("--threads", type=int, default=10, help="cheroot's pool size")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument(
        "--backlog", type=int, default=5, help="cheroot's listen backlog (its default: 5)"
    )
    parser.add_argument(
        "--keepalive-limit",
        type=int,
        default=10,
        help="cheroot's keep_alive_conn_limit (its default: 10; 0: no limit)",
    )
    args = parser.parse_args(argv)
    if args.threads < 1 or args.backlog < 1 or args.keepalive_limit < 0:
        parser.error("--threads and --backlog must be at least 1, --keepalive-limit at least 0")
    if not args.db.is_file():
        parser.error(f"--db {args.db} does not exist (alt_app.make_database creates it)")
    args.backend = ("127.0.0.1", args.backend)
    serve = {
        "eventlet-wsgi": serve_eventlet_wsgi,
        "bridge-aiohttp": serve_bridge_aiohttp,
        "aiohttp-native": serve_aiohttp_native,
        "cheroot": serve_cheroot,
    }[args.way]
    serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
