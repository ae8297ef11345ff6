"""Migrated: the v2 REST API, aiohttp handlers on the loop the green code shares.

* ``POST /v2/nodes/{node}/power`` with ``{"state": "on"|"off"}``: 202 and
  ``{"job": id}``. The job goes on the conductor's queue; when the queue is
  full the request waits for room (back-pressure, not an error).
* ``GET /v2/jobs/{id}``: the job; with ``?wait=<seconds>``, once it has
  finished or the wait is over.
* ``GET /healthz``.

The v1 API (legacy WSGI) is mounted under ``/v1``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web

import bridge
import bridge.wsgi

from .conductor import Job

JOBS = web.AppKey("jobs", bridge.Queue[Job])
REGISTRY = web.AppKey("registry", dict[str, Job])
COUNTS = web.AppKey("counts", dict[str, int])
NODES = web.AppKey("nodes", frozenset[str])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(
    jobs: bridge.Queue[Job], legacy_app: Callable[..., object], nodes: frozenset[str]
) -> web.Application:
    app = web.Application(middlewares=[count_requests])
    app[JOBS] = jobs
    app[REGISTRY] = {}
    app[COUNTS] = {"started": 0, "answered": 0, "dropped": 0, "jobs accepted": 0}
    app[NODES] = nodes
    app.router.add_post("/v2/nodes/{node}/power", set_power)
    app.router.add_get("/v2/jobs/{job}", get_job)
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/v1/{tail:.*}", bridge.wsgi.handler(legacy_app, script_name="/v1"))
    return app


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests begun, answered and dropped: on shutdown, none may be dropped.

    Dropped: cancelled before answering (the client went away, or shutdown
    gave up on the request after ``shutdown_timeout``).
    """
    counts = request.app[COUNTS]
    counts["started"] += 1
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        counts["dropped"] += 1
        raise
    except BaseException:
        counts["answered"] += 1  # aiohttp answers with the error's status (4xx, 500)
        raise
    counts["answered"] += 1
    return response


async def set_power(request: web.Request) -> web.Response:
    node = request.match_info["node"]
    if node not in request.app[NODES]:
        raise web.HTTPNotFound(text=f"no node {node}")
    try:
        state = (await request.json())["state"]
    except (ValueError, KeyError, TypeError):
        raise web.HTTPBadRequest(text='send {"state": "on"} or {"state": "off"}') from None
    if state not in ("on", "off"):
        raise web.HTTPBadRequest(text='state must be "on" or "off"')
    job = Job(node=node, state=state)
    await request.app[JOBS].put(job)  # if cancelled while waiting for room, no job
    request.app[REGISTRY][job.id] = job
    request.app[COUNTS]["jobs accepted"] += 1
    return web.json_response({"job": job.id}, status=202)


async def get_job(request: web.Request) -> web.Response:
    job = request.app[REGISTRY].get(request.match_info["job"])
    if job is None:
        raise web.HTTPNotFound(text="no such job")
    wait = float(request.query.get("wait", 0))
    if wait > 0:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(job.finished.wait(), min(wait, 60))
    return web.json_response(job.as_dict())


async def healthz(request: web.Request) -> web.Response:
    counts = request.app[COUNTS]
    in_flight = counts["started"] - counts["answered"] - counts["dropped"] - 1  # not this one
    return web.json_response(
        {
            "status": "ok",
            "queued": request.app[JOBS].qsize(),
            "jobs accepted": counts["jobs accepted"],
            "requests in flight": in_flight,
        }
    )
