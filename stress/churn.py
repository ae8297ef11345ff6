"""Mixed-world churn: green and asyncio sockets, TLS, HTTP and pipes in one process.

Usage (one run in this process; the last stdout line is ``CHURN_RESULT <json>``)::

    python stress/churn.py --mode guest --loop uvloop --seed 1 --ops 800
    python stress/churn.py ... --only 17,240 --concurrency 1     # replay some operations

Why this exists
---------------
A service in migration has green and asyncio sockets side by side on one
loop, opened and closed concurrently, by every path Python offers. Issue 8
found that the hub's fd registrations could outlive an fd and collide with
asyncio's own use of the reused fd number; tests written per feature never
saw it. This module looks for that class of bug (fds, registrations,
wake-ups) by *churn*: a seeded random stream of operations from both worlds,
each one checked, and a full leak check at the end.

Who uses it: ``tests/test_mixed_sockets.py`` runs it as a subprocess, once
per hub mode and loop (the loop policy, the hub's owner loop and the fd
table are process-wide, and a hub bug may abort or hang the process:
a subprocess keeps that loud and bounded). ``bench/soak.py`` runs it in
process for minutes (``Churn.run_interval``), sampling after every interval.
It lives in ``stress/``, not in ``tests/`` or ``bench/``, so that neither of
those imports the other: the test runs this file by path, the soak puts this
directory on ``sys.path``.

What one operation is
---------------------
An :class:`Op` names a client (green socket, green ``http.client`` or
``urllib``, a green subprocess pipe; ``asyncio.open_connection``, the loop's
``sock_*`` calls, aiohttp, an asyncio subprocess), a server (green echo,
asyncio echo, ``eventlet.wsgi``, aiohttp; plain or TLS), how the client
closes what it opened (``close``, garbage collection, ``shutdown``,
``detach`` + ``os.close``, ``os.close`` on the raw fd, ``makefile`` copies
closed in either order, TLS ``unwrap``, a pipe's close, ``communicate``...),
the *caller* world that starts it and how it crosses (``await_``,
``to_green``, ``spawn_async``; ``to_async``, ``await greenthread``), and
optionally a disruption: a timeout (``eventlet.Timeout``, a socket timeout,
``asyncio.wait_for``, ``asyncio.timeout``) or a cancellation (``kill`` of the
greenthread, ``cancel`` of the task) *mid-connect* (a listener whose backlog
is full), *mid-handshake* (TLS against a server that never answers) or
*mid-read* (a server that never replies). A *chain* runs a second,
undisrupted operation of the other world from the same greenthread or task
afterwards: issue 8's reproducer is one.

Checked: echoed bytes equal, HTTP status and body equal, the subprocess's
output equal, and a disrupted operation ends with exactly the expected
exception. An operation must never hang (bounded by ``OP_BOUND``).

Checked at the end of a run (:meth:`Churn.leaks`), after the servers stopped:
the fd table equals the one at the start (``/proc/self/fd``); every epoll
instance in the process has the kernel registrations it had at the start
(``/proc/self/fdinfo``); the stdlib loop's selector holds the keys it held
at the start; every fd number used during the run can be registered afresh
with the loop and with the hub and wakes its waiter (a stale registration in
uvloop/libuv shows only that way); the hub has no readers, writers or timers;
no greenthread (other than to_async's parked carriers) and no task is left;
nothing reached the loop's exception handler, the hub's exception printers,
``sys.unraisablehook`` or ``threading.excepthook``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import faulthandler
import gc
import hashlib
import itertools
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

os.environ.setdefault("EVENTLET_HUB", "bridge.hub")
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import aiohttp  # noqa: E402
import eventlet  # noqa: E402
import eventlet.event  # noqa: E402
import eventlet.greenpool  # noqa: E402
import eventlet.greenthread  # noqa: E402
import eventlet.hubs  # noqa: E402
import eventlet.semaphore  # noqa: E402
import eventlet.wsgi  # noqa: E402
import greenlet  # noqa: E402
from aiohttp import web  # noqa: E402
from eventlet.green import socket as green_socket  # noqa: E402
from eventlet.green import ssl as green_ssl  # noqa: E402
from eventlet.green import subprocess as green_subprocess  # noqa: E402

# Imported in the main greenlet: on CPython 3.13, eventlet 0.41 fails an
# assertion importing threading from a greenthread (tests/test_hub.py).
from eventlet.green.http import client as green_http_client  # noqa: E402
from eventlet.green.urllib import request as green_request  # noqa: E402

import bridge  # noqa: E402

RESULT_MARKER = "CHURN_RESULT "
# Every operation ends within this many seconds, or it is reported as hung.
OP_BOUND = 5.0
# Waiting for a batch's operations, or a server's handlers, to finish.
DRAIN_BOUND = OP_BOUND + 10.0
# A run stops scheduling after this many failed operations: the first ones
# are the informative ones, and a broken hub must fail fast.
MAX_FAILURES = 20
# How many incidents and server errors a run keeps the text of (it counts them all).
KEEP = 50
# Biggest payload: an echo client writes it all before reading, so it must
# fit the loopback socket buffers (and a pipe's 64 KiB).
MAX_PAYLOAD = 24 * 1024
CAT = shutil.which("cat") or "/bin/cat"


class Mismatch(AssertionError):
    """An operation completed but its result is wrong."""


class OpHung(Exception):
    """An operation did not end within ``OP_BOUND`` seconds."""


# --------------------------------------------------------------------------- operations


@dataclasses.dataclass(frozen=True)
class Op:
    """One operation of the churn; see the module docstring.

    ``disrupt`` is ``none`` or one of ``eventlet_timeout``, ``sock_timeout``,
    ``kill`` (green callers), ``wait_for``, ``asyncio_timeout``, ``cancel``
    (async callers); ``phase`` says where it hits: ``connect``, ``handshake``
    or ``read``. ``then`` is a chained operation of the other world.
    """

    index: int
    client: str
    server: str = ""
    tls: bool = False
    close: str = "close"
    caller: str = "green"
    via: str = "direct"
    disrupt: str = "none"
    phase: str = ""
    delay: float = 0.0
    size: int = 0
    variant: str = ""
    then: Op | None = None

    @property
    def world(self) -> str:
        return "green" if self.client.startswith("g_") else "async"

    def describe(self) -> str:
        parts = [f"#{self.index} {self.client}"]
        if self.server:
            parts.append(f"->{self.server}{'+tls' if self.tls else ''}")
        if self.variant:
            parts.append(f"[{self.variant}]")
        parts.append(f" close={self.close} caller={self.caller} via={self.via}")
        if self.disrupt != "none":
            parts.append(f" disrupt={self.disrupt}@{self.phase}({self.delay:g}s)")
        if self.size:
            parts.append(f" size={self.size}")
        text = "".join(parts)
        if self.then is not None:
            text += " then " + self.then.describe().split(" ", 1)[1]
        return text


GREEN_CLIENTS = ("g_tcp", "g_http", "g_urllib", "g_subprocess")
ASYNC_CLIENTS = ("a_tcp", "a_sock", "a_http", "a_subprocess")
# Relative frequencies; subprocesses are slow (a fork/exec each), so rarer.
CLIENT_WEIGHTS = {
    "g_tcp": 6,
    "g_http": 3,
    "g_urllib": 3,
    "g_subprocess": 1,
    "a_tcp": 5,
    "a_sock": 4,
    "a_http": 5,
    "a_subprocess": 1,
    "chain": 4,
}
CLOSE_PATHS = {
    "g_tcp": (
        "close",
        "gc",
        "shutdown",
        "detach",
        "os_close",
        "makefile_sock_first",
        "makefile_file_first",
        "unwrap",
    ),
    "a_sock": ("close", "gc", "shutdown", "detach", "os_close"),
    "a_tcp": ("close", "close_nowait", "abort"),
    "g_http": ("close", "gc"),
    "g_urllib": ("close", "gc"),
    "a_http": ("own_session", "shared_session", "shared_session_close_response"),
    "g_subprocess": ("communicate", "close", "gc"),
    "a_subprocess": ("communicate", "close", "transport_close"),
}
ECHO_SERVERS = ("green_echo", "aio_echo")
HTTP_SERVERS = ("wsgi", "aiohttp")


def generate(seed: int) -> Iterator[Op]:
    """The endless, deterministic stream of operations for ``seed``."""
    rng = random.Random(seed)
    clients = list(CLIENT_WEIGHTS)
    weights = list(CLIENT_WEIGHTS.values())
    for index in itertools.count():
        client = rng.choices(clients, weights)[0]
        if client == "chain":
            first_world = rng.choice(("green", "async"))
            if first_world == "green":
                first = _make_op(rng, index, rng.choice(GREEN_CLIENTS[:3]), "green", False)
                second = _make_op(rng, index, rng.choice(ASYNC_CLIENTS[:3]), "green", False)
            else:
                first = _make_op(rng, index, rng.choice(ASYNC_CLIENTS[:3]), "async", False)
                second = _make_op(rng, index, rng.choice(GREEN_CLIENTS[:3]), "async", False)
            yield dataclasses.replace(first, then=second)
        else:
            caller = rng.choice(("green", "async"))
            yield _make_op(rng, index, client, caller, rng.random() < 0.3)


def _make_op(rng: random.Random, index: int, client: str, caller: str, disrupted: bool) -> Op:
    green = client.startswith("g_")
    if caller == ("green" if green else "async"):
        via = "direct"
    elif caller == "green":
        via = rng.choice(("await_", "to_green", "spawn_async"))
    else:
        via = rng.choice(("to_async", "spawn"))
    close = rng.choice(CLOSE_PATHS[client])
    server, tls, variant, size = "", False, "", 0
    if client in ("g_tcp", "a_tcp", "a_sock"):
        server = rng.choice(ECHO_SERVERS)
        tls = client != "a_sock" and rng.random() < 0.35
        variant = "peer_close" if rng.random() < 0.1 else "echo"
    elif client in ("g_http", "g_urllib", "a_http"):
        server = rng.choice(HTTP_SERVERS)
        tls = rng.random() < 0.3
        variant = rng.choice(("get", "get", "post"))
    size = rng.choice((1, rng.randint(1, 2048), rng.randint(1, MAX_PAYLOAD)))
    if close == "unwrap" and (not tls or variant == "peer_close"):
        close = "close"  # nothing to unwrap, or a peer gone without a close_notify
    disrupt, phase, delay = "none", "", 0.0
    if disrupted:
        if client in ("g_subprocess", "a_subprocess"):
            phase = "read"
        else:
            phase = rng.choice(("connect", "read", "read") + (("handshake",) if tls else ()))
        if caller == "green":
            flavors = ["eventlet_timeout", "kill"]
            if via == "direct" and client in ("g_tcp", "g_http", "g_urllib"):
                flavors.append("sock_timeout")
        else:
            flavors = ["wait_for", "asyncio_timeout", "cancel"]
        disrupt = rng.choice(flavors)
        # Sometimes zero: code that computes "what is left of a deadline" passes 0.
        delay = 0.0 if rng.random() < 0.1 else round(rng.uniform(0.001, 0.1), 3)
        if disrupt == "sock_timeout" and delay == 0:
            delay = 0.001  # settimeout(0) would mean non-blocking, not "time out now"
        if close == "unwrap":
            close = "close"  # nothing to unwrap cleanly mid-handshake or mid-read
        if variant == "peer_close":
            variant = "echo"
        if client in ("g_http", "g_urllib", "a_http") and phase == "read":
            variant = rng.choice(("hang", "stream"))
    return Op(
        index=index,
        client=client,
        server=server,
        tls=tls,
        close=close,
        caller=caller,
        via=via,
        disrupt=disrupt,
        phase=phase,
        delay=delay,
        size=size,
        variant=variant,
    )


def payload_for(seed: int, op: Op) -> bytes:
    return random.Random(f"{seed}:{op.index}:{op.client}").randbytes(op.size)


def http_body(n: int, tag: str) -> bytes:
    """What the HTTP servers answer to ``/bytes/{n}/{tag}``; both compute it."""
    block = hashlib.sha256(tag.encode()).hexdigest().encode()
    return (block * (n // len(block) + 1))[:n]


@dataclasses.dataclass
class Outcome:
    op: Op
    ok: bool
    error: str = ""
    detail: str = ""


# --------------------------------------------------------------------------- TLS material


def make_tls_files(directory: str) -> tuple[str, str]:
    """A self-signed certificate for localhost/127.0.0.1 (openssl CLI), reused if present."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    if os.path.exists(cert) and os.path.exists(key):
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError(
            "the churn's TLS operations need a certificate, made with the openssl command, "
            "which is not installed: install openssl, or pass --tls-dir with cert.pem and "
            "key.pem in it"
        )
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


