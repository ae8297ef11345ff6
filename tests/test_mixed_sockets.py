"""Sockets of both worlds in one process (issue 8, item 1), and the churn that hunts for more.

Part 1, in this process: minimal reproductions. A green socket closed by a
path the hub never hears of (``makefile`` copies, TLS, ``detach``,
``os.close``, garbage collection) and then asyncio reusing its fd number from
the same greenthread; issue 8's own reproducer (green urllib against
``eventlet.wsgi``, then aiohttp); and what the churn and the soak found
since: a green pipe closed twice wakes the next owner of its fd number; an
``eventlet.Timeout`` that expires before ``await_``'s task has run is lost;
greenthreads that die raising after a wake-up are never freed; children
that uvloop forks on 3.12+ trip the hub's fork handling (a subprocess).

Part 2, one subprocess per hub mode and loop: ``stress/churn.py``, a seeded
random mix of green and asyncio clients and servers (HTTP and raw TCP, TLS,
subprocess pipes, timeouts and cancellations mid-connect, mid-handshake and
mid-read, every close path), every operation checked, and nothing left
behind at the end (fds, epoll and selector registrations, the hub's
listeners and timers, greenthreads, tasks). A subprocess because the loop
policy, the owner loop and the fd table are process-wide, and because a
stale registration on uvloop aborts the process (libuv). ``BRIDGE_CHURN_SEED``
and ``BRIDGE_CHURN_OPS`` change the seed and the number of operations per run.

Part 3: the churn's checks see what they claim to see (faults planted with
``--plant``), and its command line refuses bad input.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import eventlet
import eventlet.event
import eventlet.hubs
import eventlet.wsgi
import pytest
from aiohttp import web
from eventlet.green import socket as green_socket
from eventlet.green import ssl as green_ssl

# In the main greenlet: on CPython 3.13, eventlet 0.41 fails an assertion
# importing threading from a greenthread (on its own hubs too).
from eventlet.green.urllib import request as green_request
from eventlet.greenio import GreenPipe

import bridge

from .conftest import run_guest, run_owner

# /proc/self/fd and /proc/self/fdinfo are the ground truth of these checks.
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the fd checks read Linux's /proc/self"
)

ROOT = Path(__file__).resolve().parent.parent
CHURN = ROOT / "stress" / "churn.py"
BOUND = 10  # seconds: the bound on every wait in part 1
SEED = int(os.environ.get("BRIDGE_CHURN_SEED", "1"))
OPS = int(os.environ.get("BRIDGE_CHURN_OPS", "1500"))
# A churn run that passes takes a few seconds; one that fails stops after 20
# failures, each bounded. The watchdog dumps every stack and ends the child
# well before pytest-timeout would end the whole session.
WATCHDOG = 45
CHILD_BOUND = 52


# --------------------------------------------------------------------------- helpers


def _uvloop_run(main: Any) -> Any:
    uvloop = pytest.importorskip("uvloop")
    return uvloop.run(main)


@pytest.fixture(
    params=[("guest", "asyncio"), ("guest", "uvloop"), ("owner", "asyncio")],
    ids=lambda p: "-".join(p),
)
def mode_loop(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``run(fn)``: ``fn`` in a greenthread under asyncio.run or uvloop.run (guest), or as
    green main on the session's stdlib owner loop. Owner mode on uvloop: part 2."""
    mode, loop_kind = request.param
    if mode == "owner":
        return run_owner
    if loop_kind == "asyncio":
        return run_guest

    def run_guest_uvloop(fn: Callable[..., Any], *args: Any) -> Any:
        async def main() -> Any:
            return await asyncio.wait_for(bridge.to_async(fn)(*args), timeout=30)

        return _uvloop_run(main())

    return run_guest_uvloop


