"""The hub in one process: eventlet's API on both hub modes, transitions,
and the robustness cases that can be shown without process-wide state.

Process-wide cases (monkey patching order, signals, fork, threads,
KeyboardInterrupt) are in test_hub_process.py.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import eventlet
import eventlet.asyncio
import eventlet.debug
import eventlet.event
import eventlet.hubs
import eventlet.patcher
import eventlet.queue
import eventlet.wsgi
import pytest
from aiohttp import web
from eventlet.green import socket as green_socket

# In the main greenlet: on CPython 3.13, eventlet 0.41 fails an assertion
# importing threading from a greenthread (on its own hubs too).
from eventlet.green.urllib import request as green_request

import bridge
from bridge.hub import Hub

from .conftest import RunInMode, run_guest, run_owner

BOUND = 10  # seconds: the bound on every wait in these tests


def hub() -> Hub:
    h = eventlet.hubs.get_hub()
    assert isinstance(h, Hub)
    return h


def test_hub_is_a_subclass_of_eventlets_asyncio_hub() -> None:
    from eventlet.hubs import asyncio as eventlet_asyncio_hub

    assert issubclass(Hub, eventlet_asyncio_hub.Hub)
    assert isinstance(eventlet.hubs.get_hub(), Hub)


def test_mode_is_owner_in_green_main_and_guest_under_asyncio_run() -> None:
    eventlet.sleep(0)
    assert hub().mode == "owner"

    async def main() -> tuple[str, object]:
        return await eventlet.spawn(lambda: (hub().mode, hub().loop))

    mode, loop = asyncio.run(main())
    assert mode == "guest"
    assert loop is not hub().loop
    eventlet.sleep(0)
    assert hub().mode == "owner"


def test_greenthreads_spawn_sleep_wait_and_link(hub_mode: RunInMode) -> None:
    def scenario() -> list[object]:
        seen: list[object] = []
        gt = eventlet.spawn(lambda x: eventlet.sleep(0.001) or x * 2, 21)
        gt.link(lambda g: seen.append(("linked", g.wait())))
        eventlet.spawn_n(seen.append, "spawn_n")
        later = eventlet.spawn_after(0.001, lambda: "after")
        seen.append(gt.wait())
        seen.append(later.wait())
        eventlet.sleep(0)
        return seen

    assert sorted(map(str, hub_mode(scenario))) == sorted(
        map(str, ["spawn_n", 42, "after", ("linked", 42)])
    )


def test_timeout_interrupts_a_sleeping_greenthread(hub_mode: RunInMode) -> None:
    def scenario() -> str:
        try:
            with eventlet.Timeout(0.01):
                eventlet.sleep(BOUND)
        except eventlet.Timeout:
            return "timed out"
        return "slept"

    assert hub_mode(scenario) == "timed out"


def test_cancelled_timers_never_fire(hub_mode: RunInMode) -> None:
    def scenario() -> tuple[list[int], int]:
        fired: list[int] = []
        h = hub()
        before = h.get_timers_count()
        timers = [h.schedule_call_global(0.001 * (i % 5), fired.append, i) for i in range(200)]
        for t in timers[::2]:
            t.cancel()
        done = eventlet.Event()
        h.schedule_call_global(0.01, done.send)
        done.wait()
        return fired, h.get_timers_count() - before

    fired, growth = hub_mode(scenario)
    assert sorted(fired) == list(range(1, 200, 2))
    assert growth <= 0


def test_greenpool_greenpile_queue_event_semaphore(hub_mode: RunInMode) -> None:
    def scenario() -> dict[str, object]:
        pool = eventlet.GreenPool(4)
        squares = list(pool.imap(lambda x: x * x, range(10)))
        pile = eventlet.GreenPile(pool)
        for i in range(3):
            pile.spawn(lambda i: eventlet.sleep(0) or i, i)
        q: eventlet.queue.Queue[int] = eventlet.queue.Queue(maxsize=1)
        consumer = eventlet.spawn(lambda: [q.get() for _ in range(5)])
        for i in range(5):
            q.put(i)
        ev = eventlet.Event()
        eventlet.spawn_after(0.001, ev.send, "sent")
        sem = eventlet.Semaphore(1)
        order: list[int] = []

        def critical(i: int) -> None:
            with sem:
                order.append(i)
                eventlet.sleep(0)
                order.append(i)

        waiters = [eventlet.spawn(critical, i) for i in range(3)]
        for w in waiters:
            w.wait()
        return {
            "squares": squares,
            "pile": list(pile),
            "queue": consumer.wait(),
            "event": ev.wait(),
            "semaphore": order,
        }

    result = hub_mode(scenario)
    assert result == {
        "squares": [x * x for x in range(10)],
        "pile": [0, 1, 2],
        "queue": [0, 1, 2, 3, 4],
        "event": "sent",
        "semaphore": [0, 0, 1, 1, 2, 2],
    }


def _echo_server(listener: green_socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def test_green_tcp_echo(hub_mode: RunInMode) -> None:
    def scenario() -> bytes:
        listener = eventlet.listen(("127.0.0.1", 0))
        server = eventlet.spawn(_echo_server, listener)
        with eventlet.Timeout(BOUND), eventlet.connect(listener.getsockname()) as client:
            received = b""
            for i in range(100):
                client.sendall(b"%03d" % i)
                received += client.recv(3)
            client.shutdown(socket.SHUT_WR)
            server.wait()
        listener.close()
        return received

    assert hub_mode(scenario) == b"".join(b"%03d" % i for i in range(100))


def test_green_udp_and_unix_sockets(hub_mode: RunInMode, tmp_path: Path) -> None:
    def scenario() -> tuple[bytes, bytes]:
        with eventlet.Timeout(BOUND):
            a = green_socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            b = green_socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            a.bind(("127.0.0.1", 0))
            reader = eventlet.spawn(a.recvfrom, 100)
            eventlet.sleep(0)
            b.sendto(b"datagram", a.getsockname())
            udp = reader.wait()[0]
            a.close()
            b.close()

            path = str(tmp_path / f"echo-{id(object())}.sock")
            listener = eventlet.listen(path, family=socket.AF_UNIX)
            server = eventlet.spawn(_echo_server, listener)
            client = green_socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(path)
            client.sendall(b"unix")
            unix = client.recv(100)
            client.close()
            server.wait()
            listener.close()
            return udp, unix

    assert hub_mode(scenario) == (b"datagram", b"unix")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_green_tls_echo(hub_mode: RunInMode, tls_files: tuple[str, str]) -> None:
    cert, key = tls_files

    def scenario() -> bytes:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.create_default_context(cafile=cert)
        listener = eventlet.listen(("127.0.0.1", 0))
        address = listener.getsockname()
        tls_listener = eventlet.wrap_ssl(listener, certfile=cert, keyfile=key, server_side=True)
        server = eventlet.spawn(_echo_server, tls_listener)
        with eventlet.Timeout(BOUND):
            raw = eventlet.connect(address)
            from eventlet.green import ssl as green_ssl

            client = green_ssl.GreenSSLSocket(raw, server_hostname="localhost", _context=client_ctx)
            client.sendall(b"over tls")
            data = client.recv(100)
            client.close()
            server.wait()
        tls_listener.close()
        return data

    assert hub_mode(scenario) == b"over tls"


def test_several_readers_on_one_fd(hub_mode: RunInMode) -> None:
    def scenario() -> list[bytes]:
        eventlet.debug.hub_prevent_multiple_readers(False)
        try:
            a, b = green_socket.socketpair()
            readers = [eventlet.spawn(a.recv, 1) for _ in range(2)]
            eventlet.sleep(0)
            b.sendall(b"xy")
            with eventlet.Timeout(BOUND):
                got = sorted(r.wait() for r in readers)
            a.close()
            b.close()
            return got
        finally:
            eventlet.debug.hub_prevent_multiple_readers(True)

    assert hub_mode(scenario) == [b"x", b"y"]


def test_closing_a_socket_wakes_the_greenthread_waiting_on_it(hub_mode: RunInMode) -> None:
    def scenario() -> str:
        a, b = green_socket.socketpair()
        waiting = eventlet.Event()

        def reader() -> str:
            waiting.send()
            try:
                data = a.recv(10)
            except (OSError, EOFError) as exc:
                return type(exc).__name__
            return f"returned {data!r}"

        gt = eventlet.spawn(reader)
        waiting.wait()
        eventlet.sleep(0)  # let the reader block in recv
        a.close()
        with eventlet.Timeout(BOUND):
            outcome = gt.wait()
        b.close()
        return outcome

    # GreenSocket.recv turns the hub's IOClosed into EOFError.
    assert hub_mode(scenario) == "EOFError"


def test_timer_exception_is_reported_and_the_hub_goes_on(
    hub_mode: RunInMode, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom() -> None:
        raise ValueError("boom in a timer")

    def scenario() -> str:
        hub().schedule_call_global(0, boom)
        eventlet.sleep(0.001)
        return eventlet.spawn(lambda: "still working").wait()

    assert hub_mode(scenario) == "still working"
    assert "boom in a timer" in capsys.readouterr().err


def test_eventlet_wsgi_and_aiohttp_serve_concurrently_on_one_loop(hub_mode: RunInMode) -> None:
    def wsgi_app(environ: dict[str, object], start_response: object) -> list[bytes]:
        eventlet.sleep(0.001)  # green code in the request path
        start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [b"green " + str(environ["PATH_INFO"]).encode()]

    async def aio_handler(request: web.Request) -> web.Response:
        await asyncio.sleep(0.001)
        return web.Response(text="async " + request.path)

    async def start_aiohttp() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_get("/{tail:.*}", aio_handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def aio_client(urls: list[str]) -> list[str]:
        async with aiohttp.ClientSession() as session:

            async def get(url: str) -> str:
                async with session.get(url) as resp:
                    return await resp.text()

            return list(await asyncio.gather(*(get(u) for u in urls)))

    def green_get(port: int, path: str) -> str:
        with green_request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=BOUND) as resp:
            return resp.read().decode()

    def scenario() -> tuple[list[str], list[str]]:
        listener = eventlet.listen(("127.0.0.1", 0))
        wsgi_port = listener.getsockname()[1]
        server = eventlet.spawn(eventlet.wsgi.server, listener, wsgi_app, log_output=False)
        runner, aio_port = eventlet.asyncio.spawn_for_awaitable(start_aiohttp()).wait()
        try:
            with eventlet.Timeout(BOUND):
                urls = [
                    f"http://127.0.0.1:{p}/{i}" for i in range(5) for p in (wsgi_port, aio_port)
                ]
                from_async = eventlet.asyncio.spawn_for_awaitable(aio_client(urls))
                pool = eventlet.GreenPool()
                from_green = list(
                    pool.starmap(
                        green_get, [(p, f"/{i}") for i in range(5) for p in (wsgi_port, aio_port)]
                    )
                )
                return from_async.wait(), from_green
        finally:
            eventlet.asyncio.spawn_for_awaitable(runner.cleanup()).wait()
            server.kill()
            listener.close()

    expected = [f"{kind} /{i}" for i in range(5) for kind in ("green", "async")]
    from_async, from_green = hub_mode(scenario)
    assert from_async == expected
    assert from_green == expected


def test_green_work_pending_across_asyncio_run_keeps_running() -> None:
    ticks = [0]
    stop = eventlet.Event()

    def ticker() -> None:
        while not stop.ready():
            ticks[0] += 1
            eventlet.sleep(0.001)

    gt = eventlet.spawn(ticker)
    eventlet.sleep(0)

    async def main() -> int:
        start = ticks[0]
        advanced = asyncio.Event()

        def watch() -> None:
            while ticks[0] < start + 3:
                eventlet.sleep(0.001)
            advanced.set()

        eventlet.spawn(watch)
        await asyncio.wait_for(advanced.wait(), BOUND)
        return ticks[0] - start

    assert asyncio.run(main()) >= 3
    before = ticks[0]
    with eventlet.Timeout(BOUND):
        while ticks[0] < before + 3:
            eventlet.sleep(0.001)
    stop.send()
    gt.wait()


@pytest.mark.asyncio
async def test_pytest_asyncio_test_spawns_and_awaits_greenthreads() -> None:
    h = hub()
    results = await asyncio.wait_for(
        asyncio.gather(
            *(eventlet.spawn(lambda i: eventlet.sleep(0.001) or i, i) for i in range(20))
        ),
        BOUND,
    )
    assert results == list(range(20))
    assert h.mode == "guest"
    assert h.loop is asyncio.get_running_loop()


@pytest.mark.asyncio
async def test_hub_follows_pytest_asyncios_next_loop() -> None:
    # A second test with a fresh loop: the hub moved.
    assert await asyncio.wait_for(eventlet.spawn(lambda: "moved"), BOUND) == "moved"
    assert hub().loop is asyncio.get_running_loop()


@pytest.mark.asyncio
async def test_cancelling_the_task_awaiting_a_greenthread_kills_it() -> None:
    finished = eventlet.Event()

    def sleeper() -> None:
        try:
            eventlet.sleep(BOUND)
        finally:
            finished.send("finally ran")

    gt = eventlet.spawn(sleeper)

    async def await_greenthread() -> None:
        await gt

    task = asyncio.ensure_future(await_greenthread())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.wait_for(eventlet.spawn(finished.wait), BOUND) == "finally ran"


_SOCKETPAIR = green_socket.socketpair()


@pytest.mark.parametrize(
    "blocking_call",
    [
        pytest.param(lambda: eventlet.sleep(1), id="sleep"),
        pytest.param(lambda: eventlet.queue.Queue().get(), id="queue-get"),
        pytest.param(lambda: eventlet.Event().wait(), id="event-wait"),
        pytest.param(lambda: _SOCKETPAIR[0].recv(1), id="socket-recv"),
    ],
)
def test_green_blocking_call_on_the_loop_raises_a_clear_error(blocking_call: object) -> None:
    async def main() -> None:
        with pytest.raises(bridge.BlockingCallError, match=r"bridge\.to_async") as info:
            blocking_call()  # type: ignore[operator]
        assert "event loop" in str(info.value)
        # The loop and the hub are fine afterwards.
        assert await eventlet.spawn(lambda: eventlet.sleep(0) or "ok") == "ok"

    asyncio.run(asyncio.wait_for(main(), BOUND))


def test_sleep_zero_on_the_loop_is_a_no_op_as_in_eventlets_mainloop() -> None:
    async def main() -> str:
        eventlet.sleep(0)
        hub().schedule_call_global(0, eventlet.sleep, 0)  # from a timer callback too
        return await eventlet.spawn(lambda: "still fine")

    assert asyncio.run(asyncio.wait_for(main(), BOUND)) == "still fine"


def test_statistics_and_repr_show_the_state() -> None:
    eventlet.sleep(0)
    h = hub()
    stats = h.statistics()
    assert stats.mode == "owner"
    timer = h.schedule_call_global(BOUND, lambda: None)
    assert h.statistics().timers == stats.timers + 1
    timer.cancel()
    assert h.statistics().timers == stats.timers
    assert "owner" in repr(h)
    with pytest.raises(AttributeError):
        stats.mode = "guest"  # type: ignore[misc]


def test_asyncio_run_from_a_greenthread_is_refused_as_on_eventlets_hub() -> None:
    async def noop() -> None:
        return None

    def scenario() -> str:
        coro = noop()
        try:
            asyncio.run(coro)
        except RuntimeError as exc:
            coro.close()
            return str(exc)
        return "ran"

    assert "running event loop" in eventlet.spawn(scenario).wait()


def test_owner_and_guest_helpers_really_use_those_modes() -> None:
    assert run_owner(lambda: (eventlet.sleep(0), hub().mode)[1]) == "owner"
    assert run_guest(lambda: hub().mode) == "guest"


def test_python_version_supported() -> None:
    assert sys.version_info >= (3, 10)


def test_killing_a_greenthread_after_the_hub_died_does_not_wake_green_main() -> None:
    # eventlet's TestDeadRunLoop.test_kill, without its assertion on the identity
    # of hub.greenlet (excluded in compat/eventlet_suite.py).
    h = hub()
    g = eventlet.spawn(h.switch)
    eventlet.sleep(0)
    with pytest.raises(KeyboardInterrupt):
        h.greenlet.throw(KeyboardInterrupt())
    g.kill()

    class NothingWokeUs(Exception):
        pass

    with pytest.raises(NothingWokeUs), eventlet.Timeout(0.05, NothingWokeUs()):
        h.switch()


def test_a_greenthread_outliving_a_dead_hub_greenlet_returns_to_the_new_one() -> None:
    # eventlet's TestDeadRunLoop.test_parent, likewise.
    h = hub()
    eventlet.sleep(0)
    g = eventlet.spawn(lambda: None)
    with pytest.raises(KeyboardInterrupt):
        h.greenlet.throw(KeyboardInterrupt())
    assert not g.dead

    class BackInTheRunLoop(Exception):
        pass

    with pytest.raises(BackInTheRunLoop), eventlet.Timeout(0.05, BackInTheRunLoop()):
        h.switch()
    assert g.dead


def test_a_dropped_long_lived_listener_does_not_shadow_the_fds_next_owner() -> None:
    # green zmq's pattern: a listener registered for a socket's life, dropped at
    # close, the fd closed behind the hub's back, its number reused at once.
    import os

    h = hub()
    eventlet.sleep(0)
    a, b = socket.socketpair()
    fileno = a.fileno()
    listener = h.add(h.READ, fileno, lambda fd: None, lambda exc: None, None)
    h.remove(listener)
    os.close(a.detach())  # a raw close: the hub hears nothing
    b.close()
    c, d = socket.socketpair()
    try:
        assert c.fileno() == fileno  # the lowest free number again
        woken = eventlet.Event()
        listener = h.add(h.READ, fileno, lambda fd: woken.ready() or woken.send("woken"),
                         lambda exc: None, None)  # fmt: skip
        d.sendall(b"x")
        with eventlet.Timeout(BOUND):
            assert woken.wait() == "woken"
        h.remove(listener)
    finally:
        c.close()
        d.close()


def test_work_handed_over_after_asyncio_run_returned_waits_for_the_next_loop() -> None:
    # The hub is left on the closed loop of an asyncio.run() that returned;
    # work handed over from another thread then waits, and runs once this
    # thread runs green code again (no error for work that does run).
    run_guest(lambda: None)
    this_hub = hub()
    ran = eventlet.event.Event()
    outcome: list[object] = []
    real_threading = eventlet.patcher.original("threading")

    def hand_over() -> None:
        try:
            this_hub.submit_threadsafe(lambda: ran.send("ran"))
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append("submitted")

    thread = real_threading.Thread(target=hand_over)
    thread.start()
    thread.join(BOUND)
    assert outcome == ["submitted"]
    with eventlet.Timeout(BOUND):
        assert ran.wait() == "ran"


def test_due_timers_and_ready_work_run_in_deadline_order(hub_mode: RunInMode) -> None:
    # eventlet keeps zero-delay work in its timer heap: a spawn made before a
    # 1 ms timer runs before it, one made after the timer was due runs after,
    # even when the hub next runs after both were due.
    def scenario() -> list[str]:
        order: list[str] = []
        done = eventlet.event.Event()
        eventlet.spawn(order.append, "spawned first")
        hub().schedule_call_global(0.001, order.append, "timer due second")
        held_until = time.monotonic() + 0.003
        while time.monotonic() < held_until:
            pass  # hold the hub: when it next runs, all of the above are due
        eventlet.spawn(order.append, "spawned third")
        hub().schedule_call_global(0.002, done.send)
        with eventlet.Timeout(BOUND):
            done.wait()
        return order

    assert hub_mode(scenario) == ["spawned first", "timer due second", "spawned third"]


def test_on_uvloop_the_hub_wakes_once_per_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvloop's timers have millisecond resolution and fire up to 1 ms early;
    # the hub's wake-up used to find its timer not yet due and re-arm, ~80
    # times per timer (found by the differential tests).
    uvloop = pytest.importorskip("uvloop")
    wakes = 0
    fire_due = Hub._fire_due

    def counting(self: Hub) -> None:
        nonlocal wakes
        wakes += 1
        fire_due(self)

    monkeypatch.setattr(Hub, "_fire_due", counting)

    def sleeper() -> None:
        for _ in range(20):
            eventlet.sleep(0.0104)

    async def main() -> None:
        await asyncio.wait_for(eventlet.spawn(sleeper), BOUND)

    uvloop.run(main())
    assert wakes <= 40
