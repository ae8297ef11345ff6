"""The example service (examples/service), run as its users run it: real processes.

One process (``--role all``: the API, the conductor, its own nats-server
child, the BMC simulator) on each store, SQLite and PostgreSQL: each route,
the events stream, the legacy v1 API, answers to bad input, shutdown with
work in flight, a restart that keeps the state, and clear errors at start.
Each test that accepts jobs ends by checking, from the store, that each took
effect exactly once (``cluster.audit``). The load-and-SIGTERM run is ``make
demo`` (tests/test_examples.py); the cluster and its faults are in
tests/test_example_faults.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nats")
pytest.importorskip("sqlalchemy")
import aiohttp
import pytest_asyncio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

from cluster import ServiceProcess, audit  # noqa: E402

pytest_plugins = ["example_fixtures"]  # database_url, postgres

BOUND = 30  # seconds: the bound on every wait
Start = Callable[..., Awaitable[ServiceProcess]]


class Service:
    """A ``--role all`` process and what it was started with."""

    def __init__(self, process: ServiceProcess, store: str) -> None:
        self.process = process
        self.store = store
        self.url = process.first_line.rsplit(" ", 1)[-1]

    async def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit status, and what it printed after starting."""
        code = await self.process.stop()
        return code, "\n".join(self.process.output)


@pytest_asyncio.fixture
async def start(database_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await start(*options)``: a running service on this test's store."""
    started: list[ServiceProcess] = []

    async def start_one(*options: str, state: str = "state") -> Service:
        process = ServiceProcess(
            "all",
            f"all-{len(started)}",
            ["--port=0", f"--state-dir={tmp_path / state}", f"--store={database_url}", *options],
            tmp_path,
        )
        started.append(process)
        await process.start()
        return Service(process, database_url)

    yield start_one
    for process in started:
        if process.running:
            await process.kill()


def http() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=BOUND))


async def post_power(session: aiohttp.ClientSession, url: str, node: str, state: str = "on") -> str:
    async with session.post(f"{url}/v2/nodes/{node}/power", json={"state": state}) as r:
        assert r.status == 202, await r.text()
        return str((await r.json())["job"])


async def wait_job(session: aiohttp.ClientSession, url: str, job: str) -> dict[str, Any]:
    async with session.get(f"{url}/v2/jobs/{job}", params={"wait": BOUND}) as r:
        assert r.status == 200
        return dict(await r.json())


async def exactly_once(service: Service, accepted: list[str]) -> Any:
    result = await asyncio.to_thread(audit, service.store, accepted)
    assert result.exactly_once, result.problems[:10]
    return result


@pytest.mark.asyncio
async def test_a_power_job_is_carried_out_streamed_and_seen_by_the_legacy_api(
    start: Callable[..., Any],
) -> None:
    service = await start()
    async with http() as session:
        events = await session.get(f"{service.url}/v2/events", params={"node": "node-7"})
        assert events.headers["Content-Type"] == "application/x-ndjson"
        job = await post_power(session, service.url, "node-7")
        finished = await wait_job(session, service.url, job)
        assert finished["status"] == "done" and finished["attempts"] == 1
        streamed = [json.loads(await events.content.readline()) for _ in range(2)]
        assert [(e["job"], e["status"]) for e in streamed] == [(job, "running"), (job, "done")]
        events.close()
        async with session.get(f"{service.url}/v1/nodes/node-7") as r:  # legacy WSGI, green
            assert (r.status, await r.json()) == (200, {"node": "node-7", "power": "on"})
        async with session.get(f"{service.url}/v2/nodes/node-7") as r:  # the store
            assert (await r.json())["power"] == "on"
    status, printed = await service.stop()
    assert status == 0, printed
    assert "jobs accepted=1" in printed and "done=1 failed=0" in printed
    assert "jobs left on the bus=0" in printed
    await exactly_once(service, [job])


