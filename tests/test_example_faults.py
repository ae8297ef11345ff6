"""Faults on real processes, a real nats-server and a real database (SQLite, PostgreSQL).

Each test breaks one part while the service works, then checks, from the
store, that every job it accepted took effect exactly once
(``cluster.audit``): a conductor SIGKILLed mid-job, nats-server restarted
under load, a BMC that hangs, clients that go away mid-request, the
database locked or gone for a moment, and each kind of process stopped
with SIGTERM under load (a rolling restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nats")
pytest.importorskip("sqlalchemy")
import aiohttp
import pytest_asyncio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))
pytest.register_assert_rewrite("example_fixtures")  # imported here before pytest_plugins loads it

import loadgen  # noqa: E402
from cluster import Cluster, Postgres, ServiceProcess, audit, wait_finished  # noqa: E402
from example_fixtures import skip_if_quick  # noqa: E402

pytest_plugins = ["example_fixtures"]  # database_url, postgres

BOUND = 30  # seconds: the bound on every wait
pytestmark = [skip_if_quick, pytest.mark.timeout(120)]


def http(timeout: float = BOUND) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))


async def post_power(session: aiohttp.ClientSession, url: str, node: str) -> str:
    async with session.post(f"{url}/v2/nodes/{node}/power", json={"state": "on"}) as r:
        assert r.status == 202, await r.text()
        return str((await r.json())["job"])


async def exactly_once(store: str, accepted: list[str]) -> Any:
    result = await asyncio.to_thread(audit, store, accepted)
    assert result.exactly_once, result.problems[:10]
    return result


@pytest_asyncio.fixture
async def single(database_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await single(*options)``: one ``--role all`` process; its URL."""
    started: list[ServiceProcess] = []

    async def start(*options: str) -> ServiceProcess:
        process = ServiceProcess(
            "all",
            "all",
            ["--port=0", f"--state-dir={tmp_path}", f"--store={database_url}", *options],
            tmp_path,
        )
        started.append(process)
        return await process.start()

    yield start
    for process in started:
        if process.running:
            await process.kill()


def url_of(process: ServiceProcess) -> str:
    return process.first_line.rsplit(" ", 1)[-1]


