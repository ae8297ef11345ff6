"""Running the children of ``bench/alternatives.py`` and watching them through /proc.

One HTTP measurement (:func:`run_http`) starts a server (``alt_server.py``), waits for its
``READY`` line, reads its idle RSS, starts the load generator (``alt_load.py``) and, while
it runs, samples the server's ``/proc/<pid>/status`` every 50 ms (peak RSS and thread
count). At the load generator's ``WINDOW_START`` and ``WINDOW_END`` lines it reads the CPU
time of the server, the backend and the load generator, so the table can give the
server's CPU per request and show that the backend was never the bottleneck. The server
is killed at the end (SIGKILL: nothing it does at exit is measured).

One conductor measurement (:func:`run_conductor`) runs ``alt_conductor.py`` with the same
sampling. Every child is bounded in time; a child that fails, hangs or prints no result
gives an error string instead of a result dict. Linux only (/proc).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CLOCK_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
Outcome = dict[str, Any] | str  # a result, or what went wrong


def child_env(hub: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("EVENTLET_HUB", None)
    if hub:
        env["EVENTLET_HUB"] = hub
    # The checkout's bridge, even where the venv holds another install.
    paths = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    return env


# --------------------------------------------------------------------------- /proc


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS``/``VmHWM`` in bytes and ``Threads`` of ``pid`` ({} once it is gone)."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    values[name] = int(rest.split()[0]) * 1024
                elif name == "Threads":
                    values[name] = int(rest)
    except (OSError, ValueError):
        return {}
    return values


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` (all its threads), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped because an accept queue was full.

    Machine-wide (every process, other agents' too), so only a hint: a run whose count
    grew may have had connects retried after a dropped SYN (1 s, then 3 s).
    """
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split(), values.split(), strict=False))
            return int(table.get("ListenOverflows", 0))
    return None


class Sampler:
    """Polls a process's status every ``interval`` s in a thread; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.peak_threads = 0
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{pid}", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def sample(self) -> None:
        status = proc_status(self.pid)
        self.peak_threads = max(self.peak_threads, status.get("Threads", 0))
        self.peak_rss = max(self.peak_rss, status.get("VmHWM", 0), status.get("VmRSS", 0))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


# --------------------------------------------------------------------------- children


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    lines = [ln.strip() for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-2:])[-300:] if lines else "no output"


def _wait_ready(proc: subprocess.Popen[bytes], out: IO[bytes], err: IO[bytes], what: str) -> int:
    """The port from the child's ``READY <port>`` line; raises RuntimeError if none comes."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out.seek(0)
        for line in out.read().splitlines():
            if line.startswith(b"READY "):
                return int(line.split()[1])
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {_tail(err)}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} printed no READY line within 30 s: {_tail(err)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@dataclass
class Backend:
    """The running backend process (``alt_backend.py``)."""

    proc: subprocess.Popen[bytes]
    port: int


@contextmanager
def backend(delay: float) -> Iterator[Backend]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        command = [sys.executable, str(BENCH_DIR / "alt_backend.py"), "--delay", str(delay)]
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=child_env(None))
        try:
            yield Backend(proc, _wait_ready(proc, out, err, "the backend"))
            if proc.poll() is not None:
                raise RuntimeError(f"the backend died during the run: {_tail(err)}")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    _stop(proc)


def _read_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def run_http(
    server_args: list[str],
    hub: str | None,
    clients: int,
    timing: dict[str, float],
    back: Backend,
) -> Outcome:
    """One server under one load; the merged result of the load generator and /proc."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        command = [sys.executable, str(BENCH_DIR / "alt_server.py"), *server_args]
        server = subprocess.Popen(command, stdout=out, stderr=err, env=child_env(hub))
        try:
            port = _wait_ready(server, out, err, "the server")
            return _load(server, port, clients, timing, back, err)
        except RuntimeError as exc:
            return str(exc)
        finally:
            _stop(server)


def _load(
    server: subprocess.Popen[bytes],
    port: int,
    clients: int,
    timing: dict[str, float],
    back: Backend,
    server_err: IO[bytes],
) -> Outcome:
    time.sleep(0.2)  # let the server settle after READY before reading its idle RSS
    idle = proc_status(server.pid)
    loadavg = os.getloadavg()[0]  # the machine is shared: how busy it was, for the report
    overflows = listen_overflows()
    command = [sys.executable, str(BENCH_DIR / "alt_load.py"), "--port", str(port)]
    command += ["--clients", str(clients)]
    for name in ("warmup", "duration", "timeout", "connect_phase"):
        command += [f"--{name.replace('_', '-')}", str(timing[name])]
    limit = timing["connect_phase"] + timing["warmup"] + timing["duration"] + 30
    marks: dict[str, dict[str, float | None]] = {}
    result: dict[str, Any] | None = None
    with Sampler(server.pid) as sampler, tempfile.TemporaryFile() as err:
        load = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, text=True, env=child_env(None)
        )
        assert load.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_read_lines, args=(load.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + limit
        try:
            while (line := lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
                if line in ("WINDOW_START", "WINDOW_END"):
                    pids = {"server": server.pid, "backend": back.proc.pid, "load": load.pid}
                    marks[line] = {name: cpu_seconds(pid) for name, pid in pids.items()}
                elif line.startswith("LOAD_RESULT "):
                    result = json.loads(line[len("LOAD_RESULT ") :])
            load.wait(timeout=10)
        except (queue.Empty, subprocess.TimeoutExpired):
            load.kill()
            load.wait()
            return f"the load generator did not finish within {limit:g} s"
        if load.returncode != 0 or result is None:
            return f"the load generator exited with {load.returncode}: {_tail(err)}"
    if server.poll() is not None:
        return f"the server died under load (exit {server.returncode}): {_tail(server_err)}"
    final = proc_status(server.pid)
    result["rss_idle"] = idle.get("VmRSS")
    result["loadavg"] = loadavg
    result["rss_peak"] = max(final.get("VmHWM", 0), sampler.peak_rss)
    result["threads_peak"] = sampler.peak_threads
    after = listen_overflows()
    result["listen_overflows"] = None if None in (overflows, after) else after - overflows  # type: ignore[operator]
    start, end = marks.get("WINDOW_START", {}), marks.get("WINDOW_END", {})
    for name in ("server", "backend", "load"):
        a, b = start.get(name), end.get(name)
        result[f"{name}_cpu"] = None if a is None or b is None else b - a
    return result


def run_conductor(arguments: list[str], hub: str | None, timeout: float) -> Outcome:
    """One conductor workload in a fresh process; its result plus the sampled peaks."""
    command = [sys.executable, str(BENCH_DIR / "alt_conductor.py"), *arguments]
    loadavg = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=child_env(hub))
        with Sampler(proc.pid) as sampler:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _stop(proc)
                return f"timeout after {timeout:g} s"
        if proc.returncode != 0:
            return f"exit {proc.returncode}: {_tail(err)}"
        out.seek(0)
        for line in reversed(out.read().decode(errors="replace").splitlines()):
            if line.startswith("CONDUCTOR_RESULT "):
                result: dict[str, Any] = json.loads(line[len("CONDUCTOR_RESULT ") :])
                result["threads_peak"] = max(result["threads_end"], sampler.peak_threads)
                result["loadavg"] = loadavg
                return result
        return f"no result: {_tail(err)}"
