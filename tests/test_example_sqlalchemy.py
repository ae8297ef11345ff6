"""SQLAlchemy's greenlet bridge and bridge's, in one thread, in both directions.

SQLAlchemy's asyncio extension runs its sync core in a greenlet of its own
(``greenlet_spawn``), which hands each driver coroutine to the task that
spawned it (``await_only``). The example service runs that next to bridge's
hub: the API's AsyncSession work, the conductor's sync sessions in
greenthreads. These tests pin what holds, in both hub modes, on SQLite
(aiosqlite; pysqlite in tpool) and PostgreSQL (asyncpg; pg8000 in tpool)
when it is installed:

* side by side: async sessions in tasks and sync sessions in greenthreads
  interleave, and each sees the others' writes;
* ours around theirs: green code awaits SQLAlchemy's coroutines with
  ``bridge.await_``;
* theirs around ours: sync code that SQLAlchemy runs in its greenlet
  (``run_sync``, event hooks) calls green code.

Three cells found bridge bugs, fixed since (each also has a test of the
pattern, without SQLAlchemy, in ``tests/test_greenlet_libraries.py``):
``await_`` ran a task's first step in the calling greenthread (now in the
loop's greenlet, as every later step); a green-blocking call in SQLAlchemy's
greenlet switched to the hub from inside SQLAlchemy's machinery instead of
raising ``BlockingCallError``; inside a portal such a call failed instead of
suspending the task.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import eventlet
import eventlet.tpool
import pytest

import bridge

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("aiosqlite")
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

pytest_plugins = ["example_fixtures"]  # database_url, postgres

BOUND = 30

metadata = sa.MetaData()
rows = sa.Table(
    "rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("writer", sa.String(16), nullable=False),
)


@pytest.fixture
def engines(database_url: str) -> Iterator[tuple[sa.Engine, Callable[[], AsyncEngine]]]:
    """A sync engine (for green code, through tpool) and a factory of async engines
    (one per loop: asyncpg's connections belong to the loop that made them)."""
    from service.store import urls

    sync_url, async_url = urls(database_url, Path("/nonexistent"))
    engine = sa.create_engine(sync_url, connect_args=_connect_args(sync_url))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    yield engine, lambda: create_async_engine(async_url)
    engine.dispose()


def _connect_args(url: Any) -> dict[str, Any]:
    return {"check_same_thread": False} if url.get_backend_name() == "sqlite" else {}


def count(engine: sa.Engine, writer: str) -> int:
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(rows).where(rows.c.writer == writer)
        return int(connection.execute(query).scalar_one())


def green_writes(engine: sa.Engine, n: int) -> int:
    """Legacy code: sync sessions; the C or socket-blocking driver goes to tpool."""

    def write() -> None:
        with engine.begin() as connection:
            connection.execute(rows.insert().values(writer="green"))

    for _ in range(n):
        eventlet.tpool.execute(write)
        eventlet.sleep(0)
    return eventlet.tpool.execute(count, engine, "green")


async def async_writes(engine: AsyncEngine, n: int) -> int:
    """Migrated code: the asyncio extension."""
    for _ in range(n):
        async with engine.begin() as connection:
            await connection.execute(rows.insert().values(writer="async"))
    async with engine.connect() as connection:
        query = sa.select(sa.func.count()).select_from(rows).where(rows.c.writer == "async")
        return int((await connection.execute(query)).scalar_one())


async def deferred(awaitable: Any) -> Any:
    """Start ``awaitable`` after a turn of the loop (one of two starts the tests compare)."""
    await asyncio.sleep(0)
    return await awaitable


def test_async_sessions_and_green_sessions_interleave(
    hub_mode: Callable[..., Any], engines: tuple[sa.Engine, Callable[[], AsyncEngine]]
) -> None:
    sync_engine, make_async = engines

    def scenario() -> tuple[list[int], list[int]]:
        async_engine = make_async()
        tasks = [bridge.spawn_async(async_writes, async_engine, 10) for _ in range(4)]
        greens = [eventlet.spawn(green_writes, sync_engine, 10) for _ in range(4)]
        with eventlet.Timeout(BOUND):
            seen_async = [task.wait() for task in tasks]
            seen_green = [gt.wait() for gt in greens]
        bridge.await_(async_engine.dispose())
        return seen_async, seen_green

    seen_async, seen_green = hub_mode(scenario)
    assert count(sync_engine, "async") == 40 and count(sync_engine, "green") == 40
    # Each writer saw its own writes, and the last of each saw them all.
    assert max(seen_async) == 40 and max(seen_green) == 40


# -- across the two bridges: each cell in a fresh process --------------------------
#
# A failing cell can leave the interpreter's greenlet state corrupt (bug 1
# made pytest's own traceback formatting fail afterwards), so each runs in a
# child process: ``python tests/test_example_sqlalchemy.py CELL MODE URL``.


def _green_awaits(make_async: Callable[[], AsyncEngine], start: str) -> Any:
    """Ours around theirs: green code (a greenthread, as the conductor's workers
    are) does ``bridge.await_(coro)`` where ``coro`` enters ``greenlet_spawn``."""

    def legacy() -> int:
        engine = make_async()
        try:
            work = async_writes(engine, 3)
            return bridge.await_(deferred(work) if start == "deferred" else work)
        finally:
            bridge.await_(engine.dispose())

    return eventlet.spawn(legacy).wait()


def _sleep_in_sqlalchemy_greenlet(connection: Any) -> str:
    eventlet.sleep(0.001)  # green-blocking, inside SQLAlchemy's greenlet
    connection.execute(rows.insert().values(writer="hook"))
    return "blocked green, inside run_sync"


def _theirs_around_ours(make_async: Callable[[], AsyncEngine], portal: bool) -> Any:
    """Theirs around ours: sync code that SQLAlchemy runs in its greenlet blocks green."""

    async def migrated() -> str:
        engine = make_async()
        try:
            async with engine.begin() as connection:
                return str(await connection.run_sync(_sleep_in_sqlalchemy_greenlet))
        finally:
            await engine.dispose()

    return bridge.await_(bridge.portal(migrated)() if portal else migrated())


CELLS: dict[str, Callable[[Callable[[], AsyncEngine]], Any]] = {
    "await-deferred": lambda make: _green_awaits(make, "deferred"),
    "await-eager": lambda make: _green_awaits(make, "eager"),
    "run_sync-no-portal": lambda make: _theirs_around_ours(make, portal=False),
    "run_sync-portal": lambda make: _theirs_around_ours(make, portal=True),
}


def _child(cell: str, mode: str, url: str) -> None:
    from service.store import urls

    sync_url, async_url = urls(url, Path("/nonexistent"))
    engine = sa.create_engine(sync_url)
    metadata.drop_all(engine)
    metadata.create_all(engine)

    def scenario() -> Any:
        return CELLS[cell](lambda: create_async_engine(async_url))

    async def guest() -> Any:
        return await asyncio.wait_for(eventlet.spawn(scenario), BOUND)

    try:
        result = scenario() if mode == "owner" else asyncio.run(guest())
    except BaseException as exc:
        print(f"RAISED {type(exc).__name__}: {exc}".splitlines()[0])
    else:
        print(f"RETURNED {result!r} hooks={count(engine, 'hook')} async={count(engine, 'async')}")


def run_cell(cell: str, mode: str, url: str) -> str:
    result = subprocess.run(
        [sys.executable, __file__, cell, mode, url],
        capture_output=True,
        text=True,
        timeout=BOUND,
        env={**os.environ, "EVENTLET_HUB": "bridge.hub", "PYTHONWARNINGS": "ignore"},
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(("RAISED", "RETURNED"))]
    assert lines, f"the child printed no outcome:\n{result.stdout}\n{result.stderr}"
    return lines[-1]


@pytest.mark.parametrize("mode", ["owner", "guest"])
@pytest.mark.parametrize("start", ["deferred", "eager"])
def test_green_code_awaits_sqlalchemy_coroutines(database_url: str, mode: str, start: str) -> None:
    assert run_cell(f"await-{start}", mode, database_url) == "RETURNED 3 hooks=0 async=3"


@pytest.mark.parametrize("mode", ["owner", "guest"])
def test_green_blocking_inside_sqlalchemy_greenlet_is_refused_clearly(
    database_url: str, mode: str
) -> None:
    """No portal: a green-blocking call in sync code that SQLAlchemy runs on the
    loop raises BlockingCallError (naming the portal), as anywhere on the loop."""
    outcome = run_cell("run_sync-no-portal", mode, database_url)
    assert outcome.startswith("RAISED BlockingCallError") and "portal" in outcome, outcome


@pytest.mark.parametrize("mode", ["owner", "guest"])
def test_portal_lets_sync_code_in_sqlalchemy_greenlet_block_green(
    database_url: str, mode: str
) -> None:
    """In a ``@bridge.portal`` coroutine, legacy sync code under ``run_sync`` may block green."""
    outcome = run_cell("run_sync-portal", mode, database_url)
    assert outcome == "RETURNED 'blocked green, inside run_sync' hooks=1 async=0", outcome


if __name__ == "__main__":
    _child(*sys.argv[1:4])