@pytest.mark.asyncio
async def test_nodes_are_enrolled_listed_and_deleted(start: Callable[..., Any]) -> None:
    # A node whose BMC hangs keeps a job open for a while: it cannot be deleted meanwhile.
    service = await start("--nodes=3", "--bmc-timeout=3")
    async with http() as session:
        async with session.post(f"{service.url}/v2/nodes", json={"name": "rack-1"}) as r:
            assert (r.status, (await r.json())["name"]) == (201, "rack-1")
        async with session.post(f"{service.url}/v2/nodes", json={"name": "rack-1"}) as r:
            assert r.status == 409 and "exists" in (await r.json())["error"]
        async with session.get(f"{service.url}/v2/nodes", params={"limit": 2}) as r:
            names = [n["name"] for n in (await r.json())["nodes"]]
        async with session.get(f"{service.url}/v2/nodes", params={"after": names[-1]}) as r:
            names += [n["name"] for n in (await r.json())["nodes"]]
        assert names == ["node-0", "node-1", "node-2", "rack-1"]
        async with session.post(f"{service.url}/v2/nodes", json={"name": "stuck-1"}) as r:
            assert r.status == 201
        job = await post_power(session, service.url, "stuck-1")
        async with session.delete(f"{service.url}/v2/nodes/stuck-1") as r:
            assert r.status == 409 and "jobs not finished" in (await r.json())["error"]
        failed = await wait_job(session, service.url, job)
        assert failed["status"] == "failed" and "did not answer" in failed["error"]
        for name in ("stuck-1", "rack-1"):
            async with session.delete(f"{service.url}/v2/nodes/{name}") as r:
                assert r.status == 204
            async with session.get(f"{service.url}/v2/nodes/{name}") as r:
                assert r.status == 404
    status, printed = await service.stop()
    assert status == 0, printed
    await exactly_once(service, [job])


@pytest.mark.asyncio
async def test_shutdown_finishes_accepted_jobs_and_requests_in_flight(
    start: Callable[..., Any],
) -> None:
    # One worker, 0.1 s a job: jobs are still on the bus when SIGTERM comes.
    service = await start("--bmc-delay=0.1", "--workers=1")
    async with http() as session:
        jobs = [await post_power(session, service.url, f"node-{n}") for n in range(10)]
        waiting = asyncio.ensure_future(wait_job(session, service.url, jobs[-1]))
        await in_flight(session, service.url, 1)
        status, printed = await service.stop()
        assert (await asyncio.wait_for(waiting, BOUND))["status"] == "done"
    assert status == 0, printed
    assert "jobs accepted=10" in printed and "done=10 failed=0" in printed
    await exactly_once(service, jobs)


async def in_flight(session: aiohttp.ClientSession, url: str, at_least: int) -> None:
    """Until ``at_least`` other requests are in flight (``/healthz`` says so)."""

    async def poll() -> None:
        while True:
            async with session.get(f"{url}/healthz") as r:
                if (await r.json())["requests in flight"] >= at_least:
                    return

    await asyncio.wait_for(poll(), BOUND)


@pytest.mark.asyncio
async def test_a_shutdown_that_gives_up_on_a_request_says_so_and_fails(
    start: Callable[..., Any],
) -> None:
    # A request waits on a job whose BMC hangs; shutdown gives up on it after 0.2 s.
    service = await start("--bmc-timeout=2", "--shutdown-timeout=0.2")
    async with http() as session:
        async with session.post(f"{service.url}/v2/nodes", json={"name": "stuck-2"}) as r:
            assert r.status == 201
        job = await post_power(session, service.url, "stuck-2")

        async def wait() -> int | str:
            try:
                async with session.get(f"{service.url}/v2/jobs/{job}?wait=30") as r:
                    return r.status
            except aiohttp.ClientError as exc:
                return type(exc).__name__

        waiting = asyncio.ensure_future(wait())
        await in_flight(session, service.url, 1)
        status, printed = await service.stop()
        # No answer: the connection closed (aiohttp retries an idempotent GET once,
        # on a new connection, which is then refused).
        answer = await asyncio.wait_for(waiting, BOUND)
        assert answer in ("ServerDisconnectedError", "ClientConnectorError"), answer
    assert status == 1, printed
    assert "dropped=1;" in printed
    # The job itself was not lost: the drain waited for the BMC's timeout.
    result = await exactly_once(service, [job])
    assert result.by_status == {"failed": 1}


@pytest.mark.asyncio
async def test_state_survives_a_killed_process(start: Callable[..., Any]) -> None:
    """SIGKILL with jobs on the bus, one of them taken: a restart does them all, once."""
    options = ("--bmc-delay=0.3", "--workers=1", "--ack-wait=1")
    service = await start(*options)
    async with http() as session:
        async with session.post(f"{service.url}/v2/nodes", json={"name": "kept"}) as r:
            assert r.status == 201
        first = await post_power(session, service.url, "kept")
        assert (await wait_job(session, service.url, first))["status"] == "done"
        events = await session.get(f"{service.url}/v2/events", params={"limit": 1})
        jobs = [await post_power(session, service.url, f"node-{n}") for n in range(6)]
        assert json.loads(await events.content.readline())["status"] == "running"
    await service.process.kill()  # mid-job: the first of the six is running

    again = await start(*options)  # same state directory, same store
    async with http() as session:
        statuses = [(await wait_job(session, again.url, job))["status"] for job in jobs]
        assert statuses == ["done"] * 6
        async with session.get(f"{again.url}/v2/jobs/{first}") as r:
            assert (await r.json())["status"] == "done"
        async with session.get(f"{again.url}/v2/nodes/kept") as r:
            assert (await r.json())["power"] == "on"
    status, printed = await again.stop()
    assert status == 0, printed
    result = await exactly_once(again, [first, *jobs])
    assert result.redelivered >= 1  # the job the killed process was running


