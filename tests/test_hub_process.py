"""The hub in whole processes: each scenario is a small program in a fresh interpreter.

What is pinned here is process-global: the order of ``eventlet.monkey_patch()``
and the imports of asyncio/aiohttp, a process moving between green main and
``asyncio.run`` (also on uvloop), KeyboardInterrupt and other signals,
``os.fork()``, a second OS thread with its own hub, errors in callbacks,
``hub.abort()``, and eventlet's backdoor, green subprocess and tpool. None of
that can be undone inside the test process (a patched module stays patched, a
signal handler or a forked child outlives the test), so every scenario runs
with ``EVENTLET_HUB=bridge.hub`` in a subprocess, and the test asserts on its
exit code and its printed lines.

Inside the programs every wait is bounded (``eventlet.Timeout``,
``asyncio.wait_for``) and synchronisation uses events, never sleeps; the only
real delay is a real thread waiting a moment before it sends a signal, so
that the signal usually finds the loop idle (the assertions hold either way).
"""

from __future__ import annotations

import pytest

from tests.isolated import assert_prints

# -- 1. monkey patching order --------------------------------------------------

NATIVE_ASYNCIO = """
if ORDER == "patch-first":
    import eventlet

    eventlet.monkey_patch()
    import asyncio

    import aiohttp
    import aiohttp.web
else:
    import asyncio

    import aiohttp
    import aiohttp.web
    import eventlet

    eventlet.monkey_patch()
import _socket
import socket

import eventlet.asyncio
import eventlet.greenio
import eventlet.hubs
from eventlet import patcher

real_threading = patcher.original("threading")
MAIN_THREAD = real_threading.get_ident()


def check_loop(loop):
    # A real epoll (green select has none), and a real self-pipe socket
    # (_socket.socket is the C type under every unpatched socket class).
    selector = loop._selector
    assert type(selector).__name__ == "EpollSelector", type(selector)
    epoll_type = type(selector._selector)
    assert (epoll_type.__module__, epoll_type.__name__) == ("select", "epoll"), epoll_type
    assert not isinstance(loop._ssock, eventlet.greenio.GreenSocket), type(loop._ssock)
    assert isinstance(loop._ssock, _socket.socket), type(loop._ssock)


def where_am_i():
    current = real_threading.current_thread()
    return real_threading.get_ident(), current is real_threading.main_thread()


async def check_threads():
    loop = asyncio.get_running_loop()
    ident, is_main = await asyncio.wait_for(loop.run_in_executor(None, where_am_i), 10)
    assert ident != MAIN_THREAD and not is_main, ("run_in_executor", ident, is_main)
    ident, is_main = await asyncio.wait_for(asyncio.to_thread(where_am_i), 10)
    assert ident != MAIN_THREAD and not is_main, ("to_thread", ident, is_main)


def check_green_sockets():
    assert socket.socket is eventlet.greenio.GreenSocket, socket.socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve():
        conn, _ = server.accept()
        conn.sendall(conn.recv(64))
        conn.close()

    with eventlet.Timeout(10):
        gt = eventlet.spawn(serve)
        client = socket.create_connection(server.getsockname())
        client.sendall(b"green")
        assert client.recv(64) == b"green"
        gt.wait()
    client.close()
    server.close()


async def aiohttp_round_trip():
    async def hello(request):
        return aiohttp.web.Response(text="hello")

    app = aiohttp.web.Application()
    app.router.add_get("/", hello)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                assert response.status == 200, response.status
                assert await response.text() == "hello"
    finally:
        await runner.cleanup()


def owner():
    hub = eventlet.hubs.get_hub()
    check_green_sockets()
    assert hub.mode == "owner", hub
    check_loop(hub.loop)
    with eventlet.Timeout(10):
        eventlet.asyncio.spawn_for_awaitable(check_threads()).wait()
    print("owner ok")


async def guest_main():
    loop = asyncio.get_running_loop()
    check_loop(loop)
    await check_threads()
    await asyncio.wait_for(aiohttp_round_trip(), 10)
    await asyncio.wait_for(eventlet.spawn(check_green_sockets), 10)
    stats = eventlet.hubs.get_hub().statistics()
    assert stats.mode == "guest" and stats.loop is loop, stats
    print("guest ok")


for mode in MODES:
    if mode == "owner":
        owner()
    else:
        asyncio.run(guest_main())
print("done")
"""

