"""The Metal3-style scale test (../shared/seeds/001): 100 nodes created and deleted
while provisioning runs, on one process and on a cluster, SQLite and PostgreSQL.

Correctness only (``examples/scale.py`` runs the scenario): every answer as
expected, every node gone at the end, every job done exactly once (from the
store). The timings are bench/scale_service.py's business.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nats")
pytest.importorskip("sqlalchemy")
import aiohttp

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))
pytest.register_assert_rewrite("example_fixtures")  # imported here before pytest_plugins loads it

import scale  # noqa: E402
from cluster import Cluster, ServiceProcess, audit  # noqa: E402
from example_fixtures import skip_if_quick  # noqa: E402

pytest_plugins = ["example_fixtures"]  # database_url

pytestmark = [skip_if_quick, pytest.mark.timeout(180)]


async def check(url: str, store: str, summary: dict[str, Any]) -> None:
    assert summary["unexpected"] == []
    assert summary["requests"]["create"]["count"] == summary["requests"]["delete"]["count"] == 100
    assert summary["provisioning jobs meanwhile"] > 0
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/v2/nodes", params={"after": "scale", "limit": 1000}) as r:
            left = [n["name"] for n in (await r.json())["nodes"] if n["name"].startswith("scale-")]
    assert left == []
    result = await asyncio.to_thread(audit, store, summary["accepted"])
    assert result.exactly_once, result.problems[:10]
    assert result.by_status == {"done": len(summary["accepted"])}


@pytest.mark.asyncio
async def test_100_nodes_created_and_deleted_while_provisioning_runs_on_one_process(
    database_url: str, tmp_path: Path
) -> None:
    service = ServiceProcess(
        "all", "all", ["--port=0", f"--state-dir={tmp_path}", f"--store={database_url}"], tmp_path
    )
    await service.start()
    try:
        url = service.first_line.rsplit(" ", 1)[-1]
        summary = await scale.run(url)
        await check(url, database_url, summary)
    finally:
        assert await service.stop() == 0, service.log_tail()


@pytest.mark.asyncio
async def test_100_nodes_created_and_deleted_while_provisioning_runs_on_a_cluster(
    database_url: str, tmp_path: Path
) -> None:
    async with Cluster(tmp_path, store=database_url) as cluster:
        summary = await scale.run(cluster.url)
        await check(cluster.url, cluster.store, summary)
        codes = await cluster.close()
        assert set(codes.values()) == {0}, cluster.logs()