class LoopErrors:
    """What reaches the running loop's exception handler while it is installed."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def install(self) -> None:
        loop = eventlet.hubs.get_hub().loop
        self._loop, self._previous = loop, loop.get_exception_handler()
        loop.set_exception_handler(lambda _, context: self.contexts.append(context))

    def uninstall(self) -> None:
        self._loop.set_exception_handler(self._previous)

    def texts(self) -> list[str]:
        return [f"{c.get('message')}: {c.get('exception')!r}" for c in self.contexts]


def loop_turns(n: int = 5) -> None:
    """Let the hub's loop run ``n`` iterations (deferred unregistrations happen)."""
    for _ in range(n):
        bridge.await_(asyncio.sleep(0))


def stale_selector_keys() -> list[str]:
    """Keys the stdlib loop's selector keeps for fds that are closed (none on uvloop)."""
    selector = getattr(eventlet.hubs.get_hub().loop, "_selector", None)
    if selector is None:
        return []
    open_fds = {int(fd) for fd in os.listdir("/proc/self/fd")}
    return [f"fd {k.fd}: {k.data!r}" for k in selector.get_map().values() if k.fd not in open_fds]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _start_echo() -> tuple[asyncio.AbstractServer, tuple[str, int]]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[:2]


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """cert.pem and key.pem for 127.0.0.1, shared by the churn runs of this module."""
    directory = tmp_path_factory.mktemp("churn-tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(directory)


# --------------------------------------------------------------------------- part 1


def _green_close(path: str, address: tuple[str, int], tls_ctx: Any) -> int:
    """A green client that waits on its fd, then closes by ``path``; returns the fd number."""
    sock: Any = green_socket.create_connection(address)
    fd = sock.fileno()
    if path == "tls_close":
        sock = tls_ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    sock.sendall(b"green")
    with eventlet.Timeout(BOUND):
        if path.startswith("makefile"):
            file = sock.makefile("rb")
            assert file.read1(100) == b"green"
        else:
            assert sock.recv(100) == b"green"  # waits: the hub registered fd for reading
    if path == "makefile_socket_first":
        sock.close()
        file.close()
    elif path == "makefile_file_first":
        file.close()
        sock.close()
    elif path == "detach":
        os.close(sock.detach())
    elif path == "os_close":
        os.close(sock.fileno())
        sock.detach()
    elif path == "tls_close":
        sock.close()
    elif path == "gc":
        file = sock.makefile("rb")
        sock.close()
        del file  # the last reference to the fd goes with the file object
    return fd


async def _asyncio_uses(address: tuple[str, int], how: str) -> tuple[int, bytes]:
    loop = asyncio.get_running_loop()
    if how == "sock_connect":
        sock = socket.socket()
        sock.setblocking(False)
        try:
            fd = sock.fileno()
            await loop.sock_connect(sock, address)
            await loop.sock_sendall(sock, b"async")
            return fd, await loop.sock_recv(sock, 100)
        finally:
            sock.close()
    reader, writer = await asyncio.open_connection(*address)
    try:
        fd = writer.get_extra_info("socket").fileno()
        writer.write(b"async")
        return fd, await reader.read(100)
    finally:
        writer.close()
        await writer.wait_closed()


CLOSE_PATHS = ["makefile_socket_first", "makefile_file_first", "detach", "os_close",
               "tls_close", "gc"]  # fmt: skip


@pytest.mark.parametrize("how", ["sock_connect", "open_connection"])
@pytest.mark.parametrize("path", CLOSE_PATHS)
def test_asyncio_reuses_the_fd_of_a_green_socket_closed_behind_the_hubs_back(
    mode_loop: Callable[..., Any], path: str, how: str, tls_dir: str
) -> None:
    """Issue 8 item 1, reduced: the fd the hub waited on is closed by a path the hub does
    not hear of, and asyncio, from the same greenthread, gets the same fd number at once."""
    errors = LoopErrors()
    client_ctx = green_ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(os.path.join(tls_dir, "cert.pem"))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(os.path.join(tls_dir, "cert.pem"), os.path.join(tls_dir, "key.pem"))

    def scenario() -> tuple[int, int, bytes, list[str], list[str]]:
        errors.install()
        try:
            tls_server = None
            server, address = bridge.await_(_start_echo())
            green_address = address
            if path == "tls_close":

                async def start_tls() -> Any:
                    return await asyncio.start_server(_echo, "127.0.0.1", 0, ssl=server_ctx)

                tls_server = bridge.await_(start_tls())
                green_address = tls_server.sockets[0].getsockname()[:2]
            try:
                gc.collect()
                green_fd = _green_close(path, green_address, client_ctx)
                with eventlet.Timeout(BOUND):
                    async_fd, echoed = bridge.await_(_asyncio_uses(address, how))
                loop_turns()
            finally:
                server.close()
                if tls_server is not None:
                    tls_server.close()
            return green_fd, async_fd, echoed, errors.texts(), stale_selector_keys()
        finally:
            errors.uninstall()

    green_fd, async_fd, echoed, loop_errors, stale = mode_loop(scenario)
    assert async_fd == green_fd, "the scenario needs asyncio to get the green fd's number"
    assert echoed == b"async"
    assert loop_errors == []
    assert stale == []


def test_green_urllib_then_aiohttp_from_one_greenthread(mode_loop: Callable[..., Any]) -> None:
    """Issue 8 item 1, as reported: one green HTTP call, then one aiohttp call."""
    errors = LoopErrors()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "5")])
        return [b"green"]

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="async")

    async def start_aiohttp() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def aiohttp_get(port: int) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as response,
        ):
            return await response.text()

    def scenario() -> tuple[bytes, str, list[str], list[str]]:
        errors.install()
        listener = eventlet.listen(("127.0.0.1", 0))
        server = eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
        runner, port = bridge.await_(start_aiohttp())
        try:
            with eventlet.Timeout(BOUND):
                url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
                with green_request.urlopen(url, timeout=BOUND) as response:
                    green = response.read()
                from_async = bridge.await_(aiohttp_get(port))
            loop_turns()
            return green, from_async, errors.texts(), stale_selector_keys()
        finally:
            bridge.await_(runner.cleanup())
            server.kill()
            listener.close()
            errors.uninstall()

    assert mode_loop(scenario) == (b"green", "async", [], [])