MODE_ORDERS = pytest.mark.parametrize(
    "modes",
    [("owner", "guest", "owner"), ("guest", "owner", "guest")],
    ids=["owner-first", "guest-first"],
)


@MODE_ORDERS
def test_monkey_patch_before_importing_asyncio_keeps_asyncio_native(
    modes: tuple[str, ...],
) -> None:
    expected = [f"{mode} ok" for mode in modes] + ["done"]
    assert_prints(NATIVE_ASYNCIO, expected, ORDER="patch-first", MODES=modes)


@MODE_ORDERS
def test_monkey_patch_after_importing_asyncio_keeps_asyncio_native(
    modes: tuple[str, ...],
) -> None:
    expected = [f"{mode} ok" for mode in modes] + ["done"]
    assert_prints(NATIVE_ASYNCIO, expected, ORDER="import-first", MODES=modes)


# monkey_patch() called inside an async main, before any green code ran: the
# hub is first made *during* that call, too late for bridge to wrap it.
MONKEY_PATCH_IN_ASYNC_MAIN = """
import asyncio
import time

if BRIDGE_FIRST:
    import bridge
    import eventlet
else:
    import eventlet

    import bridge


async def main():
    eventlet.monkey_patch()
    loop = asyncio.get_running_loop()
    print(await asyncio.wait_for(asyncio.to_thread(lambda: "to_thread ok"), 10))
    print(await asyncio.wait_for(loop.run_in_executor(None, lambda: "executor ok"), 10))

    def green():
        time.sleep(0.001)  # patched: green
        return "green ok"

    print(await asyncio.wait_for(bridge.to_async(green)(), 10))


asyncio.run(main())
"""


# Not on uvloop: its shutdown_default_executor() starts a thread through its
# own reference to `threading`, which monkey_patch() patches in place (in
# either import order) and bridge cannot reach (docs/hub.md, "Monkey patching").
@pytest.mark.parametrize("bridge_first", [True, False], ids=["bridge-first", "eventlet-first"])
def test_monkey_patch_inside_an_async_main_keeps_executors_native(bridge_first: bool) -> None:
    expected = ["to_thread ok", "executor ok", "green ok"]
    assert_prints(MONKEY_PATCH_IN_ASYNC_MAIN, expected, BRIDGE_FIRST=bridge_first)


# -- 2. green main -> asyncio.run -> green main -----------------------------------

GREEN_MAIN_AND_ASYNCIO_RUN = """
import eventlet

eventlet.monkey_patch()
import asyncio
import socket

import eventlet.hubs

if USE_UVLOOP:
    import uvloop

    uvloop.install()


def loop_kind(loop):
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


# Green DNS at import time, in green main.
assert socket.getaddrinfo("localhost", 80), "no address for localhost"
hub = eventlet.hubs.get_hub()
ticker = Ticker()
eventlet.sleep(0)
stats = hub.statistics()
print("green main:", stats.mode, loop_kind(stats.loop))
ticker.wait()


async def main():
    loop = asyncio.get_running_loop()
    stats = hub.statistics()
    assert stats.loop is loop, (stats, loop)
    # The ticker, spawned and parked in green main, goes on on this loop.
    await ticker.wait_async()
    print("asyncio.run:", stats.mode, loop_kind(loop))


for _ in range(2):
    asyncio.run(main())
    ticker.wait()
    stats = hub.statistics()
    print("green main again:", stats.mode, loop_kind(stats.loop))
"""


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_green_work_keeps_running_across_asyncio_run_and_back(loop_kind: str) -> None:
    expected = [
        f"green main: owner {loop_kind}",
        f"asyncio.run: guest {loop_kind}",
        f"green main again: owner {loop_kind}",
        f"asyncio.run: guest {loop_kind}",
        f"green main again: owner {loop_kind}",
    ]
    assert_prints(GREEN_MAIN_AND_ASYNCIO_RUN, expected, USE_UVLOOP=loop_kind == "uvloop")


