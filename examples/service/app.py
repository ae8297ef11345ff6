"""Wiring, and the graceful shutdown.

The entry point is async (``asyncio.run``): the hub joins that loop (guest
mode), and the legacy parts run as greenthreads on it.

Shutdown, on SIGTERM or SIGINT, loses no accepted request and no accepted job:

1. the API stops listening, closes idle keep-alive connections and waits
   for the requests in flight (aiohttp's ``runner.cleanup()``), v1 WSGI
   requests in their greenthreads included; a POST waiting for room on the
   queue is in flight too;
2. ``STOP`` goes on the queue behind the last accepted job; the conductor
   carries out everything before it and waits for its workers;
3. the BMC simulator and the event bus close.

It then prints what it counted; the exit status is 0 only if every request
begun was answered and every accepted job was carried out (done or failed).
"""

from __future__ import annotations

import asyncio
import signal
from typing import TextIO

import eventlet
from aiohttp import web

import bridge

from . import api, bmc, conductor, legacy_api
from .events import EventClient, EventSink
from .settings import Settings


async def serve(settings: Settings, out: TextIO) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    sink = EventSink()
    await sink.start(settings.host)
    events = EventClient(sink.address)
    rack = bmc.Simulator(settings)
    rack_server = eventlet.spawn(rack.serve_forever)
    jobs: bridge.Queue[conductor.Job] = bridge.Queue(maxsize=settings.queue_size)
    the_conductor = conductor.Conductor(settings, jobs, rack.address, events)
    conducting = eventlet.spawn(the_conductor.run)

    app = api.make_app(jobs, legacy_api.make_app(settings, rack.address), frozenset(rack.power))
    runner = web.AppRunner(app, shutdown_timeout=settings.shutdown_timeout, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"listening on http://{host}:{port}", file=out, flush=True)

    await stop.wait()
    print("stopping: no new connections; finishing requests in flight", file=out, flush=True)
    await runner.cleanup()
    await jobs.put(conductor.STOP)
    await conducting  # a greenthread, awaited from async code
    await bridge.to_async(rack.close)()  # green code, called from async code
    await rack_server
    await events.close()
    await sink.close()

    counts = app[api.COUNTS]
    done, failed = the_conductor.completed, the_conductor.failed
    print(
        f"stopped: requests begun={counts['started']} answered={counts['answered']} "
        f"dropped={counts['dropped']}; "
        f"jobs accepted={counts['jobs accepted']} done={done} failed={failed}; "
        f"events published={events.published} received={len(sink.received)}",
        file=out,
        flush=True,
    )
    lost = counts["started"] - counts["answered"] + counts["jobs accepted"] - done - failed
    return 0 if lost == 0 else 1