def test_a_green_pipe_closed_twice_does_not_wake_the_next_owner_of_its_fd(
    mode_loop: Callable[..., Any],
) -> None:
    """Found by the churn: ``GreenPipe.close()`` tells the hub "fd closed" again on a second
    call, when the number may belong to another file; the hub then wakes that file's
    waiter with IOClosed (a green recv returns EOF) although nothing happened to it."""

    def scenario() -> tuple[bytes, int, int]:
        r, w = os.pipe()
        os.close(w)
        pipe = GreenPipe(r, "rb", buffering=0)  # unbuffered, as green subprocess pipes are
        pipe_fd = pipe.fileno()
        pipe.close()
        a, b = green_socket.socketpair()  # takes the lowest free number: the pipe's
        try:
            reader = eventlet.spawn(a.recv, 10)
            eventlet.sleep(0)  # the reader waits on its fd
            pipe.close()  # a second close, as `with` after an explicit close() does
            eventlet.sleep(0)
            b.sendall(b"data")
            with eventlet.Timeout(BOUND):
                return reader.wait(), pipe_fd, a.fileno()
        finally:
            a.close()
            b.close()

    data, pipe_fd, reused = mode_loop(scenario)
    assert reused == pipe_fd, "the scenario needs the socket to get the pipe's number"
    assert data == b"data"


def test_a_timeout_that_expires_before_await_s_task_ran_is_raised(
    mode_loop: Callable[..., Any],
) -> None:
    """Found by the churn: ``eventlet.Timeout(0)`` around ``bridge.await_`` hangs when the
    task's first step was not run eagerly (one await_ in 64, and every await_ from green
    main before the owner loop first ran); on uvloop owner mode, ``Timeout(0.001)`` too."""

    async def forever() -> None:
        await asyncio.sleep(3600)

    def scenario() -> int:
        raised = 0
        for _ in range(70):  # more than the eager-start budget of 64
            timeout = eventlet.Timeout(0)
            try:
                with eventlet.Timeout(2, AssertionError("await_ ignored its Timeout")):
                    bridge.await_(forever())
            except eventlet.Timeout as exc:
                assert exc is timeout
                raised += 1
            finally:
                timeout.cancel()
        return raised

    assert mode_loop(scenario) == 70