# await_ runs a task's first step eagerly where it can (stdlib loops; any loop
# on 3.12+); on every loop the step must behave as one the loop runs.
AWAIT_FIRST_STEP = """
import asyncio

import eventlet
import eventlet.hubs

import bridge

if USE_UVLOOP:
    import uvloop

    uvloop.install()


async def first_step(sleeper):
    refused = False
    try:
        eventlet.sleep(0.001)
    except bridge.BlockingCallError:
        refused = True
    sleeper.kill()  # switches to the sleeper; its finally runs; back here
    return asyncio.current_task() is not None, refused, sleeper.dead


def scenario(mode):
    sleeper = eventlet.spawn(eventlet.sleep, 30)
    eventlet.sleep(0)
    with eventlet.Timeout(10):
        print(mode, bridge.await_(first_step(sleeper)))


eventlet.sleep(0)
scenario("owner")


async def main():
    await asyncio.wait_for(eventlet.spawn(scenario, "guest"), 10)


asyncio.run(main())
"""


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_await_first_step_behaves_as_on_the_loop(loop_kind: str) -> None:
    expected = ["owner (True, True, True)", "guest (True, True, True)"]
    assert_prints(AWAIT_FIRST_STEP, expected, USE_UVLOOP=loop_kind == "uvloop")


# -- 3. KeyboardInterrupt -------------------------------------------------------

AFTER_INTERRUPT = """
def hub_still_works():
    assert eventlet.spawn(lambda: 42).wait() == 42
    eventlet.sleep(0.001)
    green_echo()
"""

SIGINT_GREEN_MAIN = (
    AFTER_INTERRUPT
    + """
import signal

import eventlet

ticker = Ticker()
ticker.wait()
for attempt in range(2):
    try:
        kill_soon(signal.SIGINT)
        eventlet.sleep(60)  # the program's bound is 20 s
    except KeyboardInterrupt:
        print("green main interrupted")
    else:
        print("eventlet.sleep(60) was not interrupted")
    hub_still_works()
    ticker.wait()
    print("hub works")
"""
)


def test_sigint_interrupts_green_main_and_the_hub_recovers() -> None:
    assert_prints(SIGINT_GREEN_MAIN, ["green main interrupted", "hub works"] * 2, timeout=20)


SIGINT_ASYNC_MAIN = (
    AFTER_INTERRUPT
    + """
import asyncio
import signal

import eventlet


async def main():
    gt = eventlet.spawn(eventlet.sleep, 60)
    kill_soon(signal.SIGINT)
    await asyncio.wait_for(gt, 60)  # the program's bound is 20 s
    print("greenthread finished: not interrupted")


try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("asyncio.run interrupted")
hub_still_works()
print("green code works")


async def main_again():
    await asyncio.wait_for(eventlet.spawn(hub_still_works), 10)
    return "asyncio.run works"


print(asyncio.run(main_again()))
"""
)


def test_sigint_interrupts_asyncio_run_awaiting_a_greenthread_and_the_hub_recovers() -> None:
    # On eventlet's own asyncio hub, a KeyboardInterrupt that unwinds the loop
    # leaves the hub refusing to run again: "Already running!" (eventlet #906).
    expected = ["asyncio.run interrupted", "green code works", "asyncio.run works"]
    assert_prints(SIGINT_ASYNC_MAIN, expected, timeout=20)


# -- 4. signal handlers wake the loop ---------------------------------------------

# The waits below are 60 s and the program's bound is 20 s: a loop that sleeps
# through the signal (and would only wake for the 60 s timer) fails the test.
SIGNALS_GREEN_MAIN = """
import signal

import eventlet
import eventlet.event

ticker = Ticker()
ticker.wait()
ticker.gt.kill()  # nothing but the wait below keeps the loop busy
for signum in (signal.SIGTERM, signal.SIGHUP):
    received = eventlet.event.Event()
    signal.signal(signum, lambda sig, frame: received.send(sig))
    kill_soon(signum)
    with eventlet.Timeout(60):
        print("green main got", signal.Signals(received.wait()).name)
"""

