"""Migrated: the v2 REST API, aiohttp handlers on the loop the green code shares.

Routes (every answer is JSON, errors included: ``{"error": ..., "status": ...}``):

* ``GET /v2/nodes?limit=&after=`` -- enrolled nodes, by name;
  ``POST /v2/nodes`` with ``{"name": ...}`` -- 201, or 409 if taken;
  ``GET /v2/nodes/{node}``; ``DELETE /v2/nodes/{node}`` -- 204, or 409 while
  the node has jobs not finished.
* ``POST /v2/nodes/{node}/power`` with ``{"state": "on"|"off"}`` -- 202 and
  ``{"job": id}`` once the job is in the store *and* stored by JetStream;
  503 if the bus or the store could not take it (nothing was accepted).
* ``GET /v2/jobs/{job}`` -- the job; with ``?wait=<seconds>`` (at most 60),
  once it has finished or the wait is over.
* ``GET /v2/events?job=&node=&limit=`` -- state-change events as they come
  off the bus, one JSON object per line (``application/x-ndjson``), until
  ``limit`` events, the client leaves, or the service stops.
* ``GET /healthz``.

Bad input gets a 4xx that says what is wrong: a body that is not a JSON
object, unknown or missing fields, wrong types or values (400), a body over
``--max-body`` (413), an unknown node, job or route (404), a method a route
does not take (405). The v1 API (legacy WSGI) is mounted under ``/v1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

import bridge.wsgi

from .bus import Bus, BusUnavailable
from .store import FINISHED, NODE_NAME, AsyncStore, StoreUnavailable, job_dict

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"[0-9a-f]{32}")
MAX_WAIT = 60.0

STORE = web.AppKey("store", AsyncStore)
BUS = web.AppKey("bus", Bus)
COUNTS = web.AppKey("counts", dict[str, int])
WAITERS = web.AppKey("waiters", dict[str, set["asyncio.Future[None]"]])
STREAMS = web.AppKey("streams", set["asyncio.Queue[dict[str, Any] | None]"])
PUBLISH_TIMEOUT = web.AppKey("publish timeout", float)
MAX_BODY = web.AppKey("max body", int)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(
    store: AsyncStore,
    bus: Bus,
    legacy_app: Callable[..., Any],
    *,
    max_body: int,
    publish_timeout: float,
) -> web.Application:
    app = web.Application(middlewares=[count_requests, json_errors], client_max_size=max_body)
    app[STORE] = store
    app[BUS] = bus
    app[COUNTS] = {"started": 0, "answered": 0, "dropped": 0, "jobs accepted": 0}
    app[WAITERS] = {}
    app[STREAMS] = set()
    app[PUBLISH_TIMEOUT] = publish_timeout
    app[MAX_BODY] = max_body
    app.router.add_get("/v2/nodes", list_nodes)
    app.router.add_post("/v2/nodes", create_node)
    app.router.add_get("/v2/nodes/{node}", get_node)
    app.router.add_delete("/v2/nodes/{node}", delete_node)
    app.router.add_post("/v2/nodes/{node}/power", set_power)
    app.router.add_get("/v2/jobs/{job}", get_job)
    app.router.add_get("/v2/events", stream_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/v1/{tail:.*}", bridge.wsgi.handler(legacy_app, script_name="/v1"))
    return app


async def follow_bus(app: web.Application) -> None:
    """Route the bus's events to the requests waiting for them."""

    def on_event(event: dict[str, Any]) -> None:
        if not isinstance(event, dict):
            return
        if event.get("status") in FINISHED:
            for waiter in app[WAITERS].get(str(event.get("job")), ()):
                if not waiter.done():
                    waiter.set_result(None)
        for queue in list(app[STREAMS]):
            if queue.full():  # a client that does not read: end its stream
                app[STREAMS].discard(queue)
                queue.get_nowait()
                queue.put_nowait(None)
            else:
                queue.put_nowait(event)

    await app[BUS].follow_events(on_event)


def end_streams(app: web.Application) -> None:
    """Shutdown: end every event stream, so that its request can finish."""
    for queue in app[STREAMS]:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)
    app[STREAMS].clear()


