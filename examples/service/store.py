"""The store: nodes, jobs and the log of their effects, through SQLAlchemy in both worlds.

As oslo.db does for the legacy parts, and as a migrated service would for the new:

* :class:`SyncStore` -- sync engine and sessions, for green code (the
  conductor, the v1 WSGI app). A pure-Python driver (pg8000, the PyMySQL of
  PostgreSQL) goes green under ``eventlet.monkey_patch()``: its socket waits
  suspend only the calling greenthread, so it is called directly. A C driver
  (sqlite3), or any driver in a process that is not monkey-patched, would
  block the loop; its calls go to eventlet's ``tpool`` (real threads), as
  oslo.db's ``use_tpool`` option does.
* :class:`AsyncStore` -- SQLAlchemy's asyncio extension (aiosqlite,
  asyncpg), for the migrated API. It runs its sync core in greenlets of its
  own (``greenlet_spawn``/``await_only``), beside bridge's hub.

SQLite (a file, WAL) is the embedded default; PostgreSQL is used with a
``postgresql://`` URL (whatever driver it names, the sync side uses pg8000 and
the async side asyncpg). Every write transaction of SQLite starts with
``BEGIN IMMEDIATE``: it takes the write lock first (waiting up to the busy
timeout), so that two processes never deadlock upgrading a read lock.

SQLite has one writer at a time, and a writer that finds the file locked
polls for it (sleeping 1 to 100 ms between tries): a dozen writers of one
process competing that way spend most of their time asleep. So within a
process, writers queue on one :class:`bridge.Lock` first -- green code with
``with lock.green``, async code with ``async with lock``: the same FIFO for
the conductor's greenthreads and the API's tasks. Only processes compete
through SQLite's own locking. (Measured on the 2-core machine, ``make demo``:
94 requests/s and a p99 of 5.2 s without the lock.)

Tables:

* ``nodes`` -- enrolled nodes and their power state as last recorded;
* ``jobs`` -- every job the API accepted: ``accepted`` (stored on the bus),
  ``running`` (a conductor took it; ``attempts`` counts deliveries), then
  ``done`` or ``failed``; ``rejected`` if the bus did not store it (the
  client got 503, not 202);
* ``transitions`` -- the effect log: one row each time a job's outcome is
  recorded. The conductor records an outcome only by moving the job from
  ``running`` to ``done``/``failed`` in the same transaction, so a
  redelivered job cannot be recorded twice; the fault tests count these rows
  to prove it (exactly one per accepted job).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import bridge

T = TypeVar("T")

_sqlite_writers: bridge.Lock | None = None


def _writers_lock() -> bridge.Lock:
    """The process's queue of SQLite writers, shared by both worlds."""
    global _sqlite_writers
    if _sqlite_writers is None:
        _sqlite_writers = bridge.Lock()
    return _sqlite_writers


# What a node may be called: it goes in URLs, in the BMC protocol's words and in the store.
NODE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
FINISHED = ("done", "failed")
OPEN = ("accepted", "running")
BUSY_TIMEOUT = 30.0  # seconds SQLite waits for a lock before "database is locked"