SIGNALS_ASYNC_MAIN = """
import asyncio
import signal

import eventlet
import eventlet.event


async def main():
    # The hub joins this loop (the wakeup is the hub's: asyncio itself does
    # not wake for handlers installed with signal.signal).
    await asyncio.wait_for(eventlet.spawn(eventlet.sleep, 0), 10)
    got = asyncio.Event()
    signal.signal(signal.SIGTERM, lambda sig, frame: got.set())
    kill_soon(signal.SIGTERM)
    await asyncio.wait_for(got.wait(), 60)
    print("async main got SIGTERM")

    received = eventlet.event.Event()
    signal.signal(signal.SIGHUP, lambda sig, frame: received.send(sig))
    waiter = eventlet.spawn(received.wait)
    kill_soon(signal.SIGHUP)
    sig = await asyncio.wait_for(waiter, 60)
    print("greenthread got", signal.Signals(sig).name)


asyncio.run(main())
"""


def test_signal_handlers_wake_green_main() -> None:
    expected = ["green main got SIGTERM", "green main got SIGHUP"]
    assert_prints(SIGNALS_GREEN_MAIN, expected, timeout=20)


def test_signal_handlers_wake_async_main() -> None:
    expected = ["async main got SIGTERM", "greenthread got SIGHUP"]
    assert_prints(SIGNALS_ASYNC_MAIN, expected, timeout=20)


# -- 5. os.fork() from green main -------------------------------------------------

# oslo.service's ProcessLauncher forks workers from a green main that has
# used the hub; the worker may call eventlet.hubs.use_hub() to get a fresh hub
# ("reopen"). eventlet's own asyncio hub fails that in the child with "Cannot
# run the event loop while another loop is running". The parent has a
# greenthread waiting on a socket when it forks, and the child kills its copy
# of that greenthread: the child must not unregister the parent's fd (it would
# if the two shared an epoll set).
FORK_FROM_GREEN_MAIN = """
import os
import traceback

import eventlet
import eventlet.greenio
import eventlet.hubs
from eventlet.green import os as green_os
from eventlet.green import socket


def read_one(sock):
    try:
        return sock.recv(1)
    except eventlet.hubs.IOClosed:
        return b"closed"


ticker = Ticker()
ticker.wait()
watched, poker = socket.socketpair()
reader = eventlet.spawn(read_one, watched)
eventlet.sleep(0.001)  # the reader now waits on `watched`
read_fd, write_fd = os.pipe()
pid = os.fork()
if pid == 0:
    status = 1
    try:
        os.close(read_fd)
        # The child's copy of the parent's reader goes; the fd stays open.
        reader.kill()
        assert reader.dead
        eventlet.sleep(0.001)
        if CHILD == "reopen":
            eventlet.hubs.use_hub()
            eventlet.sleep(0.001)
        assert eventlet.spawn(lambda: 42).wait() == 42
        green_echo(b"child echo")
        result = "child ok"
        status = 0
    except BaseException:
        result = traceback.format_exc()
    finally:
        os.write(write_fd, result.encode())
        os._exit(status)

os.close(write_fd)
with eventlet.Timeout(10):
    with eventlet.greenio.GreenPipe(read_fd, "rb") as pipe:
        print(pipe.read().decode())
    waited, status = green_os.waitpid(pid, 0)
assert waited == pid, (waited, pid)
print("child exit code", os.waitstatus_to_exitcode(status))
poker.sendall(b"x")
with eventlet.Timeout(10):
    print("parent reader got", reader.wait())
ticker.wait()
green_echo(b"parent echo")
print("parent hub works")
"""


@pytest.mark.parametrize(
    "child",
    ["keep", "reopen"],
    ids=["child-keeps-hub", "child-use_hub"],
)
def test_fork_from_green_main_gives_the_child_a_working_hub(child: str) -> None:
    expected = ["child ok", "child exit code 0", "parent reader got b'x'", "parent hub works"]
    assert_prints(FORK_FROM_GREEN_MAIN, expected, CHILD=child)


