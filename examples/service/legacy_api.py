"""Legacy: the v1 API, a plain WSGI application doing green I/O.

It used to run under ``eventlet.wsgi``; now the aiohttp server of the v2 API
serves it too (``bridge.wsgi.handler``), each request in a greenthread, and
the WSGI code has not changed.

``GET /v1/nodes/<node>`` asks the node's BMC for its power state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from . import bmc
from .settings import Settings


def make_app(settings: Settings, bmc_address: tuple[str, int]) -> Callable[..., Iterable[bytes]]:
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        parts = environ["PATH_INFO"].strip("/").split("/")
        if environ["REQUEST_METHOD"] != "GET" or len(parts) != 2 or parts[0] != "nodes":
            return _reply(start_response, "404 Not Found", {"error": "no such resource"})
        try:
            node, power = bmc.exchange(bmc_address, f"STATUS {parts[1]}", settings.bmc_timeout)
        except bmc.BMCError as exc:
            return _reply(start_response, "404 Not Found", {"error": str(exc)})
        return _reply(start_response, "200 OK", {"node": node, "power": power})

    return application


def _reply(start_response: Callable[..., Any], status: str, body: dict[str, str]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
