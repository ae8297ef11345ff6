"""``make demo-cluster``: the service as many processes, on a real bus and a real database.

    python examples/cluster.py [--apis 2] [--conductors 2] [--store URL] [--duration 10]

Starts one nats-server (JetStream), the simulated BMC rack, 2 API processes
sharing one port (SO_REUSEPORT: the kernel spreads connections over them)
and 2 conductor processes, all on 127.0.0.1, with a SQLite file as the
store unless ``--store`` names a database (``postgresql://...``). Then it
loads the cluster with ``loadgen.py``, and halfway through sends SIGTERM to
one API process and one conductor and starts fresh ones: a rolling restart
under load. At the end it stops every process and checks, from the store,
that every job the API accepted took effect exactly once. ``--keep`` leaves
the cluster running for you (curl, loadgen.py) until Ctrl-C.

The classes here (:class:`Cluster`, :class:`Postgres`, :func:`audit`) are
also what the tests and the benchmarks start clusters with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from service.natsd import NatsServer  # noqa: E402

SERVICE = HERE / "run_service.py"
BOUND = 60.0  # seconds: the bound on every wait for a process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """One process of the service, started by :meth:`start`; its first line says it is ready."""

    def __init__(self, role: str, name: str, args: Sequence[str], log_dir: Path) -> None:
        self.role = role
        self.name = name
        self.args = list(args)
        self.log_path = log_dir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.first_line = ""
        self.output: list[str] = []
        self.stats: list[dict[str, Any]] = []  # its "stats {json}" lines (--stats-interval)
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> ServiceProcess:
        with open(self.log_path, "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SERVICE),
                f"--role={self.role}",
                f"--name={self.name}",
                *self.args,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), BOUND)
        self.first_line = line.decode().strip()
        if "listening" not in self.first_line and "ready" not in self.first_line:
            code = await asyncio.wait_for(self.process.wait(), BOUND)
            raise RuntimeError(
                f"{self.name} did not start (exit status {code}): "
                f"{self.first_line!r}\n{self.log_tail()}"
            )
        self._reader = asyncio.create_task(self._read(self.process.stdout))
        return self

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        while line := await stdout.readline():
            text = line.decode().rstrip()
            if text.startswith("stats {"):
                self.stats.append(json.loads(text[6:]))
            else:
                self.output.append(text)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM: the graceful stop); return the exit status."""
        assert self.process is not None
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.process.wait(), BOUND)
        except asyncio.TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, BOUND)
        return code

    async def kill(self) -> int:
        return await self.stop(signal.SIGKILL)


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (Debian's ``postgresql`` package).

    initdb into a temporary directory and ``pg_ctl start``; as root, through
    ``runuser -u postgres``, since the server refuses to run as root.
    """

    def __init__(self, root: Path) -> None:
        self.bindir = self.find_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @staticmethod
    def find_bindir() -> Path | None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        if not candidates and (found := shutil.which("initdb")):
            candidates = [Path(found)]
        return candidates[0].parent if candidates else None

    @classmethod
    def available(cls) -> bool:
        if cls.find_bindir() is None:
            return False
        return os.geteuid() != 0 or shutil.which("runuser") is not None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/service"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_postgres, *args], check=True, capture_output=True, timeout=BOUND)

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()
        subprocess.run(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
             "postgres", "-q", "-c", "CREATE DATABASE service"],
            check=True, capture_output=True, timeout=BOUND,
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c max_connections=300"
        )
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "server.log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@dataclasses.dataclass
class Audit:
    """What the store says about every job (see :func:`audit`)."""

    jobs: int = 0
    by_status: dict[str, int] = dataclasses.field(default_factory=dict)
    redelivered: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return not self.problems


def audit(store_url: str, accepted: Iterable[str] = ()) -> Audit:
    """Check from the store that every accepted job took effect exactly once.

    Every job the store has (and every id in ``accepted``: the 202s a client
    got) must be finished (done or failed) with exactly one row in the
    effect log; a job the bus did not store (``rejected``: its client got a
    503) must have none; no effect may belong to an unknown job.
    """
    import sqlalchemy as sa
    from service import store

    sync_url, _ = store.urls(store_url, Path(tempfile.gettempdir()))
    engine = sa.create_engine(sync_url)
    try:
        with engine.connect() as connection:
            jobs = {
                row.id: (row.status, row.attempts)
                for row in connection.execute(
                    sa.select(store.jobs.c.id, store.jobs.c.status, store.jobs.c.attempts)
                )
            }
            effects: dict[str, int] = dict(
                connection.execute(  # type: ignore[arg-type]
                    sa.select(store.transitions.c.job, sa.func.count()).group_by(
                        store.transitions.c.job
                    )
                ).all()
            )
    finally:
        engine.dispose()
    result = Audit(jobs=len(jobs))
    for status, _ in jobs.values():
        result.by_status[status] = result.by_status.get(status, 0) + 1
    result.redelivered = sum(1 for _, attempts in jobs.values() if attempts > 1)
    for job in accepted:
        if job not in jobs:
            result.problems.append(f"job {job} was accepted (202) but is not in the store")
        elif jobs[job][0] == "rejected":
            result.problems.append(f"job {job} was accepted (202) but marked rejected")
    for job, (status, _) in jobs.items():
        count = effects.get(job, 0)
        if status == "rejected":
            if count:
                result.problems.append(f"job {job} was rejected but took effect {count} times")
        elif status not in store.FINISHED:
            result.problems.append(f"job {job} is still {status}")
        elif count != 1:
            result.problems.append(f"job {job} ({status}) took effect {count} times")
    for job in set(effects) - set(jobs):
        result.problems.append(f"an effect of an unknown job {job}")
    return result


async def wait_finished(
    url: str, jobs: Iterable[str], timeout: float = BOUND, concurrency: int = 32
) -> dict[str, str]:
    """Wait (``GET /v2/jobs/<id>?wait=``) until every job finished; job -> status.

    :raises TimeoutError: some job did not finish within ``timeout``.
    """
    import aiohttp

    statuses: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    limit = asyncio.Semaphore(concurrency)

    async def one(session: aiohttp.ClientSession, job: str) -> None:
        async with limit:
            while (left := deadline - time.monotonic()) > 0:
                params = {"wait": f"{min(left, 60):.1f}"}
                try:
                    async with session.get(f"{url}/v2/jobs/{job}", params=params) as response:
                        body = await response.json()
                except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                    await asyncio.sleep(0.05)  # an API process restarting: ask another
                    continue
                if body.get("status") in ("done", "failed"):
                    statuses[job] = body["status"]
                    return
            raise TimeoutError(f"job {job} did not finish within {timeout:g} s")

    timeout_all = aiohttp.ClientTimeout(total=timeout + 5)
    async with aiohttp.ClientSession(timeout=timeout_all) as session:
        await asyncio.gather(*(one(session, job) for job in set(jobs)))
    return statuses


class Cluster:
    """nats-server, the BMC rack, API processes on one port, conductor processes.

    ``async with Cluster(...) as cluster:``; everything is stopped on exit
    (SIGTERM; what does not stop is killed).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        store: str = "",
        apis: int = 2,
        conductors: int = 2,
        options: Sequence[str] = (),
        conductor_options: Sequence[str] = (),
        bmc_delay: float = 0.002,
    ) -> None:
        self.workdir = workdir
        self.store = store or f"sqlite:///{workdir / 'service.db'}"
        self.api_count = apis
        self.conductor_count = conductors
        self.options = list(options)
        self.conductor_options = list(conductor_options)
        self.bmc_delay = bmc_delay
        self.port = free_port()
        self.bus = NatsServer(workdir / "nats")
        self.bmc: ServiceProcess | None = None
        self.apis: list[ServiceProcess] = []
        self.conductors: list[ServiceProcess] = []
        self._serial = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Cluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            await self.bus.start()
            self.bmc = ServiceProcess(
                "bmc", "bmc", ["--port=0", f"--bmc-delay={self.bmc_delay}"], self.workdir
            )
            await self.bmc.start()
            # The first API process makes the schema (and enrolls node-0...) alone.
            await self.start_api()
            await asyncio.gather(
                *(self.start_api() for _ in range(self.api_count - 1)),
                *(self.start_conductor() for _ in range(self.conductor_count)),
            )
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _common(self) -> list[str]:
        assert self.bmc is not None
        bmc_address = self.bmc.first_line.rsplit(" ", 1)[-1]
        return [f"--bus={self.bus.url}", f"--store={self.store}", f"--bmc={bmc_address}"]

    def _name(self, role: str) -> str:
        self._serial += 1
        return f"{role}-{self._serial}"

    async def start_api(self) -> ServiceProcess:
        process = ServiceProcess(
            "api",
            self._name("api"),
            [*self._common(), f"--port={self.port}", "--reuse-port", *self.options],
            self.workdir,
        )
        self.apis.append(process)
        return await process.start()

    async def start_conductor(self) -> ServiceProcess:
        process = ServiceProcess(
            "conductor",
            self._name("conductor"),
            [*self._common(), *self.options, *self.conductor_options],
            self.workdir,
        )
        self.conductors.append(process)
        return await process.start()

    def running(self) -> list[ServiceProcess]:
        return [p for p in [*self.apis, *self.conductors] if p.running]

    async def close(self) -> dict[str, int]:
        """SIGTERM every process (APIs first: they stop taking jobs); their exit statuses."""
        codes: dict[str, int] = {}
        for group in (self.apis, self.conductors, [self.bmc] if self.bmc else []):
            running = [p for p in group if p.running]
            for process, code in zip(
                running, await asyncio.gather(*(p.stop() for p in running)), strict=True
            ):
                codes[process.name] = code
        await self.bus.stop()
        return codes

    def logs(self) -> str:
        parts = []
        for process in [*self.apis, *self.conductors, *([self.bmc] if self.bmc else [])]:
            parts.append(f"--- {process.name} (stdout)\n" + "\n".join(process.output))
            parts.append(f"--- {process.name} (stderr)\n{process.log_tail()}")
        return "\n".join(parts)