# -- bad input ------------------------------------------------------------------------

BAD_REQUESTS = [
    ("POST", "/v2/nodes/node-1/power", b"not json", 400),
    ("POST", "/v2/nodes/node-1/power", b"[1, 2]", 400),
    ("POST", "/v2/nodes/node-1/power", b'{"state": "sideways"}', 400),
    ("POST", "/v2/nodes/node-1/power", b'{"state": true}', 400),
    ("POST", "/v2/nodes/node-1/power", b'{"state": "on", "force": 1}', 400),
    ("POST", "/v2/nodes/node-1/power", b"{}", 400),
    ("POST", "/v2/nodes/node-1/power", b'{"state": "on"' + b" " * 20000 + b"}", 413),
    ("POST", "/v2/nodes/node-999/power", b'{"state": "on"}', 404),
    ("POST", "/v2/nodes/No%20Such/power", b'{"state": "on"}', 404),
    ("POST", "/v2/nodes", b'{"name": "Bad Name"}', 400),
    ("POST", "/v2/nodes", b'{"name": 7}', 400),
    ("GET", "/v2/nodes?limit=0", b"", 400),
    ("GET", "/v2/nodes?limit=many", b"", 400),
    ("DELETE", "/v2/nodes/node-999", b"", 404),
    ("PUT", "/v2/nodes/node-1", b"", 405),
    ("GET", "/v2/jobs/no-such-job", b"", 404),
    ("GET", "/v2/jobs/" + "0" * 32, b"", 404),
    ("GET", "/v2/jobs/" + "0" * 32 + "?wait=-1", b"", 400),
    ("GET", "/v2/jobs/" + "0" * 32 + "?wait=nan", b"", 400),
    ("GET", "/v2/events?limit=x", b"", 400),
    ("GET", "/v2/elsewhere", b"", 404),
    ("GET", "/v2/nodes?after=%00", b"", 400),  # found by the fuzzer: a 500 on PostgreSQL
    ("GET", "/v1/nodes/node-999", b"", 404),
    ("GET", "/v1/nodes/%00", b"", 404),  # found by the fuzzer: a 500 on PostgreSQL
    ("POST", "/v1/nodes/node-1", b"", 405),
    ("GET", "/v1/elsewhere", b"", 404),
]


@pytest.mark.asyncio
async def test_bad_requests_get_a_4xx_with_a_json_error(start: Callable[..., Any]) -> None:
    service = await start()
    async with http() as session:
        for method, path, body, expected in BAD_REQUESTS:
            async with session.request(method, service.url + path, data=body) as r:
                answer = await r.json(content_type=None)
                assert (method, path, r.status) == (method, path, expected), answer
                assert r.headers["Content-Type"].startswith("application/json")
                assert answer["status"] == expected and answer["error"], answer
    status, printed = await service.stop()
    assert status == 0, printed


# -- errors at start ------------------------------------------------------------------


def run_service(*options: str, timeout: float = BOUND) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "run_service.py"), *options],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--role=api"], "--role api needs --bus nats://host:port"),
        (["--role=conductor", "--bus=nats://127.0.0.1:4222"], "--role conductor needs --bmc"),
        (["--role=sideways"], "invalid choice: 'sideways'"),
    ],
)
def test_a_role_without_what_it_needs_is_a_usage_error(options: list[str], message: str) -> None:
    result = run_service(*options)
    assert result.returncode == 2
    assert message in result.stderr


def test_an_unreachable_bus_is_a_clear_error_at_start(tmp_path: Path) -> None:
    from cluster import free_port

    result = run_service(
        "--port=0", f"--state-dir={tmp_path}", f"--bus=nats://127.0.0.1:{free_port()}"
    )
    assert result.returncode == 2
    assert "cannot start: cannot reach the bus at nats://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unsupported_store_is_a_clear_error_at_start(tmp_path: Path) -> None:
    result = run_service("--port=0", f"--state-dir={tmp_path}", "--store=mysql://db/service")
    assert result.returncode == 2
    assert "unsupported store 'mysql': use a sqlite:/// or postgresql:// URL" in result.stderr