# The same replacement of the hub without a fork.
USE_HUB_IN_GREEN_MAIN = """
import asyncio

import eventlet
import eventlet.hubs

ticker = Ticker()
ticker.wait()  # the first hub has run its loop
ticker.gt.kill()
first = eventlet.hubs.get_hub()
eventlet.hubs.use_hub()
hub = eventlet.hubs.get_hub()
assert hub is not first and type(hub) is type(first), (hub, first)
eventlet.sleep(0.001)
assert eventlet.spawn(lambda: 42).wait() == 42
green_echo()
print("new hub works:", hub.mode)
print("then in asyncio.run:", run_guest(lambda: hub.mode))
"""


def test_use_hub_in_green_main_after_the_hub_ran_gives_a_working_hub() -> None:
    expected = ["new hub works: owner", "then in asyncio.run: guest"]
    assert_prints(USE_HUB_IN_GREEN_MAIN, expected)


# -- 6. a second OS thread ------------------------------------------------------

SECOND_THREAD = """
import traceback

import eventlet
import eventlet.hubs
from eventlet import patcher

import bridge.hub

real_threading = patcher.original("threading")
main_hub = eventlet.hubs.get_hub()
ticker = Ticker()
ticker.wait()
main_loop = main_hub.loop
server = eventlet.listen(("127.0.0.1", 0))


def thread_main():
    # Green code in a real thread: its own hub, its own loop; it reports to
    # the main thread's green server while both hubs run.
    try:
        hub = eventlet.hubs.get_hub()
        assert isinstance(hub, bridge.hub.Hub), hub
        assert hub is not main_hub
        assert eventlet.spawn(lambda: 7).wait() == 7
        eventlet.sleep(0.001)
        assert hub.loop is not main_loop, hub.loop
        green_echo(b"thread echo")
        report = b"thread ok"
    except BaseException:
        report = traceback.format_exc().encode()
    with eventlet.Timeout(10):
        client = eventlet.connect(server.getsockname())
        client.sendall(report)
        client.shutdown(1)
        assert client.recv(64) == b"ack"
        client.close()


def serve_one():
    conn, _ = server.accept()
    chunks = []
    while chunk := conn.recv(4096):
        chunks.append(chunk)
    conn.sendall(b"ack")
    conn.close()
    return b"".join(chunks).decode()


receiver = eventlet.spawn(serve_one)
thread = real_threading.Thread(target=thread_main)
thread.start()
with eventlet.Timeout(10):
    green_echo(b"main echo")  # concurrently with the thread's green work
    print(receiver.wait())
ticker.wait()
thread.join(10)
assert not thread.is_alive()
print("main hub works")
"""


def test_a_second_os_thread_gets_its_own_hub_on_its_own_loop() -> None:
    assert_prints(SECOND_THREAD, ["thread ok", "main hub works"])


# -- 7. errors in timers and greenthreads ------------------------------------------

ERRORS_ARE_REPORTED = """
import eventlet
import eventlet.event
import eventlet.hubs


def fail(where):
    raise ValueError(f"boom in {where} ({MODE})")


def scenario():
    hub = eventlet.hubs.get_hub()
    hub.schedule_call_global(0, fail, "ready timer")
    hub.schedule_call_global(0.001, fail, "timer")
    eventlet.spawn(fail, "greenthread")
    after = eventlet.event.Event()
    hub.schedule_call_global(0.005, after.send, "later work ran")
    with eventlet.Timeout(10):
        print(after.wait())
    assert eventlet.spawn(lambda: 42).wait() == 42
    green_echo()
    print("hub works")


if MODE == "owner":
    scenario()
else:
    run_guest(scenario)
"""


@pytest.mark.parametrize("mode", ["owner", "guest"])
def test_errors_in_timers_and_greenthreads_are_reported_and_the_hub_goes_on(mode: str) -> None:
    proc = assert_prints(ERRORS_ARE_REPORTED, ["later work ran", "hub works"], MODE=mode)
    for where in ("ready timer", "timer", "greenthread"):
        assert f"ValueError: boom in {where} ({mode})" in proc.stderr, proc.stderr
    assert proc.stderr.count("Traceback (most recent call last)") >= 3, proc.stderr


# -- 8. hub.abort() --------------------------------------------------------------