# -- make demo-cluster --------------------------------------------------------------


async def demo(args: argparse.Namespace) -> int:
    import loadgen

    workdir = Path(tempfile.mkdtemp(prefix="service-cluster-"))
    async with Cluster(
        workdir, store=args.store, apis=args.apis, conductors=args.conductors
    ) as cluster:
        print(f"bus: {cluster.bus.url} (JetStream in {cluster.bus.store_dir})")
        print(f"store: {cluster.store}")
        for process in cluster.running():
            print(f"{process.name} (pid {process.pid}): {process.first_line}")
        print(f"API on {cluster.url}, {args.apis} processes sharing the port")
        if args.keep:
            print("running; Ctrl-C stops it")
            with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
                await asyncio.Event().wait()
            return 0
        print(f"load: {args.clients} clients for {args.duration:g} s; rolling restart halfway")
        accepted: list[str] = []
        load = asyncio.create_task(
            loadgen.run(cluster.url, args.clients, args.duration, accepted=accepted, retry=True)
        )
        await asyncio.sleep(args.duration / 2)  # the demo's script: halfway through the load
        old_api, old_conductor = cluster.apis[0], cluster.conductors[0]
        codes = await asyncio.gather(old_api.stop(), old_conductor.stop())
        print(f"SIGTERM {old_api.name}: exit {codes[0]}; {' '.join(old_api.output[-2:])}")
        print(f"SIGTERM {old_conductor.name}: exit {codes[1]}; {old_conductor.output[-1]}")
        new = await asyncio.gather(cluster.start_api(), cluster.start_conductor())
        print(f"started {new[0].name} and {new[1].name}")
        summary = await load
        print(f"load generator: {json.dumps(summary)}")
        await wait_finished(cluster.url, accepted, timeout=120)
        codes = await cluster.close()
        for process in [*cluster.apis, *cluster.conductors]:
            if process.output:
                print(f"{process.name}: {process.output[-1]}")
    result = await asyncio.to_thread(audit, cluster.store, accepted)
    print(f"store: {result.jobs} jobs {result.by_status}; {result.redelivered} redelivered")
    good = result.exactly_once and all(code == 0 for code in codes.values()) and accepted
    for problem in result.problems[:10]:
        print(f"PROBLEM: {problem}")
    print(
        f"{len(accepted)} jobs accepted, each took effect exactly once"
        if good
        else "SOMETHING WAS LOST OR DONE TWICE"
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if good else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument("--conductors", type=int, default=2)
    parser.add_argument("--store", default="", help="SQLAlchemy URL; default a SQLite file")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--keep", action="store_true", help="run until Ctrl-C, no load")
    args = parser.parse_args(argv)
    started = time.monotonic()
    status = asyncio.run(demo(args))
    print(f"({time.monotonic() - started:.1f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
