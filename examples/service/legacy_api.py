"""Legacy: the v1 API, a plain WSGI application doing green I/O and sync SQLAlchemy.

It used to run under ``eventlet.wsgi``; now the aiohttp server of the v2 API
serves it too (``bridge.wsgi.handler``), each request in a greenthread, and
the WSGI code has not changed.

``GET /v1/nodes/<node>``: the node from the store (sync SQLAlchemy, green or
in tpool, see ``store.SyncStore``), and its power state asked live from its
BMC over a green socket. Errors are JSON too: 404 (no such node or route),
405 (not GET), 503 (store unavailable), 504 (the BMC did not answer).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import eventlet

from . import bmc
from .settings import Settings
from .store import NODE_NAME, StoreUnavailable, SyncStore


def make_app(
    settings: Settings, store: SyncStore, bmc_address: tuple[str, int]
) -> Callable[..., Iterable[bytes]]:
    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        parts = environ["PATH_INFO"].strip("/").split("/")
        if len(parts) != 2 or parts[0] != "nodes":
            return _reply(start_response, 404, "Not Found", {"error": "no such resource"})
        if environ["REQUEST_METHOD"] != "GET":
            return _reply(
                start_response, 405, "Method Not Allowed", {"error": "only GET"}, [("Allow", "GET")]
            )
        name = parts[1]
        try:
            node = store.get_node(name) if NODE_NAME.fullmatch(name) else None
        except StoreUnavailable as exc:
            return _reply(start_response, 503, "Service Unavailable", {"error": str(exc)})
        if node is None:
            return _reply(start_response, 404, "Not Found", {"error": f"no node {name!r}"})
        try:
            _, power = bmc.exchange(bmc_address, f"STATUS {name}", settings.bmc_timeout)
        except eventlet.Timeout:
            return _reply(
                start_response, 504, "Gateway Timeout", {"error": "the BMC did not answer"}
            )
        except (bmc.BMCError, OSError) as exc:
            return _reply(start_response, 502, "Bad Gateway", {"error": f"the BMC: {exc}"})
        return _reply(start_response, 200, "OK", {"node": name, "power": power})

    return application


def _reply(
    start_response: Callable[..., Any],
    code: int,
    reason: str,
    body: dict[str, Any],
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> list[bytes]:
    if code >= 400:
        body = {**body, "status": code}
    data = json.dumps(body).encode()
    start_response(
        f"{code} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
    )
    return [data]
