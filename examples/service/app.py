"""Wiring for each role, and the graceful shutdown.

* ``api`` -- async main (``asyncio.run``; the hub joins that loop as a
  guest): the v2 API natively, the v1 WSGI app in greenthreads.
* ``conductor`` -- green main, monkey-patched first thing like the legacy
  service it is (the hub owns the loop): the conductor's GreenPool, and the
  bus's coroutines awaited with :func:`bridge.await_`.
* ``all`` -- async main with both, plus what a single process needs to run
  alone: a nats-server child (no ``--bus``), a SQLite file (no ``--store``)
  and a simulated BMC rack (no ``--bmc``).
* ``bmc`` -- green main: the simulated BMC rack, the hardware stand-in.

Shutdown, on SIGTERM or SIGINT, loses nothing accepted:

1. the API stops listening, ends event streams, and waits for the requests
   in flight (aiohttp's ``runner.cleanup()``): a job is accepted -- 202 --
   only once the bus has stored it, so every job accepted is on the bus;
2. the conductor stops taking jobs and finishes the ones it took (records
   and acks them); in ``all``, it first takes and finishes what is left on
   the bus, within ``--shutdown-timeout``; in a cluster, the other
   conductors have the rest, and whatever a stopped process leaves on the
   bus is durable there;
3. the bus connection, the stores, the BMC rack and the nats-server child close.

Each process then prints what it counted; the exit status is 0 only if
every request begun was answered and nothing taken was left unfinished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import TextIO

import eventlet
from aiohttp import web

import bridge

from . import api, bmc, legacy_api, stats
from .bus import Bus, BusUnavailable
from .conductor import Conductor
from .natsd import NatsServer, NatsServerError
from .settings import Settings, parse_address
from .store import AsyncStore, StoreUnavailable, SyncStore, urls

log = logging.getLogger(__name__)

START_ERRORS = (BusUnavailable, StoreUnavailable, NatsServerError, ValueError, OSError)


def main(settings: Settings) -> int:
    """Run the role ``settings.role`` until SIGTERM/SIGINT; return the exit status."""
    logging.basicConfig(
        level=logging.WARNING,
        format=f"%(asctime)s {settings.process_name} %(levelname)s %(name)s: %(message)s",
    )
    try:
        if settings.role == "conductor":
            return run_conductor(settings, sys.stdout)
        if settings.role == "bmc":
            return run_bmc(settings, sys.stdout)
        return asyncio.run(serve(settings, sys.stdout))
    except START_ERRORS as exc:
        print(f"{settings.process_name}: cannot start: {exc}", file=sys.stderr, flush=True)
        return 2


async def _on_signals(callback: Callable[[], object]) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, callback)


# -- async main: api, all -----------------------------------------------------------


async def serve(settings: Settings, out: TextIO) -> int:
    stop = asyncio.Event()
    await _on_signals(stop.set)
    async with contextlib.AsyncExitStack() as cleanup:  # undone in reverse, on any exit
        return await _serve(settings, out, stop, cleanup)
    raise AssertionError("unreachable")  # pragma: no cover - mypy


async def _serve(
    settings: Settings, out: TextIO, stop: asyncio.Event, cleanup: contextlib.AsyncExitStack
) -> int:
    name = settings.process_name
    alone = settings.role == "all"
    if settings.stats_interval > 0:
        reporter = asyncio.create_task(stats.report_async(name, settings.stats_interval, out))
        cleanup.callback(reporter.cancel)
    bus_url = settings.bus
    if alone and not bus_url:
        natsd = NatsServer(settings.state_path / "nats", settings.host)
        await natsd.start()
        cleanup.push_async_callback(natsd.stop)
        bus_url = natsd.url
    if alone and not settings.bmc:
        rack = bmc.Simulator(settings.host, 0, settings.bmc_delay)
        rack_server = eventlet.spawn(rack.serve_forever)
        cleanup.push_async_callback(_close_rack, rack, rack_server)
        bmc_address = rack.address
    else:
        bmc_address = parse_address(settings.bmc)
    sync_url, async_url = urls(settings.store, settings.state_path)
    store = AsyncStore(async_url)
    cleanup.push_async_callback(store.close)
    green_store = SyncStore(sync_url, pool_size=settings.workers)
    cleanup.push_async_callback(bridge.to_async(green_store.close))  # green, called from async
    await store.ensure_schema(seed_nodes=settings.nodes)
    bus = await Bus.connect(bus_url, name)
    cleanup.push_async_callback(bus.close)

    app = api.make_app(
        store,
        bus,
        legacy_api.make_app(settings, green_store, bmc_address),
        max_body=settings.max_body,
        publish_timeout=settings.publish_timeout,
    )
    await api.follow_bus(app)
    conductor = conducting = None
    if alone:
        conductor = Conductor(settings, bus, green_store, bmc_address, name)
        conducting = eventlet.spawn(conductor.run, drain=True)
    runner = web.AppRunner(app, shutdown_timeout=settings.shutdown_timeout, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=settings.reuse_port)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"{name} listening on http://{host}:{port}", file=out, flush=True)

    await stop.wait()
    print(f"{name} stopping: no new connections; finishing requests", file=out, flush=True)
    api.end_streams(app)
    await runner.cleanup()
    counts = app[api.COUNTS]
    # Dropped: begun and never answered -- cancelled by the shutdown, whose
    # cancellation may not have reached the handler yet.
    lost = counts["started"] - counts["answered"]
    print(
        f"{name} stopped: requests begun={counts['started']} answered={counts['answered']} "
        f"dropped={lost}; jobs accepted={counts['jobs accepted']}",
        file=out,
        flush=True,
    )
    if conductor is not None and conducting is not None:
        conductor.stop.set()
        await conducting  # a greenthread, awaited from async code
        pending = await bus.pending_jobs()
        print(f"{_conductor_summary(conductor)}; jobs left on the bus={pending}", file=out)
        lost += conductor.counts["left"] + pending
    return 0 if lost == 0 else 1


async def _close_rack(rack: bmc.Simulator, serving: eventlet.greenthread.GreenThread) -> None:
    await bridge.to_async(rack.close)()  # green code, called from async code
    await serving


def _conductor_summary(conductor: Conductor) -> str:
    c = conductor.counts
    return (
        f"{conductor.name} conductor: jobs taken={c['taken']} done={c['done']} "
        f"failed={c['failed']} repeats={c['repeats']} left={c['left']}"
    )


# -- green main: conductor, bmc -----------------------------------------------------


def run_conductor(settings: Settings, out: TextIO) -> int:
    """The legacy conductor process: green main; ``bridge.await_`` reaches the bus."""
    name = settings.process_name
    sync_url, _ = urls(settings.store, settings.state_path)
    store = SyncStore(sync_url, pool_size=settings.workers)
    store.ensure_schema()
    bus = bridge.await_(Bus.connect(settings.bus, name))
    conductor = Conductor(settings, bus, store, parse_address(settings.bmc), name)
    bridge.await_(_on_signals(conductor.stop.set))
    if settings.stats_interval > 0:
        eventlet.spawn(stats.report_green, name, settings.stats_interval, out)
    driver = "green" if store.green else "in tpool threads"
    print(
        f"{name} ready: {store.engine.dialect.name} via {store.engine.dialect.driver} "
        f"({driver}), bus {settings.bus}",
        file=out,
        flush=True,
    )
    try:
        conductor.run()
    finally:
        bridge.await_(bus.close())
        store.close()
    print(_conductor_summary(conductor), file=out, flush=True)
    return 0 if conductor.counts["left"] == 0 else 1


def run_bmc(settings: Settings, out: TextIO) -> int:
    """The simulated BMC rack as a process of its own (the cluster's hardware)."""
    rack = bmc.Simulator(settings.host, settings.port, settings.bmc_delay)
    stop = bridge.Event()
    bridge.await_(_on_signals(stop.set))
    serving = eventlet.spawn(rack.serve_forever)
    if settings.stats_interval > 0:
        eventlet.spawn(stats.report_green, settings.process_name, settings.stats_interval, out)
    host, port = rack.address
    print(f"bmc rack listening on {host}:{port}", file=out, flush=True)
    stop.green.wait()
    rack.close()
    serving.wait()
    print(f"bmc rack stopped: commands={rack.commands}", file=out, flush=True)
    return 0