def test_greenthreads_that_die_raising_after_a_wake_up_are_freed(
    mode_loop: Callable[..., Any],
) -> None:
    """Found by the soak: greenthreads woken by ``Event.send()`` that then die raising
    stayed alive, with everything their frames hold (the soak saw eventlet.wsgi's TLS
    connections stay open that way), about one in eight of them. eventlet's epolls hub
    leaks them the same way (eventlet issue 408: 235 of 2,000 in a standalone run);
    bridge's hub drops the dispatcher's frames from the reported exception."""

    class Held:
        pass

    class Boom(Exception):
        pass

    refs: list[weakref.ref[Held]] = []

    def handler(release: eventlet.event.Event) -> None:
        held = Held()
        refs.append(weakref.ref(held))
        release.wait()
        raise Boom(held)

    def scenario() -> int:
        hub = eventlet.hubs.get_hub()
        printers = hub.squelch_timer_exception, hub.squelch_generic_exception
        hub.squelch_timer_exception = hub.squelch_generic_exception = lambda *a: None
        try:
            for _ in range(30):  # 600 in all: today about one in eight stays
                release = eventlet.event.Event()
                pool = eventlet.GreenPool()
                for _ in range(20):
                    pool.spawn(handler, release)
                eventlet.sleep(0)
                release.send()
                with eventlet.Timeout(BOUND):
                    pool.waitall()
                loop_turns()
        finally:
            hub.squelch_timer_exception, hub.squelch_generic_exception = printers
        del release, pool
        gc.collect()
        return sum(ref() is not None for ref in refs)

    assert mode_loop(scenario) == 0


UVLOOP_CHILD_WHILE_GREEN_WAITS = """
import asyncio, os, subprocess, sys
os.environ["EVENTLET_HUB"] = "bridge.hub"
import eventlet
from eventlet.green import subprocess as green_subprocess
import bridge, uvloop

def green_cat(i):
    proc = green_subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdin.write(b"%d" % i)
    proc.stdin.close()
    with eventlet.Timeout(5, RuntimeError(f"green cat {i}: its EOF never came")):
        out = proc.stdout.read()
        proc.stdout.close()
        proc.wait()
    return out

async def asyncio_cat(i):
    proc = await asyncio.create_subprocess_exec(
        "cat", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    return (await proc.communicate(b"%d" % i))[0]

async def main():
    for i in range(30):
        both = await asyncio.gather(bridge.to_async(green_cat)(i), asyncio_cat(i))
        assert both == [b"%d" % i] * 2, both
    print("all green and asyncio children answered")

uvloop.run(main())
"""