# --------------------------------------------------------------------------- observation


def open_fds() -> dict[int, str]:
    """This process's open fds and what each is (``/proc/self/fd``)."""
    fds: dict[int, str] = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the listing's own fd, closed meanwhile
    return fds


def epoll_registrations(fds: dict[int, str]) -> dict[int, frozenset[tuple[int, str]]]:
    """Each epoll instance's kernel registrations: epoll fd -> {(fd, events)}."""
    result: dict[int, frozenset[tuple[int, str]]] = {}
    for fd, target in fds.items():
        if target != "anon_inode:[eventpoll]":
            continue
        entries = set()
        try:
            with open(f"/proc/self/fdinfo/{fd}") as info:
                for line in info:
                    if line.startswith("tfd:"):
                        fields = line.split()
                        entries.add((int(fields[1]), fields[3]))
        except OSError:
            continue
        result[fd] = frozenset(entries)
    return result


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def live_greenthreads() -> list[Any]:
    """GreenThreads alive now, without to_async's parked carriers (kept by design)."""
    parked = {id(g) for g in bridge._core.slots_of(eventlet.hubs.get_hub()).carriers}
    return [
        g
        for g in gc.get_objects()
        if isinstance(g, eventlet.greenthread.GreenThread)
        and not g.dead
        and id(g) not in parked
        and getattr(g, "job", True) is not None  # a parked carrier not (yet) in the pool
    ]


def _selector_keys(loop: asyncio.AbstractEventLoop) -> dict[int, str] | None:
    selector = getattr(loop, "_selector", None)
    if selector is None:
        return None  # uvloop: checked through epoll_registrations and the reuse probe
    keys = {}
    for key in selector.get_map().values():
        reader, writer = key.data if isinstance(key.data, tuple) else (key.data, None)
        keys[key.fd] = f"events={key.events} reader={reader!r} writer={writer!r}"
    return keys


@dataclasses.dataclass
class Snapshot:
    """The state that must come back to what it was (see :meth:`Churn.leaks`)."""

    fds: dict[int, str]
    epolls: dict[int, frozenset[tuple[int, str]]]
    selector: dict[int, str] | None
    greenthreads: list[str]
    tasks: list[str]
    hub: Any
    rss: int
    greenthread_ids: frozenset[int] = frozenset()
    task_ids: frozenset[int] = frozenset()


# --------------------------------------------------------------------------- the churn