class Accepted:
    """Job ids the load generator got 202s for, and a way to wait for more."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._targets: list[tuple[int, asyncio.Event]] = []

    def progress(self, answered: int) -> None:
        for target, event in self._targets:
            if len(self.ids) >= target:
                event.set()

    async def more(self, count: int) -> None:
        event = asyncio.Event()
        self._targets.append((len(self.ids) + count, event))
        await asyncio.wait_for(event.wait(), BOUND)


def statuses_are_answers(summary: dict[str, Any]) -> bool:
    """2xx, and 503 (the service said: not now, retry); never a 500."""
    return all(code.startswith("2") or code == "503" for code in summary["status"])


# -- the bus and the conductors -------------------------------------------------------


@pytest.mark.asyncio
async def test_a_conductor_killed_mid_job_leaves_the_job_to_another(
    database_url: str, tmp_path: Path
) -> None:
    async with Cluster(
        tmp_path,
        store=database_url,
        apis=1,
        conductors=2,
        options=["--ack-wait=1"],
        conductor_options=["--workers=2"],
        bmc_delay=0.5,
    ) as cluster:
        victim, survivor = cluster.conductors
        async with http() as session:
            events = await session.get(f"{cluster.url}/v2/events")
            jobs = [await post_power(session, cluster.url, f"node-{n}") for n in range(8)]
            while True:  # until the victim has a job in hand (its BMC takes 0.5 s)
                event = json.loads(await asyncio.wait_for(events.content.readline(), BOUND))
                if event["status"] == "running" and event["conductor"] == victim.name:
                    break
            await victim.kill()
            events.close()
            statuses = await wait_finished(cluster.url, jobs)
        assert set(statuses.values()) == {"done"}
        codes = await cluster.close()
        assert codes[survivor.name] == 0, cluster.logs()
    result = await exactly_once(cluster.store, jobs)
    assert result.redelivered >= 1  # the victim's job, done by the survivor


@pytest.mark.asyncio
async def test_nats_server_restarted_under_load_loses_nothing(
    database_url: str, tmp_path: Path
) -> None:
    async with Cluster(tmp_path, store=database_url, apis=2, conductors=2) as cluster:
        accepted = Accepted()
        load = asyncio.create_task(
            loadgen.run(cluster.url, 8, 8.0, accepted.progress, accepted=accepted.ids, retry=True)
        )
        await accepted.more(50)
        await cluster.bus.restart()  # SIGTERM, then a new server on the same port and files
        await accepted.more(50)  # the API processes reconnected and accept again
        summary = await asyncio.wait_for(load, BOUND)
        await wait_finished(cluster.url, accepted.ids)
        async with http() as session, session.get(f"{cluster.url}/healthz") as r:
            assert (await r.json())["bus disconnects"] >= 1
        codes = await cluster.close()
        assert set(codes.values()) == {0}, cluster.logs()
    assert statuses_are_answers(summary), summary
    await exactly_once(cluster.store, accepted.ids)


@pytest.mark.asyncio
async def test_each_kind_of_process_stopped_under_load_loses_nothing(
    database_url: str, tmp_path: Path
) -> None:
    """A rolling restart under load: SIGTERM an API and a conductor, start new ones."""
    async with Cluster(tmp_path, store=database_url, apis=2, conductors=2) as cluster:
        accepted = Accepted()
        load = asyncio.create_task(
            loadgen.run(cluster.url, 8, 8.0, accepted.progress, accepted=accepted.ids, retry=True)
        )
        await accepted.more(50)
        old_api, old_conductor = cluster.apis[0], cluster.conductors[0]
        codes = await asyncio.gather(old_api.stop(), old_conductor.stop())
        assert codes == [0, 0], cluster.logs()
        await asyncio.gather(cluster.start_api(), cluster.start_conductor())
        await accepted.more(50)
        summary = await asyncio.wait_for(load, BOUND)
        await wait_finished(cluster.url, accepted.ids)
        codes = dict(await cluster.close())
        assert set(codes.values()) == {0}, cluster.logs()
    assert all(code.startswith("2") for code in summary["status"]), summary
    assert "dropped=0;" in old_api.output[-1]
    await exactly_once(cluster.store, accepted.ids)


@pytest.mark.asyncio
async def test_state_survives_a_restart_of_every_process(database_url: str, tmp_path: Path) -> None:
    """Stop the whole cluster with jobs still on the bus; a new one, on the same
    bus files and store, does them, once, and still has the nodes."""
    options = {"apis": 1, "conductors": 1, "conductor_options": ["--workers=1"]}
    async with Cluster(tmp_path, store=database_url, bmc_delay=0.2, **options) as cluster:
        async with http() as session:
            async with session.post(f"{cluster.url}/v2/nodes", json={"name": "kept"}) as r:
                assert r.status == 201
            jobs = [await post_power(session, cluster.url, "kept")]
            jobs += [await post_power(session, cluster.url, f"node-{n}") for n in range(10)]
        codes = await cluster.close()  # one worker, 0.2 s a job: most are still on the bus
        assert set(codes.values()) == {0}, cluster.logs()
    left = await asyncio.to_thread(audit, database_url, jobs)
    assert left.by_status.get("accepted", 0) > 0, left.by_status

    async with Cluster(tmp_path, store=database_url, **options) as again:
        assert set((await wait_finished(again.url, jobs)).values()) == {"done"}
        async with http() as session, session.get(f"{again.url}/v2/nodes/kept") as r:
            assert (await r.json())["power"] == "on"
        codes = await again.close()
        assert set(codes.values()) == {0}, again.logs()
    result = await exactly_once(database_url, jobs)
    assert result.by_status == {"done": 11}


# -- the BMCs and the clients ---------------------------------------------------------


@pytest.mark.asyncio
async def test_a_hung_bmc_times_out_and_fails_only_its_own_job(
    single: Callable[..., Any], database_url: str
) -> None:
    service = await single("--bmc-timeout=2")
    url = url_of(service)
    async with http() as session:
        async with session.post(f"{url}/v2/nodes", json={"name": "stuck-3"}) as r:
            assert r.status == 201
        stuck = await post_power(session, url, "stuck-3")
        others = [await post_power(session, url, f"node-{n}") for n in range(10)]
        # The others finish while the hung BMC still holds its greenthread.
        assert set((await wait_finished(url, others)).values()) == {"done"}
        async with session.get(f"{url}/v2/jobs/{stuck}") as r:
            assert (await r.json())["status"] == "running"
        async with session.get(f"{url}/v2/jobs/{stuck}", params={"wait": BOUND}) as r:
            job = await r.json()
        assert job["status"] == "failed"
        assert job["error"] == "the BMC did not answer within 2 s"  # eventlet.Timeout fired
        async with session.get(f"{url}/v1/nodes/stuck-3") as r:  # legacy v1: same Timeout
            assert (r.status, (await r.json())["error"]) == (504, "the BMC did not answer")
    assert await service.stop() == 0
    result = await exactly_once(database_url, [stuck, *others])
    assert result.by_status == {"done": 10, "failed": 1}


def raw_request(address: tuple[str, int], data: bytes) -> None:
    """Send ``data`` on a new connection and close it at once, reading nothing."""
    with socket.create_connection(address, timeout=BOUND) as sock:
        sock.sendall(data)


@pytest.mark.asyncio
async def test_clients_that_go_away_mid_request_lose_nothing(
    single: Callable[..., Any], database_url: str
) -> None:
    service = await single("--bmc-delay=0.05", "--bmc-timeout=2")
    url = url_of(service)
    host, port = url.removeprefix("http://").split(":")
    address = (host, int(port))
    body = b'{"state": "on"}'
    head = f"POST /v2/nodes/node-1/power HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    # A body cut short, then gone: nothing accepted.
    await asyncio.to_thread(raw_request, address, head.encode() + b"\r\n" + body[:5])
    # A whole request, then gone before the answer: the job is accepted all the same.
    for _ in range(5):
        await asyncio.to_thread(raw_request, address, head.encode() + b"\r\n" + body)
    async with http() as session:
        async with session.post(f"{url}/v2/nodes", json={"name": "stuck-4"}) as r:
            assert r.status == 201
        stuck = await post_power(session, url, "stuck-4")
        # Clients that give up while their request waits: on a job, on the legacy
        # API's BMC call (a greenthread), on the event stream.
        for path in (f"/v2/jobs/{stuck}?wait=2", "/v1/nodes/stuck-4"):
            await abandon(session, url, path)
        events = await session.get(f"{url}/v2/events")
        events.close()
        # The service goes on.
        after = [await post_power(session, url, f"node-{n}") for n in range(5)]
        await wait_finished(url, [stuck, *after])
    assert await service.stop() == 0
    result = await exactly_once(database_url, [stuck, *after])
    # Every job in the store took effect once, the 5 whose clients left included.
    assert result.by_status == {"done": 10, "failed": 1}, result


async def abandon(session: aiohttp.ClientSession, url: str, path: str) -> None:
    """Send ``GET path`` and close the connection while the service works on it."""

    async def in_flight() -> int:
        async with session.get(f"{url}/healthz") as r:
            return int((await r.json())["requests in flight"])

    async def until(done: Callable[[int], bool]) -> None:
        while not done(await in_flight()):
            pass

    # From quiet (an earlier abandoned request may still run to its end),
    # so that the one in flight next is this one.
    await asyncio.wait_for(until(lambda n: n == 0), BOUND)
    async with aiohttp.ClientSession() as impatient:
        request = asyncio.ensure_future(impatient.get(url + path))
        await asyncio.wait_for(until(lambda n: n >= 1), BOUND)
        request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request


# -- the database -----------------------------------------------------------------------


def hold_lock(store: str, held: threading.Event, release: threading.Event) -> None:
    """Take the jobs table's write lock, from another process's point of view, until ``release``."""
    if store.startswith("sqlite"):
        connection = sqlite3.connect(store.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
    else:
        import sqlalchemy as sa
        from service.store import urls

        engine = sa.create_engine(urls(store, Path("/nonexistent"))[0])
        connection = engine.raw_connection()
        connection.cursor().execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
    held.set()
    release.wait(BOUND)
    connection.rollback()
    connection.close()


@contextlib.asynccontextmanager
async def locked(store: str) -> AsyncIterator[None]:
    """A moment with the database locked by someone else (a thread of the test process)."""
    held, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=hold_lock, args=(store, held, release))
    thread.start()
    try:
        assert await asyncio.to_thread(held.wait, BOUND)
        yield
    finally:
        release.set()
        await asyncio.to_thread(thread.join, BOUND)


async def requests_in_flight(session: aiohttp.ClientSession, url: str, at_least: int) -> None:
    async def poll() -> None:
        while True:
            async with session.get(f"{url}/healthz") as r:
                if (await r.json())["requests in flight"] >= at_least:
                    return

    await asyncio.wait_for(poll(), BOUND)


@pytest.mark.asyncio
async def test_the_database_locked_for_a_moment_delays_but_loses_nothing(
    single: Callable[..., Any], database_url: str
) -> None:
    service = await single()
    url = url_of(service)
    async with http() as session:
        before = [await post_power(session, url, f"node-{n}") for n in range(3)]
        async with locked(database_url):
            posts = [asyncio.ensure_future(post_power(session, url, f"node-{n}")) for n in range(5)]
            # The loop is not blocked while they wait for the lock: it answers this.
            await requests_in_flight(session, url, 5)
            await asyncio.sleep(1.0)  # the fault's duration, not a synchronisation
            assert not any(post.done() for post in posts)
        during = await asyncio.wait_for(asyncio.gather(*posts), BOUND)
        await wait_finished(url, [*before, *during])
    assert await service.stop() == 0
    result = await exactly_once(database_url, [*before, *during])
    assert result.by_status == {"done": 8}


@pytest.mark.asyncio
async def test_the_database_gone_for_a_moment_loses_nothing_accepted(
    postgres: Postgres, tmp_path: Path
) -> None:
    """PostgreSQL restarted while jobs run: 503s meanwhile, nothing accepted lost."""
    from example_fixtures import fresh_database

    store = fresh_database(postgres)
    async with Cluster(
        tmp_path,
        store=store,
        apis=1,
        conductors=1,
        conductor_options=["--workers=4"],
        bmc_delay=0.5,
    ) as cluster:
        async with http() as session:
            events = await session.get(f"{cluster.url}/v2/events")
            accepted = [await post_power(session, cluster.url, f"node-{n}") for n in range(8)]
            while json.loads(await events.content.readline())["status"] != "running":
                pass
            events.close()
            await asyncio.to_thread(postgres.stop)  # jobs in flight at the BMCs
            answers = []
            for n in range(3):
                async with session.post(
                    f"{cluster.url}/v2/nodes/node-{n}/power", json={"state": "off"}
                ) as r:
                    answers.append((r.status, (await r.json())["error"][:31]))
            await asyncio.to_thread(postgres.start)
            accepted.append(await post_power(session, cluster.url, "node-9"))
            await wait_finished(cluster.url, accepted, timeout=60)
        codes = await cluster.close()
        assert set(codes.values()) == {0}, cluster.logs()
    assert answers == [(503, "the database is unavailable; re")] * 3
    await exactly_once(store, accepted)