def test_uvloop_children_forked_while_green_fds_wait_leave_the_hub_alone() -> None:
    """Found by the churn on 3.12+: uvloop runs the at-fork hooks in the children it
    spawns; asyncio's own hook (3.12+) clears the running loop there, which the hub takes
    for "the guest loop stopped" and switches to owner mode in the child, then its own
    hook fails (``'NoneType' object has no attribute 'arm'``), and now and then a green
    subprocess's EOF never reaches the parent. Process-wide (fork): in a subprocess."""
    pytest.importorskip("uvloop")
    proc = subprocess.run(
        [sys.executable, "-c", UVLOOP_CHILD_WHILE_GREEN_WAITS],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "Exception ignored" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "all green and asyncio children answered" in proc.stdout


# --------------------------------------------------------------------------- part 2


def _journal_in_flight(journal: Path) -> list[str]:
    """Operations the journal saw start and not end (a crashed or wedged run's suspects)."""
    started: dict[str, str] = {}
    if journal.exists():
        for line in journal.read_text().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "start":
                started[rest.split(" ", 1)[0]] = rest
            else:
                started.pop(rest.split(" ", 1)[0], None)
    return list(started.values())


def run_churn(
    tmp_path: Path, tls_dir: str, *args: str, timeout: float = CHILD_BOUND
) -> tuple[dict[str, Any] | None, str]:
    """Run stress/churn.py; return its JSON report (None if it has none) and a text saying
    everything a failure needs: its own report, or how it died and what was in flight."""
    journal = tmp_path / "journal.txt"
    argv = [sys.executable, str(CHURN), "--tls-dir", tls_dir, "--journal", str(journal),
            "--watchdog", str(WATCHDOG), *args]  # fmt: skip
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        in_flight = "\n  ".join(_journal_in_flight(journal)) or "none"
        return None, (
            f"the churn ran over {timeout}s and was killed: {' '.join(args)}\n"
            f"in flight:\n  {in_flight}\nstdout tail:\n{out[-3000:]}"
        )
    report = None
    for line in proc.stdout.splitlines():
        if line.startswith("CHURN_RESULT "):
            report = json.loads(line[len("CHURN_RESULT ") :])
    text = proc.stdout.split("CHURN_RESULT ")[0].strip()
    if report is None:
        how = f"exit status {proc.returncode}"
        if proc.returncode < 0:
            how = f"signal {signal.Signals(-proc.returncode).name}"
        in_flight = "\n  ".join(_journal_in_flight(journal)) or "none"
        text = (
            f"the churn died ({how}) without a report: python stress/churn.py {' '.join(args)}\n"
            f"operations in flight:\n  {in_flight}\n"
            f"stderr tail:\n{proc.stderr[-4000:]}\nstdout tail:\n{text[-2000:]}"
        )
    return report, text


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@pytest.mark.parametrize("mode", ["owner", "guest"])
def test_churn_of_both_worlds_leaves_nothing_behind(
    mode: str, loop_kind: str, tmp_path: Path, tls_dir: str
) -> None:
    """OPS seeded random operations of both worlds in one process; each one checked; then
    no fd, registration, listener, timer, greenthread or task left, nothing reported to
    the loop's or the hub's error handlers."""
    if loop_kind == "uvloop":
        pytest.importorskip("uvloop")
    args = ["--mode", mode, "--loop", loop_kind, "--seed", str(SEED), "--ops", str(OPS)]
    report, text = run_churn(tmp_path, tls_dir, *args)
    assert report is not None, text
    assert report["failures"] == [] and report["incidents"] == [] and report["leaks"] == [], text
    assert report["ops"] == OPS, text


# --------------------------------------------------------------------------- part 3


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        ("leaked-fd", "LEAK fd "),
        ("stale-registration", "LEAK selector key for CLOSED fd"),
        ("hung-op", "g_never close=close caller=async via=to_async [hung]"),
        ("loop-error", "INCIDENT loop exception handler: Exception in callback"),
    ],
)
def test_the_churn_reports_a_planted_fault(
    planted: str, expected: str, tmp_path: Path, tls_dir: str
) -> None:
    """The checks are not vacuous: each planted fault fails the run, named as it is."""
    report, text = run_churn(tmp_path, tls_dir, "--mode", "owner", "--ops", "0", "--plant", planted)
    assert report is not None, text
    assert expected in text
    assert not (report["failures"] == [] and report["incidents"] == [] and report["leaks"] == [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ops", "-1"], "--ops must be >= 0 and --concurrency >= 1"),
        (["--concurrency", "0"], "--ops must be >= 0 and --concurrency >= 1"),
        (["--mode", "green"], "argument --mode: invalid choice: 'green'"),
        (["--plant", "nothing"], "argument --plant: invalid choice: 'nothing'"),
    ],
)
def test_the_churn_refuses_bad_arguments(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(CHURN), *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert message in proc.stderr