metadata = sa.MetaData()
nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("power", sa.String(3), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("node", sa.String(63), nullable=False),
    sa.Column("state", sa.String(3), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("conductor", sa.String(64), nullable=False, default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("jobs_node_status", "node", "status"),
)
transitions = sa.Table(
    "transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(32), nullable=False, index=True),
    sa.Column("node", sa.String(63), nullable=False),
    sa.Column("outcome", sa.String(8), nullable=False),
    sa.Column("power", sa.String(3), nullable=False),
    sa.Column("conductor", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)


class StoreUnavailable(Exception):
    """The database could not be used just now (locked, restarting, unreachable)."""


def urls(store: str, state_dir: Path) -> tuple[URL, URL]:
    """The sync and async SQLAlchemy URLs for ``--store`` (empty: SQLite in ``state_dir``).

    :raises ValueError: neither SQLite nor PostgreSQL.
    """
    if not store:
        state_dir.mkdir(parents=True, exist_ok=True)
        store = f"sqlite:///{state_dir / 'service.db'}"
    url = make_url(store)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ValueError("the store must be a SQLite file that every process can open")
        return url.set(drivername="sqlite"), url.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        return url.set(drivername="postgresql+pg8000"), url.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported store {backend!r}: use a sqlite:/// or postgresql:// URL")


def _sqlite_tuning(engine: Engine, immediate: bool) -> None:
    """SQLite: WAL, a busy timeout, and our own BEGIN (pysqlite's is off)."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" emits BEGIN below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # WAL: durable across process crashes
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _engine_options(url: URL, pool_size: int) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        return {
            "connect_args": {"timeout": BUSY_TIMEOUT, "check_same_thread": False},
            "pool_size": pool_size,
        }
    return {"pool_pre_ping": True, "pool_size": pool_size, "pool_recycle": 600}


# PostgreSQL's SQLSTATE class 57 (operator intervention: starting up,
# shutting down, crash recovery) and 08 (connection exceptions): the server
# will be back. pg8000 reports them as ProgrammingError, with the code in
# the message's 'C' field.
_UNAVAILABLE_SQLSTATE = ("57", "08")


def unavailable(exc: Exception) -> bool:
    """Whether ``exc`` means "the database is not usable just now" (retry later)."""
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        detail = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        code = detail.get("C", "") if isinstance(detail, dict) else ""
        if code.startswith(_UNAVAILABLE_SQLSTATE):
            return True
    return isinstance(exc, (OSError, ConnectionError))


def _create_schema(connection: Connection, seed_nodes: int = 0) -> None:
    """Create the tables if missing; enroll ``node-0``... when they were just created."""
    if connection.dialect.name == "postgresql":
        # Processes start together: one creates the tables, the others wait and find them.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(20250710)"))
    existed = sa.inspect(connection).has_table("nodes")
    metadata.create_all(connection, checkfirst=True)
    if not existed and seed_nodes:
        now = time.time()
        connection.execute(
            nodes.insert(),
            [{"name": f"node-{i}", "power": "off", "created_at": now} for i in range(seed_nodes)],
        )


# -- the green side ----------------------------------------------------------------


class SyncStore:
    """The store for green code: sync SQLAlchemy, called inline or in tpool."""

    def __init__(self, url: URL, pool_size: int = 16) -> None:
        import eventlet.patcher

        self.engine = sa.create_engine(url, **_engine_options(url, pool_size))
        self.writers: bridge.Lock | None = None
        if url.get_backend_name() == "sqlite":
            _sqlite_tuning(self.engine, immediate=True)
            self.writers = _writers_lock()
        # Whether the driver's calls suspend only the calling greenthread.
        self.green = url.get_driver_name() == "pg8000" and eventlet.patcher.is_monkey_patched(
            "socket"
        )

    def call(self, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
        """Run ``fn(*args)`` where it does not block the loop: inline if the
        driver is green, else in a tpool thread. A ``write`` to SQLite waits
        for the process's other writers first.

        :raises StoreUnavailable: the database could not be used.
        """
        import eventlet.tpool

        try:
            with self.writers.green if write and self.writers else contextlib.nullcontext():
                return fn(*args) if self.green else eventlet.tpool.execute(fn, *args)
        except SQLAlchemyError as exc:
            if unavailable(exc):
                raise StoreUnavailable(f"{type(exc.__cause__ or exc).__name__}: {exc}") from exc
            raise
        except OSError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def ensure_schema(self) -> None:
        def create() -> None:
            with self.engine.begin() as connection:
                _create_schema(connection)

        self.call(create, write=True)

    def start_job(self, job_id: str, conductor: str) -> dict[str, Any] | None:
        """Mark a job ``running`` by ``conductor`` (one more attempt); return it,
        or None if it is finished already (a redelivery) or unknown."""

        def start() -> dict[str, Any] | None:
            with self.engine.begin() as connection:
                moved = connection.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id, jobs.c.status.in_(OPEN))
                    .values(
                        status="running",
                        attempts=jobs.c.attempts + 1,
                        conductor=conductor,
                        updated_at=time.time(),
                    )
                ).rowcount
                if not moved:
                    return None
                row = connection.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
                return dict(row._mapping)

        return self.call(start, write=True)

    def finish_job(
        self, job_id: str, node: str, outcome: str, power: str, error: str, conductor: str
    ) -> str | None:
        """Record a job's outcome, once: the job moves from ``running`` to ``outcome``,
        the node's power is set, and one ``transitions`` row is written, in one
        transaction. Return the outcome recorded (``failed`` if the node was
        deleted meanwhile), or None if the job was recorded already (a
        redelivered job that another attempt finished: nothing is written).
        """

        def finish() -> str | None:
            nonlocal outcome, error
            now = time.time()
            with self.engine.begin() as connection:
                # The write comes first: SQLite's write lock is taken at BEGIN,
                # PostgreSQL locks the job's row here until commit.
                moved = connection.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id, jobs.c.status == "running")
                    .values(status=outcome, error=error, updated_at=now)
                ).rowcount
                if not moved:
                    return None
                if outcome == "done":
                    found = connection.execute(
                        nodes.update().where(nodes.c.name == node).values(power=power)
                    ).rowcount
                    if not found:
                        outcome, error = "failed", f"node {node} was deleted while the job ran"
                        connection.execute(
                            jobs.update()
                            .where(jobs.c.id == job_id)
                            .values(status=outcome, error=error)
                        )
                connection.execute(
                    transitions.insert().values(
                        job=job_id,
                        node=node,
                        outcome=outcome,
                        power=power,
                        conductor=conductor,
                        at=now,
                    )
                )
                return outcome

        return self.call(finish, write=True)

    def get_node(self, name: str) -> dict[str, Any] | None:
        def get() -> dict[str, Any] | None:
            with self.engine.connect() as connection:
                row = connection.execute(sa.select(nodes).where(nodes.c.name == name)).first()
                return None if row is None else dict(row._mapping)

        return self.call(get)

    def close(self) -> None:
        self.call(self.engine.dispose)


# -- the async side ----------------------------------------------------------------


class AsyncStore:
    """The store for async code: SQLAlchemy's asyncio extension."""

    def __init__(self, url: URL, pool_size: int = 10) -> None:
        options = _engine_options(url, pool_size)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        self.reader: AsyncEngine = self.engine
        self.writers: bridge.Lock | None = None
        if url.get_backend_name() == "sqlite":
            self.writers = _writers_lock()
            _sqlite_tuning(self.engine.sync_engine, immediate=True)
            # Reads need no write lock: a second engine begins them deferred.
            self.reader = create_async_engine(url, **options)
            _sqlite_tuning(self.reader.sync_engine, immediate=False)

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with contextlib.AsyncExitStack() as stack:
            if self.writers is not None:
                await stack.enter_async_context(self.writers)
            await stack.enter_async_context(_mapped_errors())
            yield await stack.enter_async_context(self.engine.begin())

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with _mapped_errors(), self.reader.connect() as connection:
            yield connection

    async def ensure_schema(self, seed_nodes: int = 0) -> None:
        async with self._write() as connection:
            await connection.run_sync(_create_schema, seed_nodes)

    async def create_node(self, name: str) -> dict[str, Any] | None:
        """Enroll a node; None if one has that name already."""
        row = {"name": name, "power": "off", "created_at": time.time()}
        try:
            async with self._write() as connection:
                await connection.execute(nodes.insert().values(**row))
        except IntegrityError:
            return None
        return row

    async def get_node(self, name: str) -> dict[str, Any] | None:
        async with self._read() as connection:
            result = await connection.execute(sa.select(nodes).where(nodes.c.name == name))
            row = result.first()
        return None if row is None else dict(row._mapping)

    async def list_nodes(self, limit: int, after: str) -> list[dict[str, Any]]:
        query = sa.select(nodes).where(nodes.c.name > after).order_by(nodes.c.name).limit(limit)
        async with self._read() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

    async def delete_node(self, name: str) -> str:
        """``deleted``, ``missing``, or ``busy`` (it has jobs not finished)."""
        open_jobs = sa.select(jobs.c.id).where(jobs.c.node == name, jobs.c.status.in_(OPEN))
        async with self._write() as connection:
            result = await connection.execute(
                nodes.delete().where(nodes.c.name == name, ~open_jobs.exists())
            )
            if result.rowcount:
                return "deleted"
            found = await connection.execute(sa.select(nodes.c.name).where(nodes.c.name == name))
            return "busy" if found.first() is not None else "missing"

    async def accept_job(self, job: dict[str, Any]) -> bool:
        """Record a new job as ``accepted``, if its node exists (False if not)."""
        now = time.time()
        values = sa.select(
            sa.literal(job["job"]),
            sa.literal(job["node"]),
            sa.literal(job["state"]),
            sa.literal("accepted"),
            sa.literal(""),
            sa.literal(0),
            sa.literal(""),
            sa.literal(now),
            sa.literal(now),
        ).where(sa.select(nodes.c.name).where(nodes.c.name == job["node"]).exists())
        columns = ["id", "node", "state", "status", "error", "attempts", "conductor"]
        columns += ["created_at", "updated_at"]
        async with self._write() as connection:
            result = await connection.execute(jobs.insert().from_select(columns, values))
            return bool(result.rowcount)

    async def reject_job(self, job_id: str, error: str) -> bool:
        """Mark a job the bus did not store ``rejected``; False if a conductor has it
        (the bus stored it after all)."""
        async with self._write() as connection:
            result = await connection.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.status == "accepted")
                .values(status="rejected", error=error, updated_at=time.time())
            )
            return bool(result.rowcount)

    async def get_job(self, job_id: str) -> dict[str, Any] | None:
        async with self._read() as connection:
            result = await connection.execute(sa.select(jobs).where(jobs.c.id == job_id))
            row = result.first()
        return None if row is None else dict(row._mapping)

    async def close(self) -> None:
        await self.engine.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()


@contextlib.asynccontextmanager
async def _mapped_errors() -> AsyncIterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        if unavailable(exc):
            raise StoreUnavailable(f"{type(exc.__cause__ or exc).__name__}: {exc}") from exc
        raise
    except OSError as exc:
        raise StoreUnavailable(str(exc)) from exc


def job_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A job as the API shows it."""
    return {
        "job": row["id"],
        "node": row["node"],
        "state": row["state"],
        "status": row["status"],
        "error": row["error"],
        "attempts": row["attempts"],
        "conductor": row["conductor"],
    }
