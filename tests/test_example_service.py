"""The example service (examples/service), run as its users run it: a real process.

The load-and-SIGTERM run is ``make demo`` (tests/test_examples.py); here,
each part of the API, its answers to bad input, and a shutdown with work
still in flight.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

SERVICE = Path(__file__).resolve().parent.parent / "examples" / "run_service.py"
BOUND = 30  # seconds: the bound on every wait


class Service:
    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    async def stop(self) -> tuple[int, str]:
        """SIGTERM; return the exit status and what it printed after starting."""
        assert self.process.stdout is not None
        self.process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(self.process.stdout.read(), BOUND)
        return await asyncio.wait_for(self.process.wait(), BOUND), rest.decode()


async def start(*options: str) -> Service:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SERVICE),
        "--port=0",
        *options,
        stdout=asyncio.subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None
    first = (await asyncio.wait_for(process.stdout.readline(), BOUND)).decode()
    match = re.search(r"http://\S+", first)
    if match is None:
        process.kill()
        await process.wait()
        pytest.fail(f"the service did not start: {first!r}")
    return Service(process, match.group(0))


@pytest_asyncio.fixture
async def services() -> AsyncIterator[Callable[..., Awaitable[Service]]]:
    """``await services(*options)``: a running service, killed at teardown if still up."""
    started: list[Service] = []

    async def start_one(*options: str) -> Service:
        started.append(await start(*options))
        return started[-1]

    yield start_one
    for service in started:
        if service.process.returncode is None:
            service.process.kill()
            await service.process.wait()


@pytest_asyncio.fixture
async def service(services: Callable[..., Awaitable[Service]]) -> Service:
    # One worker, 0.1 s a job: jobs are still queued on shutdown.
    return await services("--bmc-delay=0.1", "--workers=1")


async def in_flight(
    http: aiohttp.ClientSession, service: Service, at_least: int, jobs_accepted: int = 0
) -> dict[str, int]:
    """Poll /healthz until ``at_least`` other requests are in flight (and as many
    jobs accepted); return its last answer."""

    async def poll() -> dict[str, int]:
        while True:
            async with http.get(f"{service.url}/healthz") as r:
                seen = dict(await r.json())
            if seen["requests in flight"] >= at_least and seen["jobs accepted"] >= jobs_accepted:
                return seen

    return await asyncio.wait_for(poll(), BOUND)


@pytest.mark.asyncio
async def test_a_power_job_is_carried_out_and_seen_by_the_legacy_api(service: Service) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=BOUND)) as http:
        async with http.post(f"{service.url}/v2/nodes/node-7/power", json={"state": "on"}) as r:
            assert r.status == 202
            job = (await r.json())["job"]
        async with http.get(f"{service.url}/v2/jobs/{job}", params={"wait": BOUND}) as r:
            assert (await r.json())["status"] == "done"
        async with http.get(f"{service.url}/v1/nodes/node-7") as r:
            assert (r.status, await r.json()) == (200, {"node": "node-7", "power": "on"})
    status, printed = await service.stop()
    assert status == 0
    assert "jobs accepted=1 done=1 failed=0; events published=1 received=1" in printed


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "/v2/nodes/node-1/power", b"not json", 400),
        ("POST", "/v2/nodes/node-1/power", b'{"state": "sideways"}', 400),
        ("POST", "/v2/nodes/node-999/power", b'{"state": "on"}', 404),
        ("GET", "/v2/jobs/no-such-job", b"", 404),
        ("GET", "/v1/nodes/node-999", b"", 404),
        ("GET", "/v1/elsewhere", b"", 404),
    ],
)
async def test_bad_requests_get_a_clear_answer(
    service: Service, method: str, path: str, body: bytes, expected: int
) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=BOUND)) as http:
        async with http.request(method, service.url + path, data=body) as r:
            assert r.status == expected
            assert await r.text()  # says what was wrong
    status, _ = await service.stop()
    assert status == 0


@pytest.mark.asyncio
async def test_shutdown_finishes_queued_jobs_and_requests_in_flight(service: Service) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=BOUND)) as http:
        jobs = []
        for n in range(10):
            url = f"{service.url}/v2/nodes/node-{n}/power"
            async with http.post(url, json={"state": "on"}) as r:
                jobs.append((await r.json())["job"])
        # A request in flight at SIGTERM: waiting for the last job.
        waiting = asyncio.ensure_future(
            http.get(f"{service.url}/v2/jobs/{jobs[-1]}", params={"wait": BOUND})
        )
        seen = await in_flight(http, service, 1)
        assert seen["queued"] > 0
        status, printed = await service.stop()
        response = await asyncio.wait_for(waiting, BOUND)
        assert (await response.json())["status"] == "done"
    assert status == 0
    assert "jobs accepted=10 done=10 failed=0" in printed


@pytest.mark.asyncio
async def test_a_shutdown_that_gives_up_on_a_request_says_so_and_fails(
    services: Callable[..., Awaitable[Service]],
) -> None:
    # One worker busy 1 s a job, the conductor holding the next job, a queue
    # of one: the fourth POST waits for room, and shutdown gives up on it
    # after 0.2 s.
    service = await services(
        "--queue-size=1", "--workers=1", "--bmc-delay=1", "--shutdown-timeout=0.2"
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=BOUND)) as http:

        async def post(n: int) -> int | str:
            url = f"{service.url}/v2/nodes/node-{n}/power"
            try:
                async with http.post(url, json={"state": "on"}) as r:
                    return r.status
            except aiohttp.ClientError as exc:
                return type(exc).__name__

        posts = [asyncio.ensure_future(post(n)) for n in range(4)]
        await in_flight(http, service, 1, jobs_accepted=3)  # the fourth waits for room
        status, printed = await service.stop()
        answers = await asyncio.wait_for(asyncio.gather(*posts), BOUND)
    assert status == 1
    assert "dropped=1;" in printed
    assert "jobs accepted=3 done=3" in printed
    assert sorted(map(str, answers)) == ["202", "202", "202", "ServerDisconnectedError"]