# -- middlewares --------------------------------------------------------------------


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests begun, answered and dropped: on shutdown, none may be dropped.

    Dropped: cancelled before answering (shutdown gave up on the request
    after ``shutdown_timeout``).
    """
    counts = request.app[COUNTS]
    counts["started"] += 1
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        counts["dropped"] += 1
        raise
    except BaseException:
        counts["answered"] += 1
        raise
    counts["answered"] += 1
    return response


def error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as JSON; never a traceback to the client."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        text = exc.text or exc.reason
        if exc.status == 413:
            text = f"the body is larger than {request.app[MAX_BODY]} bytes"
        return error(exc.status, text, **headers)
    except StoreUnavailable as exc:
        return error(503, f"the database is unavailable; retry ({exc})", **{"Retry-After": "1"})
    except BusUnavailable as exc:
        return error(503, f"the bus is unavailable; retry ({exc})", **{"Retry-After": "1"})
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "internal error; the service logged it")


# -- input --------------------------------------------------------------------------


class BadInput(web.HTTPBadRequest):
    def __init__(self, message: str) -> None:
        super().__init__(text=message)


async def json_object(request: web.Request, fields: dict[str, Callable[[Any], str]]) -> dict:
    """The body as a JSON object with exactly ``fields``; each checker returns
    an error message, or "" if the value is good.

    :raises web.HTTPException: 400 (what is wrong), 413 (too large).
    """
    body = await request.read()
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadInput(f"the body must be a JSON object with {', '.join(fields)}") from None
    if not isinstance(data, dict):
        raise BadInput(f"the body must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise BadInput(f"unknown field(s) {', '.join(map(repr, unknown))}; expected {list(fields)}")
    for name, check in fields.items():
        if name not in data:
            raise BadInput(f"missing field {name!r}")
        problem = check(data[name])
        if problem:
            raise BadInput(f"field {name!r}: {problem}")
    return data


def node_name(value: Any) -> str:
    if not isinstance(value, str) or not NODE_NAME.fullmatch(value):
        return "a node name is 1-63 of a-z, 0-9 and -, starting with a letter or digit"
    return ""


def power_state(value: Any) -> str:
    return "" if value in ("on", "off") else 'must be "on" or "off"'


def query_number(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails too
        raise BadInput(f"query parameter {name!r} must be a number from {low:g} to {high:g}")
    return value


def path_node(request: web.Request) -> str:
    name = request.match_info["node"]
    if node_name(name):
        raise web.HTTPNotFound(text=f"no node {name!r}")
    return name


# -- handlers -----------------------------------------------------------------------


async def list_nodes(request: web.Request) -> web.Response:
    limit = int(query_number(request, "limit", 100, 1, 1000))
    after = request.query.get("after", "")
    if after and node_name(after):
        raise BadInput("query parameter 'after' must be a node name")
    rows = await request.app[STORE].list_nodes(limit, after)
    return web.json_response({"nodes": rows})


async def create_node(request: web.Request) -> web.Response:
    data = await json_object(request, {"name": node_name})
    row = await request.app[STORE].create_node(data["name"])
    if row is None:
        raise web.HTTPConflict(text=f"node {data['name']!r} exists already")
    return web.json_response(row, status=201)


async def get_node(request: web.Request) -> web.Response:
    name = path_node(request)
    row = await request.app[STORE].get_node(name)
    if row is None:
        raise web.HTTPNotFound(text=f"no node {name!r}")
    return web.json_response(row)


async def delete_node(request: web.Request) -> web.Response:
    name = path_node(request)
    outcome = await request.app[STORE].delete_node(name)
    if outcome == "missing":
        raise web.HTTPNotFound(text=f"no node {name!r}")
    if outcome == "busy":
        raise web.HTTPConflict(text=f"node {name!r} has jobs not finished; retry when they are")
    return web.Response(status=204)


async def set_power(request: web.Request) -> web.Response:
    name = path_node(request)
    data = await json_object(request, {"state": power_state})
    job = {"job": uuid.uuid4().hex, "node": name, "state": data["state"]}
    # Once begun, accepting runs to its end even if this request is cancelled:
    # a job in the store but not on the bus would never run.
    accepted = await asyncio.shield(_accept(request.app, job))
    if accepted is None:
        raise web.HTTPNotFound(text=f"no node {name!r}")
    return web.json_response({"job": job["job"]}, status=202)


async def _accept(app: web.Application, job: dict[str, str]) -> bool | None:
    store, bus = app[STORE], app[BUS]
    if not await store.accept_job(job):
        return None
    try:
        await bus.submit(job, app[PUBLISH_TIMEOUT])
    except BusUnavailable as exc:
        # Not accepted after all -- unless a conductor has the job already
        # (stored, but the bus's confirmation was lost): then it is.
        if await store.reject_job(job["job"], str(exc)):
            raise
    app[COUNTS]["jobs accepted"] += 1
    return True


async def get_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job"]
    wait = query_number(request, "wait", 0, 0, MAX_WAIT)
    if not JOB_ID.fullmatch(job_id):
        raise web.HTTPNotFound(text=f"no job {job_id!r}")
    store = request.app[STORE]
    row = await store.get_job(job_id)
    if row is None:
        raise web.HTTPNotFound(text=f"no job {job_id!r}")
    if wait > 0 and row["status"] not in FINISHED:
        finished = asyncio.get_running_loop().create_future()
        waiters = request.app[WAITERS].setdefault(job_id, set())
        waiters.add(finished)
        try:
            row = await store.get_job(job_id)  # it may have finished before we listened
            if row is not None and row["status"] not in FINISHED:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(finished, wait)
                row = await store.get_job(job_id)
        finally:
            waiters.discard(finished)
            if not waiters:
                request.app[WAITERS].pop(job_id, None)
    assert row is not None
    return web.json_response(job_dict(row))


async def stream_events(request: web.Request) -> web.StreamResponse:
    job = request.query.get("job")
    node = request.query.get("node")
    limit = int(query_number(request, "limit", 0, 0, 1_000_000))
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=1000)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    request.app[STREAMS].add(queue)
    try:
        await response.prepare(request)
        sent = 0
        while (event := await queue.get()) is not None:
            if (job and event.get("job") != job) or (node and event.get("node") != node):
                continue
            await response.write(json.dumps(event).encode() + b"\n")
            sent += 1
            if sent == limit:
                break
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client left
    finally:
        request.app[STREAMS].discard(queue)
    return response


async def healthz(request: web.Request) -> web.Response:
    counts = request.app[COUNTS]
    in_flight = counts["started"] - counts["answered"] - counts["dropped"] - 1  # not this one
    return web.json_response(
        {
            "status": "ok",
            "jobs accepted": counts["jobs accepted"],
            "requests in flight": in_flight,
            "event streams": len(request.app[STREAMS]),
            "bus disconnects": request.app[BUS].disconnects,
        }
    )