ABORT = """
import eventlet
import eventlet.hubs

hub = eventlet.hubs.get_hub()
ticker = Ticker()
ticker.wait()
with eventlet.Timeout(10):
    hub.abort(wait=True)
print("abort returned")
assert eventlet.spawn(lambda: 42).wait() == 42
eventlet.sleep(0.001)
green_echo()
ticker.wait()
print("hub works")
"""


def test_abort_wait_from_green_main_returns_and_the_hub_goes_on() -> None:
    assert_prints(ABORT, ["abort returned", "hub works"])


# -- 9. backdoor, green subprocess, tpool ------------------------------------------

ECOSYSTEM = """
import sys

import eventlet
from eventlet import backdoor, patcher, tpool
from eventlet.green import subprocess

real_threading = patcher.original("threading")
MAIN_THREAD = real_threading.get_ident()


def read_until_prompt(conn):
    data = b""
    while not data.endswith(b">>> "):
        chunk = conn.recv(4096)
        assert chunk, data
        data += chunk
    return data.decode()


def use_backdoor():
    server = eventlet.listen(("127.0.0.1", 0))
    serving = eventlet.spawn(backdoor.backdoor_server, server)
    with eventlet.Timeout(10):
        conn = eventlet.connect(server.getsockname())
        read_until_prompt(conn)
        conn.sendall(b"1+1\\n")
        reply = read_until_prompt(conn)
    conn.close()
    serving.kill()
    server.close()
    return reply.splitlines()[0]


def use_subprocess():
    with eventlet.Timeout(10):
        child = subprocess.Popen([sys.executable, "-c", "print('hi')"], stdout=subprocess.PIPE)
        out, _ = child.communicate()
    assert child.returncode == 0, child.returncode
    return out.decode().strip()


def use_tpool():
    with eventlet.Timeout(10):
        ident = tpool.execute(real_threading.get_ident)
    return "real thread" if ident != MAIN_THREAD else "main thread"


def scenario(mode):
    print(mode, "backdoor:", use_backdoor())
    print(mode, "subprocess:", use_subprocess())
    print(mode, "tpool:", use_tpool())


scenario("owner")
run_guest(scenario, "guest")
scenario("owner")
"""


def test_backdoor_green_subprocess_and_tpool_work_in_both_modes() -> None:
    expected = []
    for mode in ("owner", "guest", "owner"):
        expected += [f"{mode} backdoor: 2", f"{mode} subprocess: hi", f"{mode} tpool: real thread"]
    # (the backdoor prints its own lines too)
    assert_prints(ECOSYSTEM, expected, prefixes=("owner ", "guest "))


# aiohttp's run_app owns the process's main: it runs the loop until SIGTERM.
RUN_APP = """
import asyncio
import os
import signal

import eventlet
from aiohttp import web
# Imported here, in the main greenlet: on CPython 3.13, eventlet 0.41 fails an
# assertion importing threading from a greenthread (on its own hubs too).
from eventlet.green.urllib import request as green_request

import bridge


def legacy_lookup(name):
    eventlet.sleep(0.001)  # green I/O in the request path
    return "green " + name


async def handler(request):
    return web.Response(text=await bridge.to_async(legacy_lookup)(request.match_info["name"]))


def green_client(port):
    with eventlet.Timeout(10):
        for name in ("a", "b"):
            with green_request.urlopen(f"http://127.0.0.1:{port}/{name}") as response:
                print("got", response.read().decode())
    os.kill(os.getpid(), signal.SIGTERM)  # run_app's signal handler stops the app


async def start_client(app):
    port = app["site_port"]()
    app["client"] = eventlet.spawn(green_client, port)


app = web.Application()
app.router.add_get("/{name}", handler)
sockets = []
app["site_port"] = lambda: sockets[0].getsockname()[1]
app.on_startup.append(start_client)

import socket as real_socket

listener = real_socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
sockets.append(listener)
web.run_app(app, sock=listener, print=None, handle_signals=True)
print("run_app returned; hub mode", eventlet.hubs.get_hub().mode)
eventlet.sleep(0)
print("green main goes on")
"""


def test_aiohttp_run_app_hosts_green_code_and_stops_on_sigterm() -> None:
    expected = [
        "got green a",
        "got green b",
        "run_app returned; hub mode owner",
        "green main goes on",
    ]
    assert_prints(RUN_APP, expected)
