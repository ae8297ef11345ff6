"""One benchmark run in one process: the child side of ``bench/hub.py``.

Usage (normally only ``bench/hub.py`` calls this)::

    EVENTLET_HUB=epolls python bench/workloads.py WORKLOAD COUNT [--mode owner|guest]
                                                           [--loop asyncio|uvloop]

The hub is whatever ``EVENTLET_HUB`` names. ``--mode owner`` runs the workload as a plain
green main program (the hub owns its loop; with ``--loop uvloop`` the uvloop policy is
installed first). ``--mode guest`` runs it inside ``asyncio.run(main())`` (or ``uvloop.run``),
where ``main`` spawns the workload as a greenthread and awaits it.

Each workload times only its own measured section with ``time.perf_counter`` and returns a
dict with at least ``ops`` and ``seconds``. The last line on stdout is
``BENCH_RESULT <json>``; anything else on stdout/stderr is ignored unless the run fails.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# eventlet warns about its own deprecation on import; keep stderr for real errors.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402
import eventlet.event  # noqa: E402
import eventlet.hubs  # noqa: E402
import eventlet.queue  # noqa: E402
import eventlet.wsgi  # noqa: E402

Result = dict[str, Any]
RESULT_MARKER = "BENCH_RESULT "


@dataclass
class Context:
    """What a workload may know about how it is being run."""

    mode: str
    # The running asyncio loop in guest mode, None in owner mode.
    loop: Any = None


def _nodelay(sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _maxrss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


# --------------------------------------------------------------------------- workloads


def sleep0(n: int, ctx: Context) -> Result:
    """``n`` times ``eventlet.sleep(0)`` from one greenthread: one hub round trip each."""
    sleep = eventlet.sleep
    sleep(0)
    start = time.perf_counter()
    for _ in range(n):
        sleep(0)
    return {"ops": n, "seconds": time.perf_counter() - start}


def spawn(n: int, ctx: Context) -> Result:
    """``n`` times ``eventlet.spawn(f).wait()``, sequentially, with a trivial ``f``."""

    def trivial() -> int:
        return 1

    eventlet.sleep(0)
    start = time.perf_counter()
    for _ in range(n):
        eventlet.spawn(trivial).wait()
    return {"ops": n, "seconds": time.perf_counter() - start}


def queue(n: int, ctx: Context) -> Result:
    """``n`` ping-pong round trips between two greenthreads over two ``eventlet.queue.Queue``."""
    pings: eventlet.queue.Queue = eventlet.queue.Queue()
    pongs: eventlet.queue.Queue = eventlet.queue.Queue()

    def ponger() -> None:
        for _ in range(n):
            pongs.put(pings.get())

    eventlet.sleep(0)
    start = time.perf_counter()
    other = eventlet.spawn(ponger)
    for i in range(n):
        pings.put(i)
        if pongs.get() != i:
            raise AssertionError("queue ping-pong out of order")
    seconds = time.perf_counter() - start
    other.wait()
    return {"ops": n, "seconds": seconds}


def tcp_echo(n: int, ctx: Context) -> Result:
    """``n`` round trips of 64 bytes over one loopback TCP connection to a green echo server."""
    size = 64
    payload = b"x" * size
    listener = eventlet.listen(("127.0.0.1", 0))

    def handle(conn: Any) -> None:
        _nodelay(conn)
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            eventlet.spawn(handle, conn)

    server = eventlet.spawn(serve)
    client = eventlet.connect(listener.getsockname())
    _nodelay(client)
    eventlet.sleep(0)
    start = time.perf_counter()
    for _ in range(n):
        client.sendall(payload)
        received = 0
        while received < size:
            chunk = client.recv(size - received)
            if not chunk:
                raise ConnectionError("echo server closed the connection")
            received += len(chunk)
    seconds = time.perf_counter() - start
    client.close()
    server.kill()
    listener.close()
    return {"ops": n, "seconds": seconds}


def timers(n: int, ctx: Context) -> Result:
    """``n`` hub timers, random delays in [0, 50 ms] (seeded), half of them cancelled.

    Measures the wall time from scheduling the first timer until the last non-cancelled one
    fired; ops/s is ``n`` (all scheduled timers) over that time. Also records how late each
    timer fired: after its deadline, or after the end of the scheduling burst if that came
    later (the hub cannot run timers while the burst holds the CPU).
    """
    rng = random.Random(1234)
    delays = [rng.uniform(0.0, 0.05) for _ in range(n)]
    cancelled = set(rng.sample(range(n), n // 2))
    hub = eventlet.hubs.get_hub()
    clock = time.monotonic
    deadlines: list[float] = []
    fired_at: list[float] = []
    remaining = n - len(cancelled)
    all_fired = eventlet.event.Event()

    def fire(deadline: float) -> None:
        nonlocal remaining
        fired_at.append(clock())
        deadlines.append(deadline)
        remaining -= 1
        if remaining == 0:
            all_fired.send(None)

    eventlet.sleep(0)
    start = time.perf_counter()
    burst_start = clock()
    scheduled = []
    for delay in delays:
        scheduled.append(hub.schedule_call_global(delay, fire, clock() + delay))
    for index in cancelled:
        scheduled[index].cancel()
    burst_end = clock()
    all_fired.wait()
    seconds = time.perf_counter() - start
    lateness = sorted(f - max(d, burst_end) for f, d in zip(fired_at, deadlines, strict=True))
    last_deadline = max(d for i, d in enumerate(delays) if i not in cancelled)
    return {
        "ops": n,
        "seconds": seconds,
        "fired": len(lateness),
        "burst_seconds": burst_end - burst_start,
        "overhead_seconds": seconds - last_deadline,
        "late_p50_ms": _percentile(lateness, 0.50) * 1e3,
        "late_p99_ms": _percentile(lateness, 0.99) * 1e3,
    }


def wsgi(n: int, ctx: Context) -> Result:
    """``n`` HTTP/1.1 keep-alive requests from 20 concurrent green clients to ``eventlet.wsgi``."""
    clients = 20
    per_client = max(1, n // clients)
    body = b"Hello, World!\n"
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", headers)
        return [body]

    listener = eventlet.listen(("127.0.0.1", 0), backlog=128)
    address = listener.getsockname()
    server = eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False, debug=False)
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"

    def read_response(sock: Any, buffered: bytes) -> bytes:
        """Read one response with a Content-Length body; return the bytes past its end."""
        while b"\r\n\r\n" not in buffered:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection mid-response")
            buffered += chunk
        head, _, rest = buffered.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 200"):
            raise AssertionError(f"unexpected status line {lines[0]!r}")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            rest += chunk
        return rest[length:]

    def client() -> None:
        sock = eventlet.connect(address)
        _nodelay(sock)
        buffered = b""
        for _ in range(per_client):
            sock.sendall(request)
            buffered = read_response(sock, buffered)
        sock.close()

    eventlet.sleep(0)
    start = time.perf_counter()
    running = [eventlet.spawn(client) for _ in range(clients)]
    for gt in running:
        gt.wait()
    seconds = time.perf_counter() - start
    server.kill()
    return {"ops": clients * per_client, "seconds": seconds}


def scale(n: int, ctx: Context) -> Result:
    """``n`` greenthreads each sleeping a random delay in [0, 1 s]; wall time until all are done.

    Peak RSS growth (``ru_maxrss`` after, minus before spawning) is divided by ``n``. In guest
    mode, ``n // 10`` asyncio tasks additionally ``await`` one greenthread each and are waited
    for too (they are included in both the time and the memory).
    """
    rng = random.Random(4321)
    delays = [rng.random() for _ in range(n)]
    remaining = n
    all_done = eventlet.event.Event()

    def sleeper(delay: float) -> None:
        nonlocal remaining
        eventlet.sleep(delay)
        remaining -= 1
        if remaining == 0:
            all_done.send(None)

    awaiters = n // 10 if ctx.loop is not None else 0
    tasks_left = awaiters
    tasks_done = eventlet.event.Event()

    def task_finished(_task: Any) -> None:
        nonlocal tasks_left
        tasks_left -= 1
        if tasks_left == 0:
            tasks_done.send(None)

    async def await_one(gt: Any) -> Any:
        return await gt

    eventlet.sleep(0)
    baseline = _maxrss_bytes()
    start = time.perf_counter()
    threads = [eventlet.spawn(sleeper, delay) for delay in delays]
    spawn_seconds = time.perf_counter() - start
    tasks = []
    for gt in threads[:: max(1, n // awaiters)] if awaiters else []:
        task = ctx.loop.create_task(await_one(gt))
        task.add_done_callback(task_finished)
        tasks.append(task)
    all_done.wait()
    if tasks:
        tasks_done.wait()
    seconds = time.perf_counter() - start
    peak = _maxrss_bytes()
    for task in tasks:
        task.result()  # re-raise anything a task failed with
    return {
        "ops": n,
        "seconds": seconds,
        "spawn_seconds": spawn_seconds,
        "overhead_seconds": seconds - max(delays),
        "bytes_per_greenthread": (peak - baseline) / n,
        "asyncio_awaiters": len(tasks),
    }


WORKLOADS: dict[str, Callable[[int, Context], Result]] = {
    "sleep0": sleep0,
    "spawn": spawn,
    "queue": queue,
    "tcp_echo": tcp_echo,
    "timers": timers,
    "wsgi": wsgi,
    "scale": scale,
}


# --------------------------------------------------------------------------- drivers


def describe_hub(running_loop: Any = None) -> dict[str, Any]:
    """Which hub class and loop class actually ran, to catch misconfiguration.

    Called while the hub is still in use: right after the workload in owner mode, and
    inside the running loop in guest mode (a guest hub may drop its loop when that ends).
    """
    hub = eventlet.hubs.get_hub()
    loop = getattr(hub, "loop", None)
    kind = type(hub)
    loop_kind = type(loop)
    info: dict[str, Any] = {
        "hub_class": f"{kind.__module__}.{kind.__qualname__}",
        "loop_class": "-" if loop is None else f"{loop_kind.__module__}.{loop_kind.__qualname__}",
    }
    if running_loop is not None:
        info["hub_on_running_loop"] = loop is running_loop
    return info


def run_owner(workload: Callable[[int, Context], Result], n: int) -> Result:
    """Plain green main program: the hub creates and runs its own loop."""
    result = workload(n, Context(mode="owner"))
    result.update(describe_hub())
    return result


def run_guest(workload: Callable[[int, Context], Result], n: int, use_uvloop: bool) -> Result:
    """Inside ``asyncio.run``: the hub joins the running loop; the workload is a greenthread."""
    import asyncio

    async def main() -> Result:
        loop = asyncio.get_running_loop()
        gt = eventlet.spawn(workload, n, Context(mode="guest", loop=loop))
        result: Result = await gt
        result.update(describe_hub(running_loop=loop))
        return result

    if use_uvloop:
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("count", type=int)
    parser.add_argument("--mode", choices=("owner", "guest"), default="owner")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args(argv)

    workload = WORKLOADS[args.workload]
    if args.mode == "owner":
        if args.loop == "uvloop":
            import uvloop

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                uvloop.install()
        result = run_owner(workload, args.count)
    else:
        result = run_guest(workload, args.count, use_uvloop=args.loop == "uvloop")
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