class Churn:
    """One process's churn: servers, the operation driver, observers and checks.

    All methods are green (called from green main in owner mode, or from a
    greenthread that async main awaits in guest mode).
    """

    def __init__(
        self, *, seed: int, mode: str, loop_kind: str, tls_dir: str, concurrency: int = 8
    ) -> None:
        self.seed = seed
        self.mode = mode
        self.loop_kind = loop_kind
        self.concurrency = concurrency
        self.cert, self.key = make_tls_files(tls_dir)
        self.hub = eventlet.hubs.get_hub()
        self.loop = self.hub.loop
        # asyncio's and aiohttp's side
        self.client_ctx = ssl.create_default_context(cafile=self.cert)
        self.server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_ctx.load_cert_chain(self.cert, self.key)
        # the green side
        self.green_client_ctx = green_ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.green_client_ctx.load_verify_locations(self.cert)
        self.green_server_ctx = green_ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.green_server_ctx.load_cert_chain(self.cert, self.key)
        self.failures: list[Outcome] = []
        self.incidents: list[str] = []  # the first KEEP; incident_count counts them all
        self.incident_count = 0
        self.server_log: list[str] = []  # the first KEEP; server_errors counts them all
        self.server_errors = 0
        self.in_flight: dict[int, Op] = {}
        self.fd_high_water = 0
        self.ops_done = 0
        self._servers: _Servers | None = None
        self._observers_installed = False
        self._journal: Any = None
        self.planted: Any = None  # what --plant keeps alive
        # port -> server name, of the servers started last (for leak reports)
        self.server_names: dict[int, str] = {}

    # -- observers ---------------------------------------------------------

    def install_observers(self, journal: str | None = None) -> None:
        """Record everything that would otherwise only be printed, and what is in flight."""
        if self._observers_installed:
            return
        self._observers_installed = True
        if journal:
            self._journal = open(journal, "a", buffering=1)  # closed in close()

        def loop_handler(loop: Any, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            text = context.get("message", "")
            if exc is not None:
                text += ": " + "".join(traceback.format_exception(exc)).strip()
            self.incident("loop exception handler", text)

        self.loop.set_exception_handler(loop_handler)
        for name in ("squelch_exception", "squelch_generic_exception", "squelch_timer_exception"):

            def squelch(*args: Any, _name: str = name) -> None:
                exc_info = args[-1]
                text = "".join(traceback.format_exception(*exc_info)).strip()
                if _server_noise(exc_info[1]):
                    self.log_server_error(text)
                else:  # recorded, and reported with the run (not printed as it happens)
                    self.incident(f"hub.{_name}", text)

            setattr(self.hub, name, squelch)

        def unraisable(info: Any) -> None:
            text = f"{info.err_msg or 'Exception ignored in'}: {info.object!r}: "
            text += "".join(
                traceback.format_exception(info.exc_type, info.exc_value, info.exc_traceback)
            ).strip()
            self.incident("sys.unraisablehook", text)

        sys.unraisablehook = unraisable

        def thread_hook(args: Any) -> None:
            text = "".join(
                traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)
            ).strip()
            self.incident(f"threading.excepthook ({args.thread!r})", text)

        threading.excepthook = thread_hook

    def incident(self, where: str, text: str) -> None:
        self.incident_count += 1
        if len(self.incidents) < KEEP:  # a soak must not grow by its own records
            in_flight = ", ".join(op.describe() for op in self.in_flight.values()) or "none"
            self.incidents.append(f"{where}: {text}\n    operations in flight: {in_flight}")

    def log_server_error(self, text: str) -> None:
        """A server handler's error that is not a finding (see ``_server_noise``)."""
        self.server_errors += 1
        if len(self.server_log) < KEEP:
            self.server_log.append(text)

    def journal(self, line: str) -> None:
        if self._journal is not None:
            self._journal.write(line + "\n")

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # -- servers -----------------------------------------------------------

    def start_servers(self) -> None:
        assert self._servers is None, "servers are already running"
        self._servers = _Servers(self)
        self._servers.start()
        self.server_names = {
            address[1]: f"{name}{'+tls' if tls else ''}"
            for (name, tls), address in self._servers.addresses.items()
        }
        self.server_names[self._servers.blackhole[1]] = "blackhole"

    def stop_servers(self) -> None:
        servers, self._servers = self._servers, None
        if servers is not None:
            servers.stop()

    @property
    def servers(self) -> _Servers:
        if self._servers is None:
            raise RuntimeError("no servers: call start_servers() first")
        return self._servers

    # -- running operations --------------------------------------------------

    def run_ops(self, ops: Iterator[Op], *, until: float | None = None) -> int:
        """Run ``ops`` with ``concurrency`` in flight; return how many ran.

        Stops early at ``until`` (a ``time.monotonic()`` deadline) or after
        ``MAX_FAILURES`` failures. Green; blocks until every started
        operation has finished (or ``DRAIN_BOUND`` passed: then the ones
        left are failures).
        """
        slots = eventlet.semaphore.Semaphore(self.concurrency)
        # Made once every operation is started: running may touch 0 before that.
        idle: eventlet.event.Event | None = None
        running = 0
        started = 0
        keep: set[Any] = set()  # tasks are weakly referenced by their loop

        def finished(outcome: Outcome, handle: Any) -> None:
            nonlocal running
            keep.discard(handle)
            self.record(outcome)
            running -= 1
            slots.release()
            if running == 0 and idle is not None:
                idle.send()

        def green_op(op: Op) -> None:
            outcome = Outcome(op, False, "internal", "the operation's greenthread was killed")
            try:
                outcome = self.run_from_green(op)
            finally:
                finished(outcome, None)

        async def async_op(op: Op) -> None:
            outcome = Outcome(op, False, "internal", "the operation's task was cancelled")
            try:
                outcome = await self.run_from_async(op)
            finally:
                finished(outcome, asyncio.current_task())

        for op in ops:
            slots.acquire()
            out_of_time = until is not None and time.monotonic() > until
            if len(self.failures) >= MAX_FAILURES or out_of_time:
                slots.release()
                break
            running += 1
            started += 1
            self.in_flight[op.index] = op
            self.journal(f"start {op.describe()}")
            if op.caller == "green":
                eventlet.spawn(green_op, op)
            else:
                keep.add(bridge.spawn_async(async_op, op).task)
        if running:
            idle = eventlet.event.Event()
            try:
                with eventlet.Timeout(DRAIN_BOUND):
                    idle.wait()
            except eventlet.Timeout:
                for op in list(self.in_flight.values()):
                    self.record(Outcome(op, False, "hung", f"still running after {DRAIN_BOUND}s"))
        return started

    def record(self, outcome: Outcome) -> None:
        self.in_flight.pop(outcome.op.index, None)
        self.ops_done += 1
        if not outcome.ok:
            self.failures.append(outcome)
        self.journal(f"{'ok' if outcome.ok else 'FAIL'} #{outcome.op.index} {outcome.error}")
        fds = os.listdir("/proc/self/fd")
        self.fd_high_water = max(self.fd_high_water, *(int(fd) for fd in fds))

    # -- one operation, from either world ---------------------------------

    def run_from_green(self, op: Op) -> Outcome:
        """Run ``op`` from a greenthread, its disruption applied green-side."""
        try:
            with eventlet.Timeout(OP_BOUND, OpHung(f"{op.describe()} ran over {OP_BOUND}s")):
                return self._disrupt_from_green(op)
        except OpHung as exc:
            # raised where the operation's greenthread was blocked: that is the finding
            return Outcome(op, False, "hung", _format(exc))
        except Mismatch as exc:
            return Outcome(op, False, "mismatch", _format(exc))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            return Outcome(op, False, "exception", _format(exc))

    def _disrupt_from_green(self, op: Op) -> Outcome:
        if op.disrupt in ("none", "sock_timeout"):
            try:
                self.call_green_side(op, _nothing)
            except TimeoutError as exc:  # socket.timeout too
                if op.disrupt == "sock_timeout":
                    return Outcome(op, True, detail=f"socket timeout: {exc!r}")
                raise
            if op.disrupt == "sock_timeout":
                raise Mismatch("completed despite its socket timeout")
            return Outcome(op, True)
        if op.disrupt == "eventlet_timeout":
            timeout = eventlet.Timeout(op.delay)
            try:
                self.call_green_side(op, _nothing)
            except eventlet.Timeout as exc:
                if exc is not timeout:
                    raise
                return Outcome(op, True, detail="eventlet.Timeout")
            finally:
                timeout.cancel()
            raise Mismatch("completed despite its eventlet.Timeout")
        if op.disrupt == "kill":
            reached = eventlet.event.Event()

            def signal(*_: object) -> None:
                if not reached.ready():
                    reached.send()

            child = eventlet.spawn(self.call_green_side, op, signal)
            child.link(signal)
            try:
                return self._kill_when_reached(op, child, reached)
            except OpHung as exc:
                stack = "".join(traceback.format_stack(child.gr_frame)) if child.gr_frame else ""
                raise OpHung(f"{exc}; the greenthread to kill is at:\n{stack}") from None
            finally:
                if not child.dead:
                    with eventlet.Timeout(OP_BOUND, False):
                        child.kill()
        raise ValueError(f"no green-side disruption {op.disrupt!r}")

    @staticmethod
    def _kill_when_reached(op: Op, child: Any, reached: Any) -> Outcome:
        reached.wait()
        if child.dead:
            child.wait()  # raises what ended it early
            raise Mismatch("completed before it could be killed")
        child.kill()
        try:
            child.wait()
        except greenlet.GreenletExit:
            return Outcome(op, True, detail="killed")
        raise Mismatch("a killed greenthread returned normally")

    async def run_from_async(self, op: Op) -> Outcome:
        """Run ``op`` from a task, its disruption applied async-side."""
        inner = asyncio.ensure_future(self._disrupt_from_async(op))
        done, _ = await asyncio.wait({inner}, timeout=OP_BOUND)
        if not done:
            stack = "".join(traceback.format_list(_task_stack(inner)))
            inner.cancel()
            await asyncio.wait({inner}, timeout=OP_BOUND)
            return Outcome(
                op, False, "hung", f"{op.describe()} ran over {OP_BOUND}s, waiting at:\n{stack}"
            )
        if inner.cancelled():
            return Outcome(op, False, "exception", "the operation's task was cancelled")
        exc = inner.exception()
        if exc is None:
            return inner.result()
        if isinstance(exc, Mismatch):
            return Outcome(op, False, "mismatch", _format(exc))
        return Outcome(op, False, "exception", _format(exc))

    async def _disrupt_from_async(self, op: Op) -> Outcome:
        if op.disrupt == "none":
            await self.call_async_side(op, _nothing)
            return Outcome(op, True)
        if op.disrupt == "wait_for" or (
            op.disrupt == "asyncio_timeout" and not hasattr(asyncio, "timeout")
        ):
            try:
                await asyncio.wait_for(self.call_async_side(op, _nothing), op.delay)
            # 3.10: asyncio's TimeoutError is not the builtin one
            except asyncio.TimeoutError:
                return Outcome(op, True, detail="asyncio.wait_for timed out")
            raise Mismatch("completed despite its asyncio.wait_for timeout")
        if op.disrupt == "asyncio_timeout":
            try:
                async with asyncio.timeout(op.delay):  # type: ignore[attr-defined]
                    await self.call_async_side(op, _nothing)
            except TimeoutError:
                return Outcome(op, True, detail="asyncio.timeout expired")
            raise Mismatch("completed despite its asyncio.timeout")
        if op.disrupt == "cancel":
            reached = asyncio.Event()
            task = asyncio.ensure_future(self.call_async_side(op, lambda: reached.set()))
            signal = asyncio.ensure_future(reached.wait())
            try:
                await asyncio.wait({task, signal}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                signal.cancel()
            if task.done():
                task.result()  # raises what ended it early
                raise Mismatch("completed before it could be cancelled")
            task.cancel()
            await asyncio.wait({task})
            if task.cancelled():
                return Outcome(op, True, detail="cancelled")
            task.result()
            raise Mismatch("a cancelled task returned normally")
        raise ValueError(f"no async-side disruption {op.disrupt!r}")

    def call_green_side(self, op: Op, reached: Callable[[], object]) -> None:
        """In a greenthread: run ``op`` (crossing if it is async), then its chain."""
        self._cross_from_green(op, reached)
        if op.then is not None:
            self._cross_from_green(op.then, _nothing)

    def _cross_from_green(self, op: Op, reached: Callable[[], object]) -> None:
        if op.world == "green":
            GREEN_OPS[op.client](self, op, reached)
        elif op.via in ("await_", "direct"):
            bridge.await_(ASYNC_OPS[op.client](self, op, reached))
        elif op.via == "to_green":
            bridge.to_green(ASYNC_OPS[op.client])(self, op, reached)
        elif op.via == "spawn_async":
            handle = bridge.spawn_async(ASYNC_OPS[op.client], self, op, reached)
            try:
                handle.wait()
            except BaseException:
                handle.kill()  # an interrupted wait() leaves the task running
                raise
        else:
            raise ValueError(f"no green-to-async crossing {op.via!r}")

    async def call_async_side(self, op: Op, reached: Callable[[], object]) -> None:
        """In a task: run ``op`` (crossing if it is green), then its chain."""
        await self._cross_from_async(op, reached)
        if op.then is not None:
            await self._cross_from_async(op.then, _nothing)

    async def _cross_from_async(self, op: Op, reached: Callable[[], object]) -> None:
        if op.world == "async":
            await ASYNC_OPS[op.client](self, op, reached)
        elif op.via in ("to_async", "direct"):
            await bridge.to_async(GREEN_OPS[op.client])(self, op, reached)
        elif op.via == "spawn":
            await eventlet.spawn(GREEN_OPS[op.client], self, op, reached)
        else:
            raise ValueError(f"no async-to-green crossing {op.via!r}")

    # -- targets -------------------------------------------------------------

    def tcp_target(self, op: Op) -> tuple[tuple[str, int], bool, bytes]:
        """Where a TCP client connects, whether it speaks TLS, its first byte."""
        s = self.servers
        if op.phase == "connect":
            return s.blackhole, op.tls, b"E"
        if op.phase == "handshake":
            return s.addresses[op.server, False], True, b""  # a plain server: never answers
        mode = b"H" if op.phase == "read" else (b"C" if op.variant == "peer_close" else b"E")
        return s.addresses[op.server, op.tls], op.tls, mode

    def http_target(self, op: Op) -> tuple[str, tuple[str, int], bool]:
        """``(scheme, address, tls)`` for an HTTP client."""
        s = self.servers
        if op.phase == "connect":
            return ("https" if op.tls else "http"), s.blackhole, op.tls
        if op.phase == "handshake":
            return "https", s.addresses["green_echo", False], True
        return ("https" if op.tls else "http"), s.addresses[op.server, op.tls], op.tls

    def http_request(self, op: Op) -> tuple[str, str, bytes | None, bytes]:
        """``(method, path, body, expected response body)``."""
        if op.variant == "hang":
            return "GET", "/hang", None, b""
        if op.variant == "stream":
            return "GET", f"/stream/{op.size}/{op.index}", None, b""
        if op.variant == "post":
            body = payload_for(self.seed, op)
            return "POST", "/echo", body, body
        return "GET", f"/bytes/{op.size}/{op.index}", None, http_body(op.size, str(op.index))

    # -- end of a run --------------------------------------------------------

    def loop_turns(self, n: int = 5) -> None:
        """Let the loop run ``n`` iterations (lazy closes and flushes happen)."""
        for _ in range(n):
            bridge.await_(asyncio.sleep(0))
        eventlet.sleep(0)

    def snapshot(self) -> Snapshot:
        self.loop_turns()  # handlers released at stop finish, then their cycles go
        gc.collect()
        self.loop_turns()  # what closing those objects scheduled runs
        fds = open_fds()
        greenthreads = live_greenthreads()
        current = asyncio.current_task(self.loop) if self.mode == "guest" else None
        tasks = [t for t in asyncio.all_tasks(self.loop) if t is not current and not t.done()]
        return Snapshot(
            fds=fds,
            epolls=epoll_registrations(fds),
            selector=_selector_keys(self.loop),
            greenthreads=[repr(g) for g in greenthreads],
            tasks=[repr(t) for t in tasks],
            hub=self.hub.statistics(),
            rss=rss_bytes(),
            greenthread_ids=frozenset(id(g) for g in greenthreads),
            task_ids=frozenset(id(t) for t in tasks),
        )

    def leaks(self, base: Snapshot, now: Snapshot) -> list[str]:
        """What ``now`` has that ``base`` had not: every line is a leak."""
        found = []
        for fd in sorted(set(now.fds) - set(base.fds)):
            found.append(f"fd {fd} left open: {now.fds[fd]}{self._describe_socket(fd)}")
        for fd in sorted(set(base.fds) - set(now.fds)):
            found.append(f"fd {fd} ({base.fds[fd]}) open at the start was closed")
        for epfd, entries in now.epolls.items():
            before = base.epolls.get(epfd)
            if before is not None and entries != before:
                extra = sorted(entries - before)
                gone = sorted(before - entries)
                found.append(
                    f"epoll fd {epfd}: registrations {extra} added, {gone} removed "
                    "(kernel view, /proc/self/fdinfo)"
                )
        if now.selector is not None and base.selector is not None:
            for fd in sorted(set(now.selector) - set(base.selector)):
                state = "open" if fd in now.fds else "CLOSED"
                found.append(f"selector key for {state} fd {fd} left: {now.selector[fd]}")
        hub = now.hub
        if hub.readers or hub.writers or hub.timers:
            found.append(
                f"hub left readers={hub.readers} writers={hub.writers} timers={hub.timers}"
            )
        new_gts = now.greenthread_ids - base.greenthread_ids
        if new_gts:
            found.append(f"{len(new_gts)} greenthread(s) left alive: {now.greenthreads[:5]}")
        new_tasks = now.task_ids - base.task_ids
        if new_tasks:
            found.append(f"{len(new_tasks)} task(s) left: {now.tasks[:5]}")
        return found

    def _describe_socket(self, fd: int) -> str:
        """`` (127.0.0.1:x -> green_echo+tls)`` for a leaked socket: whose end it was."""
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            return ""
        with sock:
            try:
                local, peer = sock.getsockname(), sock.getpeername()
            except OSError as exc:
                return f" (not connected: {exc.strerror})"

        def name(address: Any) -> str:
            port = address[1] if isinstance(address, tuple) else None
            return self.server_names.get(port, f"{address[0]}:{address[1]}" if port else "?")

        return f" ({name(local)} -> {name(peer)})"

    def reuse_probe(self, base: Snapshot) -> list[str]:
        """Every fd number used in the run must work afresh, with the loop and the hub.

        Opens socketpairs until their fds cover every number up to the
        run's high-water mark that is free now, then waits on each: half
        through ``loop.add_reader``, half through green ``recv``. A
        registration left behind for a closed fd number (visible to nothing
        else on uvloop) makes the wake-up go missing, raises, or aborts.
        """
        problems: list[str] = []
        pairs: list[tuple[socket.socket, socket.socket]] = []
        wanted = {n for n in range(3, self.fd_high_water + 1) if n not in base.fds} - set(
            open_fds()
        )
        try:
            while wanted:
                a, b = socket.socketpair()
                pairs.append((a, b))
                wanted -= {a.fileno(), b.fileno()}
                if a.fileno() > self.fd_high_water and b.fileno() > self.fd_high_water:
                    break
            for i, (a, b) in enumerate(pairs):
                try:
                    if i % 2 == 0:
                        self._probe_loop_reader(a, b)
                    else:
                        self._probe_green_reader(a, b)
                except Exception as exc:
                    problems.append(f"fd {a.fileno()} reused: {_format(exc)}")
        finally:
            for a, b in pairs:
                a.close()
                b.close()
        return problems

    def _probe_loop_reader(self, a: socket.socket, b: socket.socket) -> None:
        async def wait_readable() -> None:
            loop = asyncio.get_running_loop()
            ready = loop.create_future()
            loop.add_reader(a.fileno(), lambda: ready.done() or ready.set_result(None))
            try:
                b.send(b"x")
                await asyncio.wait_for(ready, 5)
            finally:
                loop.remove_reader(a.fileno())
            if a.recv(1) != b"x":
                raise Mismatch("read the wrong byte")

        bridge.await_(wait_readable())

    def _probe_green_reader(self, a: socket.socket, b: socket.socket) -> None:
        green = green_socket.socket(a.family, a.type, fileno=os.dup(a.fileno()))
        try:
            waiter = eventlet.spawn(green.recv, 1)
            eventlet.sleep(0)
            b.send(b"y")
            with eventlet.Timeout(5):
                if waiter.wait() != b"y":
                    raise Mismatch("read the wrong byte")
        finally:
            green.close()


def _nothing(*_: object) -> None:
    return None


def _task_stack(task: asyncio.Task[Any]) -> traceback.StackSummary:
    """Where ``task`` waits, down its chain of awaited coroutines."""
    frames = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append((frame, frame.f_lineno))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return traceback.StackSummary.extract(frames)


def _server_noise(exc: BaseException | None) -> bool:
    """An eventlet.wsgi handler dying because its client went away, as clients here do.

    eventlet.wsgi lets an ``SSLEOFError`` from its final flush escape the
    handler's greenthread (its ``finish`` only swallows EPIPE-like errnos), so
    the hub prints it, on every hub. Not a finding of this churn.
    """
    if not isinstance(exc, ssl.SSLError | ConnectionError):
        return False
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") == "eventlet.wsgi":
            return True
        tb = tb.tb_next
    return False


def _format(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(lines[-30:]).strip()


# --------------------------------------------------------------------------- servers


class _Servers:
    """The servers of one batch: green echo, asyncio echo, eventlet.wsgi, aiohttp; plain
    and TLS. A *blackhole* listener whose backlog is full makes connects hang."""

    def __init__(self, churn: Churn) -> None:
        self.churn = churn
        self.addresses: dict[tuple[str, bool], tuple[str, int]] = {}
        self.blackhole: tuple[str, int] = ("127.0.0.1", 0)
        self._green_listeners: list[Any] = []
        self._green_acceptors: list[Any] = []
        self._green_pool = eventlet.greenpool.GreenPool(10_000)
        self._wsgi_pool = eventlet.greenpool.GreenPool(10_000)
        self._wsgi_servers: list[Any] = []
        self._aio_servers: list[asyncio.AbstractServer] = []
        self._aio_handlers: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._blackhole_socks: list[socket.socket] = []
        # Handlers that never answer wait for these until stop().
        self.green_release = eventlet.event.Event()
        self.async_release: asyncio.Event | None = None
        self.session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        for tls in (False, True):
            self._start_green_echo(tls)
            self._start_wsgi(tls)
        bridge.await_(self._start_async())
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())  # fills the backlog of 0 (+1)
        self._blackhole_socks = [listener, filler]
        self.blackhole = listener.getsockname()

    # green echo: first byte E = echo until EOF, C = close at once, else read until EOF
    def _start_green_echo(self, tls: bool) -> None:
        listener = eventlet.listen(("127.0.0.1", 0))
        self.addresses["green_echo", tls] = listener.getsockname()
        self._green_listeners.append(listener)

        def accept_forever() -> None:
            while True:
                conn, _ = listener.accept()
                self._green_pool.spawn(self._green_echo, conn, tls)

        self._green_acceptors.append(eventlet.spawn(accept_forever))

    def _green_echo(self, conn: Any, tls: bool) -> None:
        clean_eof = False
        try:
            if tls:
                conn = self.churn.green_server_ctx.wrap_socket(
                    conn, server_side=True, do_handshake_on_connect=False
                )
                conn.do_handshake()
            first = conn.recv(1)
            while first and first != b"C":
                data = conn.recv(65536)
                if not data:
                    clean_eof = True
                    break
                if first == b"E":
                    conn.sendall(data)
            if tls and clean_eof:
                with eventlet.Timeout(1, False):
                    conn = conn.unwrap()  # answer a client's unwrap() with our close_notify
        except (OSError, ssl.SSLError, EOFError):
            pass
        finally:
            conn.close()

    def _start_wsgi(self, tls: bool) -> None:
        listener = eventlet.listen(("127.0.0.1", 0))
        self.addresses["wsgi", tls] = listener.getsockname()
        if tls:
            listener = eventlet.wrap_ssl(
                listener, certfile=self.churn.cert, keyfile=self.churn.key, server_side=True
            )
        self._green_listeners.append(listener)
        log = _ListLog(self.churn)
        server = eventlet.spawn(
            eventlet.wsgi.server,
            listener,
            self._wsgi_app,
            log=log,
            log_output=True,
            custom_pool=self._wsgi_pool,
            debug=False,
        )
        self._wsgi_servers.append(server)

    def _wsgi_app(self, environ: dict[str, Any], start_response: Any) -> Any:
        parts = environ["PATH_INFO"].strip("/").split("/")
        if parts[0] == "bytes":
            body = http_body(int(parts[1]), parts[2])
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        if parts[0] == "echo":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        if parts[0] == "hang":
            self.green_release.wait()
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        if parts[0] == "stream":
            environ["eventlet.minimum_write_chunk_size"] = 0  # send the first part at once
            body = http_body(int(parts[1]), parts[2])
            start_response("200 OK", [("Content-Length", str(len(body) + 1))])
            release = self.green_release

            def chunks() -> Iterator[bytes]:
                yield body  # then one byte more than this, after a release that never comes
                release.wait()
                yield b"!"

            return chunks()
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]

    async def _start_async(self) -> None:
        self.async_release = asyncio.Event()
        for tls in (False, True):
            server = await asyncio.start_server(
                self._aio_echo, "127.0.0.1", 0, ssl=self.churn.server_ctx if tls else None
            )
            self._aio_servers.append(server)
            self.addresses["aio_echo", tls] = server.sockets[0].getsockname()[:2]
        app = web.Application()
        app.router.add_get("/bytes/{n}/{tag}", self._aio_bytes)
        app.router.add_post("/echo", self._aio_echo_http)
        app.router.add_get("/hang", self._aio_hang)
        app.router.add_get("/stream/{n}/{tag}", self._aio_stream)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runner = runner
        for tls in (False, True):
            site = web.TCPSite(
                runner,
                "127.0.0.1",
                0,
                ssl_context=self.churn.server_ctx if tls else None,
                shutdown_timeout=1.0,
            )
            await site.start()
            server = site._server
            assert server is not None
            self.addresses["aiohttp", tls] = server.sockets[0].getsockname()[:2]  # type: ignore[attr-defined]
        self.session = aiohttp.ClientSession()

    async def _aio_echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._aio_handlers.add(task)
        try:
            first = await reader.read(1)
            while first and first != b"C":
                data = await reader.read(65536)
                if not data:
                    break
                if first == b"E":
                    writer.write(data)
                    await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
            self._aio_handlers.discard(task)

    async def _aio_bytes(self, request: web.Request) -> web.Response:
        return web.Response(body=http_body(int(request.match_info["n"]), request.match_info["tag"]))

    async def _aio_echo_http(self, request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def _aio_hang(self, request: web.Request) -> web.Response:
        assert self.async_release is not None
        await self.async_release.wait()
        return web.Response(body=b"")

    async def _aio_stream(self, request: web.Request) -> web.StreamResponse:
        body = http_body(int(request.match_info["n"]), request.match_info["tag"])
        response = web.StreamResponse()
        response.content_length = len(body) + 1
        assert self.async_release is not None
        with contextlib.suppress(ConnectionError):  # clients go away mid-response, by design
            await response.prepare(request)
            await response.write(body)
            await self.async_release.wait()
            await response.write(b"!")
        return response

    def stop(self) -> None:
        """Release every handler, stop every server, wait for their handlers (bounded)."""
        gc.collect()  # clients closed by garbage collection, in reference cycles
        self.churn.loop_turns()
        self.green_release.send()
        bridge.await_(self._stop_async())
        for acceptor in self._green_acceptors:
            acceptor.kill()
        for server in self._wsgi_servers:
            server.kill()
        for listener in self._green_listeners:
            listener.close()
        with eventlet.Timeout(DRAIN_BOUND, False):
            self._green_pool.waitall()
            self._wsgi_pool.waitall()
        for pool, name in ((self._green_pool, "green echo"), (self._wsgi_pool, "wsgi")):
            if pool.running():
                stacks = [
                    "".join(traceback.format_stack(g.gr_frame)[-4:])
                    for g in list(pool.coroutines_running)[:3]
                    if g.gr_frame is not None
                ]
                self.churn.incident(
                    "server stop", f"{pool.running()} {name} handlers hung: " + "\n".join(stacks)
                )
        for sock in self._blackhole_socks:
            sock.close()

    async def _stop_async(self) -> None:
        assert self.async_release is not None
        self.async_release.set()
        if self.session is not None:
            await self.session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        for server in self._aio_servers:
            server.close()
        if self._aio_handlers:
            _, pending = await asyncio.wait(set(self._aio_handlers), timeout=DRAIN_BOUND)
            if pending:
                stacks = []
                for task in list(pending)[:3]:
                    frames = task.get_stack()
                    stacks.append(
                        "".join(
                            traceback.format_list(
                                traceback.extract_stack(frames[-1]) if frames else []
                            )[-4:]
                        )
                    )
                message = f"{len(pending)} asyncio echo handlers hung: " + "\n".join(stacks)
                self.churn.incident("server stop", message)
        for server in self._aio_servers:
            await asyncio.wait_for(server.wait_closed(), DRAIN_BOUND)


class _ListLog:
    """eventlet.wsgi's log: lines kept for the report (clients abort connections on purpose)."""

    def __init__(self, churn: Churn) -> None:
        self.churn = churn

    def write(self, text: str) -> None:
        if text.strip():
            self.lines.append(text.strip())

    def info(self, text: str, *args: Any, **kw: Any) -> None:
        if "Traceback" in text:  # a handler's exception; access lines are dropped
            self.churn.log_server_error(text.strip())

    def debug(self, text: str, *args: Any, **kw: Any) -> None:
        pass

    def error(self, text: str, *args: Any, **kw: Any) -> None:
        self.churn.log_server_error(text % args if args else text)


# --------------------------------------------------------------------------- green clients


def _recv_exactly(read: Callable[[int], bytes], n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        data = read(min(65536, n - got))
        if not data:
            raise Mismatch(f"EOF after {got} of {n} bytes")
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def _close_socket(sock: Any, how: str) -> None:
    """Close a socket by one of the paths the hub must survive."""
    if how in ("close", "unwrap", "makefile_sock_first", "makefile_file_first"):
        sock.close()
    elif how == "shutdown":
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                raise
        sock.close()
    elif how == "detach":
        os.close(sock.detach())
    elif how == "os_close":
        os.close(sock.fileno())  # behind the socket object's back...
        sock.detach()  # ...which then must not close the number again
    elif how != "gc":
        raise ValueError(f"no close path {how!r}")


def g_tcp(c: Churn, op: Op, reached: Callable[[], object]) -> None:
    """A green socket (optionally TLS) to an echo server."""
    address, tls, mode = c.tcp_target(op)
    payload = payload_for(c.seed, op)
    sock: Any = green_socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    file: Any = None
    try:
        if op.disrupt == "sock_timeout":
            sock.settimeout(op.delay)
        if op.phase == "connect":
            reached()
        sock.connect(address)
        if tls:
            sock = c.green_client_ctx.wrap_socket(
                sock, server_hostname="127.0.0.1", do_handshake_on_connect=False
            )
            if op.phase == "handshake":
                reached()
            sock.do_handshake()
        message = mode if mode == b"C" else mode + payload
        if op.close.startswith("makefile"):
            file = sock.makefile("rwb")
            file.write(message)
            file.flush()
            read = file.read
        else:
            sock.sendall(message)
            read = sock.recv
        if mode == b"H":
            reached()
            got = read(1)
            raise Mismatch(f"a server that never answers answered {got!r}")
        if mode == b"C":
            got = read(1)
            if got != b"":
                raise Mismatch(f"expected EOF from a closing server, got {got!r}")
        elif _recv_exactly(read, len(payload)) != payload:
            raise Mismatch("echoed bytes differ")
        if op.close == "unwrap" and op.disrupt == "none":
            try:
                sock = sock.unwrap()
            except ssl.SSLEOFError:
                # asyncio's TLS transport before 3.11 closes without answering a
                # close_notify; the fd is then closed below like any other
                if sys.version_info >= (3, 11) or op.server != "aio_echo":
                    raise
    finally:
        if file is not None and op.close == "makefile_file_first":
            file.close()
        _close_socket(sock, op.close)
        if file is not None and op.close == "makefile_sock_first":
            file.close()
        sock = file = None  # the "gc" path: the last references go here


def g_http(c: Churn, op: Op, reached: Callable[[], object]) -> None:
    """Green http.client against eventlet.wsgi or aiohttp."""
    method, path, body, expected = c.http_request(op)
    _, (host, port), tls = c.http_target(op)
    timeout = op.delay if op.disrupt == "sock_timeout" else OP_BOUND
    conn: Any
    if tls:  # the certificate names 127.0.0.1 too
        conn = green_http_client.HTTPSConnection(
            host, port, timeout=timeout, context=c.green_client_ctx
        )
    else:
        conn = green_http_client.HTTPConnection(host, port, timeout=timeout)
    response: Any = None
    try:
        if op.phase in ("connect", "handshake"):
            reached()
        conn.request(method, path, body=body)
        if op.variant == "hang":
            reached()
        response = conn.getresponse()
        if op.variant == "stream":
            response.read(op.size)
            reached()
        data = response.read()
        if op.phase == "read":
            raise Mismatch(f"a request that never completes completed: {data[:50]!r}")
        if response.status != 200 or data != expected:
            raise Mismatch(f"HTTP {response.status}, body of {len(data)} bytes differs")
    finally:
        if op.close == "close":
            if response is not None:
                response.close()
            conn.close()
        response = conn = None  # the "gc" path: the last references go here


def g_urllib(c: Churn, op: Op, reached: Callable[[], object]) -> None:
    """Green urllib.request.urlopen: issue 8's first reproducer."""
    method, path, body, expected = c.http_request(op)
    scheme, (host, port), tls = c.http_target(op)
    timeout = op.delay if op.disrupt == "sock_timeout" else OP_BOUND
    request = green_request.Request(f"{scheme}://{host}:{port}{path}", data=body, method=method)
    response: Any = None
    try:
        if op.phase in ("connect", "handshake") or op.variant == "hang":
            reached()
        try:
            response = green_request.urlopen(
                request, timeout=timeout, context=c.green_client_ctx if tls else None
            )
        except green_request.URLError as exc:
            # urllib wraps a connect's socket timeout; the disruption is what it wraps
            if isinstance(exc.reason, TimeoutError):  # socket.timeout too
                raise exc.reason from None
            raise
        if op.variant == "stream":
            response.read(op.size)
            reached()
        data = response.read()
        if op.phase == "read":
            raise Mismatch(f"a request that never completes completed: {data[:50]!r}")
        if response.status != 200 or data != expected:
            raise Mismatch(f"HTTP {response.status}, body of {len(data)} bytes differs")
    finally:
        if op.close == "close" and response is not None:
            response.close()
        response = None


def g_subprocess(c: Churn, op: Op, reached: Callable[[], object]) -> None:
    """A green subprocess (cat) fed and read through its pipes."""
    payload = payload_for(c.seed, op)
    proc: Any = green_subprocess.Popen([CAT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        if op.phase == "read":
            reached()
            got = proc.stdout.read(1)
            raise Mismatch(f"cat answered {got!r} before it was given anything")
        if op.close == "communicate":
            out, _ = proc.communicate(payload)
        else:
            proc.stdin.write(payload)
            proc.stdin.close()
            out = proc.stdout.read()
            if op.close == "close":
                proc.stdout.close()
            proc.wait()
        if out != payload or proc.returncode != 0:
            raise Mismatch(f"cat gave {len(out)} bytes back, exit status {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if op.close != "gc":
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        proc = None


def g_never(c: Churn, op: Op, reached: Callable[[], object]) -> None:
    """Planted (``--plant hung-op``): a wait nothing ends, as a lost wake-up looks."""
    eventlet.event.Event().wait()


GREEN_OPS: dict[str, Callable[[Churn, Op, Callable[[], object]], None]] = {
    "g_tcp": g_tcp,
    "g_http": g_http,
    "g_urllib": g_urllib,
    "g_subprocess": g_subprocess,
    "g_never": g_never,
}


# --------------------------------------------------------------------------- async clients


async def a_tcp(c: Churn, op: Op, reached: Callable[[], object]) -> None:
    """asyncio.open_connection (optionally TLS) to an echo server."""
    (host, port), tls, mode = c.tcp_target(op)
    payload = payload_for(c.seed, op)
    if op.phase in ("connect", "handshake"):
        reached()
    reader, writer = await asyncio.open_connection(
        host,
        port,
        ssl=c.client_ctx if tls else None,
    )
    try:
        writer.write(mode if mode == b"C" else mode + payload)  # C: unread data would RST
        await writer.drain()
        if mode == b"H":
            reached()
            got = await reader.read(1)
            raise Mismatch(f"a server that never answers answered {got!r}")
        if mode == b"C":
            got = await reader.read(1)
            if got != b"":
                raise Mismatch(f"expected EOF from a closing server, got {got!r}")
        elif await reader.readexactly(len(payload)) != payload:
            raise Mismatch("echoed bytes differ")
    finally:
        if op.close == "abort":
            writer.transport.abort()
        else:
            writer.close()
        if op.close == "close":
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


async def a_sock(c: Churn, op: Op, reached: Callable[[], object]) -> None:
    """The loop's own sock_connect/sock_sendall/sock_recv on a plain socket (add_reader and
    add_writer directly: the registrations most exposed to a stale one)."""
    loop = asyncio.get_running_loop()
    address, _, mode = c.tcp_target(op)
    payload = payload_for(c.seed, op)
    sock: Any = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        if op.phase == "connect":
            reached()
        await loop.sock_connect(sock, address)
        await loop.sock_sendall(sock, mode if mode == b"C" else mode + payload)
        if mode == b"H":
            reached()
            got = await loop.sock_recv(sock, 1)
            raise Mismatch(f"a server that never answers answered {got!r}")
        if mode == b"C":
            got = await loop.sock_recv(sock, 1)
            if got != b"":
                raise Mismatch(f"expected EOF from a closing server, got {got!r}")
        else:
            chunks, got_n = [], 0
            while got_n < len(payload):
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    raise Mismatch(f"EOF after {got_n} of {len(payload)} bytes")
                chunks.append(data)
                got_n += len(data)
            if b"".join(chunks) != payload:
                raise Mismatch("echoed bytes differ")
    finally:
        _close_socket(sock, op.close)
        sock = None


async def a_http(c: Churn, op: Op, reached: Callable[[], object]) -> None:
    """aiohttp against eventlet.wsgi or aiohttp, with its own session or a shared one."""
    method, path, body, expected = c.http_request(op)
    scheme, (host, port), tls = c.http_target(op)
    url = f"{scheme}://{host}:{port}{path}"
    own = op.close == "own_session"
    session = aiohttp.ClientSession() if own else c.servers.session
    assert session is not None
    try:
        if op.phase in ("connect", "handshake") or op.variant == "hang":
            reached()
        response = await session.request(method, url, data=body, ssl=c.client_ctx if tls else False)
        try:
            if op.variant == "stream":
                await response.content.readexactly(op.size)
                reached()
            data = await response.read()
            if op.phase == "read":
                raise Mismatch(f"a request that never completes completed: {data[:50]!r}")
            if response.status != 200 or data != expected:
                raise Mismatch(f"HTTP {response.status}, body of {len(data)} bytes differs")
        finally:
            if op.close == "shared_session_close_response":
                response.close()
            else:
                response.release()
    finally:
        if own:
            await session.close()


async def a_subprocess(c: Churn, op: Op, reached: Callable[[], object]) -> None:
    """An asyncio subprocess (cat) fed and read through its pipes."""
    payload = payload_for(c.seed, op)
    proc = await asyncio.create_subprocess_exec(CAT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if op.phase == "read":
            reached()
            got = await proc.stdout.read(1)
            raise Mismatch(f"cat answered {got!r} before it was given anything")
        if op.close == "communicate":
            out, _ = await proc.communicate(payload)
        else:
            proc.stdin.write(payload)
            await proc.stdin.drain()
            proc.stdin.close()
            out = await proc.stdout.read()
            await proc.wait()
        if out != payload or proc.returncode != 0:
            raise Mismatch(f"cat gave {len(out)} bytes back, exit status {proc.returncode}")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if op.close == "transport_close":
            proc._transport.close()  # type: ignore[attr-defined]
        elif not proc.stdin.is_closing():
            proc.stdin.close()


ASYNC_OPS: dict[str, Callable[[Churn, Op, Callable[[], object]], Coroutine[Any, Any, None]]] = {
    "a_tcp": a_tcp,
    "a_sock": a_sock,
    "a_http": a_http,
    "a_subprocess": a_subprocess,
}


# --------------------------------------------------------------------------- one run


@dataclasses.dataclass
class Report:
    seed: int
    mode: str
    loop: str
    ops: int
    ok: int
    seconds: float
    failures: list[dict[str, str]]
    incidents: list[str]
    leaks: list[str]
    server_log: list[str]
    kinds: dict[str, int]

    @property
    def passed(self) -> bool:
        return not (self.failures or self.incidents or self.leaks)


def warm_up(churn: Churn) -> None:
    """One undisrupted operation of each client, so that what a loop or library makes once
    (uvloop's signal pipe for child processes, aiohttp's lazy imports...) exists before
    the baseline snapshot; with servers started and stopped once. Their failures (negative
    operation numbers) are the run's: nothing random runs after them."""
    churn.start_servers()
    ops = [
        Op(index=-1 - i, client=client, server=server, caller=caller, size=64, variant=variant)
        for i, (client, server, caller, variant) in enumerate(
            [
                ("g_tcp", "green_echo", "green", "echo"),
                ("a_tcp", "aio_echo", "async", "echo"),
                ("a_sock", "green_echo", "async", "echo"),
                ("g_http", "wsgi", "green", "get"),
                ("a_http", "aiohttp", "async", "get"),
                ("g_subprocess", "", "green", ""),
                ("a_subprocess", "", "async", ""),
            ]
        )
    ]
    churn.run_ops(iter(ops))
    churn.stop_servers()


# What ``--plant`` can plant, to show that the checks see it (tests/test_mixed_sockets.py).
PLANTS = ("leaked-fd", "stale-registration", "hung-op", "loop-error")


def plant(churn: Churn, what: str) -> Iterator[Op]:
    """Plant one known fault in the run; returns operations to run on top of the churn's."""
    if what == "leaked-fd":
        churn.planted = socket.socket()
    elif what == "stale-registration":
        pass  # at the end of the run, see plant_at_end(): operations would trip over it
    elif what == "loop-error":

        def fail() -> None:
            raise RuntimeError("planted: an exception in a loop callback")

        churn.loop.call_soon(fail)
    elif what == "hung-op":
        return iter([Op(index=10**6, client="g_never", caller="async", via="to_async")])
    else:
        raise ValueError(f"nothing to plant called {what!r}; choose from {', '.join(PLANTS)}")
    return iter(())


def plant_at_end(churn: Churn, what: str | None) -> None:
    if what == "stale-registration":
        a, b = socket.socketpair()
        churn.loop.add_reader(a.fileno(), _nothing)
        a.close()  # without remove_reader: the loop keeps a registration for a closed fd
        b.close()


def run_session(
    *,
    seed: int,
    count: int,
    mode: str,
    loop_kind: str,
    tls_dir: str,
    concurrency: int,
    only: set[int] | None,
    journal: str | None,
    planted: str | None = None,
) -> Report:
    """Warm up, snapshot, run ``count`` operations, stop, check. Green."""
    started = time.monotonic()
    churn = Churn(seed=seed, mode=mode, loop_kind=loop_kind, tls_dir=tls_dir,
                  concurrency=concurrency)  # fmt: skip
    churn.install_observers(journal)
    try:
        warm_up(churn)
        if churn.failures:
            count = 0  # the warm-up's failures are the finding; the rest would be noise
        base = churn.snapshot()
        churn.start_servers()
        ops = itertools.islice(generate(seed), count)
        if only is not None:
            ops = (op for op in ops if op.index in only)
        if planted:
            ops = itertools.chain(plant(churn, planted), ops)
        kinds: dict[str, int] = {}

        def counted(ops: Iterator[Op]) -> Iterator[Op]:
            for op in ops:
                key = op.client if op.then is None else f"chain {op.client}+{op.then.client}"
                kinds[key] = kinds.get(key, 0) + 1
                yield op

        n = churn.run_ops(counted(ops))
        plant_at_end(churn, planted)
        churn.stop_servers()
        now = churn.snapshot()
        leaks = churn.leaks(base, now)
        if not leaks:
            leaks = churn.reuse_probe(base)
        return Report(
            seed=seed,
            mode=mode,
            loop=loop_kind,
            ops=n,
            ok=n - sum(f.op.index >= 0 for f in churn.failures),
            seconds=round(time.monotonic() - started, 2),
            failures=[
                {
                    "op": f.op.describe(),
                    "index": str(f.op.index),
                    "error": f.error,
                    "detail": f.detail,
                }
                for f in churn.failures
            ],
            incidents=churn.incidents,
            leaks=leaks,
            server_log=churn.server_log[:20],
            kinds=dict(sorted(kinds.items())),
        )
    finally:
        churn.close()


def run_in_mode(mode: str, loop_kind: str, fn: Callable[[], Any]) -> Any:
    """Run the green ``fn`` as green main (owner) or from ``asyncio.run`` (guest)."""
    if loop_kind == "uvloop":
        import uvloop

        if mode == "owner":
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if mode == "owner":
        return fn()

    async def main() -> Any:
        return await bridge.to_async(fn)()

    if loop_kind == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def loop_kind_of(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def format_report(report: Report, argv: list[str]) -> str:
    lines = [
        f"churn seed={report.seed} mode={report.mode} loop={report.loop}: {report.ok}/"
        f"{report.ops} operations ok in {report.seconds}s; {len(report.incidents)} incidents, "
        f"{len(report.leaks)} leaks"
    ]
    for f in report.failures:
        lines.append(f"FAILED {f['op']} [{f['error']}]\n{_indent(f['detail'])}")
    for text in report.incidents[:10]:
        lines.append(f"INCIDENT {_indent(text).lstrip()}")
    for text in report.leaks:
        lines.append(f"LEAK {text}")
    if not report.passed:
        first = report.failures[0]["index"] if report.failures else None
        replay = " ".join(argv)
        lines.append(f"reproduce: python stress/churn.py {replay}")
        if first is not None:
            lines.append(
                f"  or just the first failed operation: python stress/churn.py {replay} "
                f"--only {first} --concurrency 1"
            )
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("owner", "guest"), default="guest")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ops", type=int, default=500, help="how many operations (default 500)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", default="", help="comma-separated operation indices to run")
    parser.add_argument("--tls-dir", default="", help="where cert.pem/key.pem are (or are made)")
    parser.add_argument("--journal", default="", help="append one line per operation here")
    parser.add_argument(
        "--watchdog", type=float, default=0.0,
        help="dump every stack and exit after this many seconds (0: no watchdog)",
    )  # fmt: skip
    parser.add_argument(
        "--plant", choices=PLANTS, default=None,
        help="plant one known fault, to check that the checks see it",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.ops < 0 or args.concurrency < 1:
        parser.error("--ops must be >= 0 and --concurrency >= 1")
    faulthandler.enable()  # a crash (libuv aborts on a bad epoll_ctl) shows the stacks
    if args.watchdog:
        faulthandler.dump_traceback_later(args.watchdog, exit=True)
    only = {int(i) for i in args.only.split(",") if i.strip()} if args.only else None
    replay = [
        f"--mode {args.mode}",
        f"--loop {args.loop}",
        f"--seed {args.seed}",
        f"--ops {args.ops}",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        tls_dir = args.tls_dir or scratch
        report = run_in_mode(
            args.mode,
            args.loop,
            lambda: run_session(
                seed=args.seed,
                count=args.ops,
                mode=args.mode,
                loop_kind=args.loop,
                tls_dir=tls_dir,
                concurrency=args.concurrency,
                only=only,
                journal=args.journal or None,
                planted=args.plant,
            ),
        )
    print(format_report(report, replay), flush=True)
    print(RESULT_MARKER + json.dumps(dataclasses.asdict(report)), flush=True)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
