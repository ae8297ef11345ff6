"""What the scanner knows about eventlet and the standard library: data only.

* :data:`REPLACEMENTS`: each eventlet API, its asyncio replacement and what
  to use during the migration;
* :func:`api_key`: the API a dotted ``eventlet.*`` name stands for;
* :data:`EVENTLET_BLOCKING`: eventlet calls that block the caller (in an
  ``async def`` they block the loop);
* :data:`IMPLICIT`: standard-library (and common client) calls that are
  green only because ``monkey_patch()`` ran, with the patch each needs
  (the names of :mod:`bridge._cli._patches`), whether the call itself
  blocks, and the asyncio way.
"""

from __future__ import annotations

import dataclasses

# API -> (asyncio replacement, what to use during the migration)
REPLACEMENTS: dict[str, tuple[str, str]] = {
    "spawn": ("asyncio.create_task / TaskGroup.create_task", "bridge.spawn_async (green side)"),
    "spawn_n": ("asyncio.create_task", "bridge.spawn_async (green side)"),
    "spawn_after": ("loop.call_later + create_task", "keep; hub timers run on the loop"),
    "sleep": ("await asyncio.sleep()", "bridge.to_async / @bridge.portal"),
    "GreenPool": ("asyncio.TaskGroup + asyncio.Semaphore", "bridge.to_async per call"),
    "GreenPile": ("asyncio.gather / TaskGroup", "bridge.to_async per call"),
    "Event": ("asyncio.Event / Future", "bridge.Event (.green face for legacy code)"),
    "Queue": ("asyncio.Queue", "bridge.Queue (.green face for legacy code)"),
    "LightQueue": ("asyncio.Queue", "bridge.Queue"),
    "LifoQueue": ("asyncio.LifoQueue", "bridge.Queue"),
    "PriorityQueue": ("asyncio.PriorityQueue", "bridge.Queue"),
    "Semaphore": ("asyncio.Semaphore", "bridge.Semaphore (.green face)"),
    "BoundedSemaphore": ("asyncio.BoundedSemaphore", "bridge.Semaphore"),
    "Lock": ("asyncio.Lock", "bridge.Lock (.green face)"),
    "Timeout": ("asyncio.timeout()", "eventlet.Timeout works around bridge.await_"),
    "with_timeout": ("asyncio.wait_for()", "eventlet.Timeout works around bridge.await_"),
    "tpool": ("asyncio.to_thread / loop.run_in_executor", "bridge.from_thread for callbacks"),
    "wsgi": ("an asyncio HTTP server (aiohttp, an ASGI server)", "eventlet.wsgi on bridge.hub"),
    "monkey_patch": (
        "nothing: drop it when no module needs green stdlib",
        "keep it; bridge keeps asyncio native",
    ),
    "green": ("asyncio streams, aiohttp, asyncio subprocess", "keep; runs on the same loop"),
    "getcurrent": ("asyncio.current_task()", "green code: unchanged"),
    "corolocal": ("contextvars.ContextVar", "contextvars cross bridge's adapters"),
    "backdoor": ("python -m asyncio, aiomonitor", "bind it to 127.0.0.1 only"),
    "listen": ("asyncio.start_server", "unchanged on bridge.hub"),
    "connect": ("asyncio.open_connection", "unchanged on bridge.hub"),
    "serve": ("asyncio.start_server", "unchanged on bridge.hub"),
    "wrap_ssl": ("asyncio streams with ssl=", "unchanged on bridge.hub"),
    "hubs": ("the asyncio loop's API", "EVENTLET_HUB=bridge.hub"),
    "spawn_for_awaitable": ("await the coroutine", "bridge.await_"),
    "kill": ("task.cancel()", "bridge.TaskHandle.kill for tasks"),
    "debug": ("asyncio debug mode; bridge.detect_blocking", "bridge.detect_blocking"),
}
OTHER = ("see the asyncio documentation", "bridge.to_async / bridge.await_")

# eventlet module (after "eventlet.") -> the API key it stands for.
MODULE_API = {
    "greenpool": "GreenPool",
    "queue": "Queue",
    "event": "Event",
    "semaphore": "Semaphore",
    "timeout": "Timeout",
    "tpool": "tpool",
    "wsgi": "wsgi",
    "corolocal": "corolocal",
    "backdoor": "backdoor",
    "hubs": "hubs",
    "green": "green",
    "debug": "debug",
    "greenthread": "spawn",
    "lock": "Lock",
    "patcher": "monkey_patch",
    "asyncio": "spawn_for_awaitable",
}


def api_key(rest: list[str]) -> str:
    """The API of ``eventlet.<rest...>``; ``""`` for the bare package.

    ``["queue", "Queue"]`` -> ``"Queue"``, ``["green", "socket"]`` ->
    ``"green"``, ``["greenthread", "sleep"]`` -> ``"sleep"``.
    """
    if not rest:
        return ""
    head = rest[0]
    if head == "green":
        return "green"
    if head in REPLACEMENTS:
        return head
    if head in MODULE_API and len(rest) > 1 and rest[1] in REPLACEMENTS:
        return rest[1]
    return MODULE_API.get(head, head)


# Dotted eventlet names (without "eventlet.") whose call blocks the caller,
# -> the asyncio way. Methods of eventlet objects (q.get(), ev.wait()) cannot
# be told statically; the functions below can.
EVENTLET_BLOCKING: dict[str, str] = {
    "sleep": "await asyncio.sleep()",
    "greenthread.sleep": "await asyncio.sleep()",
    "with_timeout": "await asyncio.wait_for(...)",
    "timeout.with_timeout": "await asyncio.wait_for(...)",
    "connect": "await asyncio.open_connection()",
    "convenience.connect": "await asyncio.open_connection()",
    "serve": "await asyncio.start_server() (then serve_forever)",
    "convenience.serve": "await asyncio.start_server() (then serve_forever)",
    "wsgi.server": "an asyncio HTTP server (bridge.wsgi.handler on aiohttp)",
    "tpool.execute": "await asyncio.to_thread(...)",
    "hubs.trampoline": "loop.add_reader / asyncio streams",
    "patcher.import_patched": "a plain import",
}


def eventlet_blocking(rest: list[str]) -> str | None:
    """The asyncio way for a blocking ``eventlet.<rest>`` call, or None if it does not block."""
    dotted = ".".join(rest)
    fix = EVENTLET_BLOCKING.get(dotted)
    if fix is None and rest and rest[0] == "green" and len(rest) > 2:
        # eventlet.green.time.sleep, eventlet.green.subprocess.run, ...
        implicit = IMPLICIT.get(".".join(rest[1:]))
        if implicit is not None and implicit.blocks:
            return implicit.fix
    return fix


@dataclasses.dataclass(frozen=True)
class Implicit:
    """A stdlib call made green by ``monkey_patch()``."""

    patch: str  # a name of bridge._cli._patches.PATCHES
    blocks: bool  # does the call itself wait (in async def it blocks the loop)?
    fix: str  # the asyncio way


def _table() -> dict[str, Implicit]:
    table: dict[str, Implicit] = {}

    def add(names: str, patch: str, blocks: bool, fix: str) -> None:
        for name in names.split():
            table[name] = Implicit(patch, blocks, fix)

    add("time.sleep", "time", True, "await asyncio.sleep()")
    add("socket.create_connection", "socket", True, "await asyncio.open_connection()")
    add(
        "socket.getaddrinfo socket.gethostbyname socket.gethostbyname_ex socket.gethostbyaddr "
        "socket.getfqdn socket.getnameinfo",
        "socket", True, "await loop.getaddrinfo() / loop.getnameinfo()",
    )  # fmt: skip
    add("socket.socket socket.socketpair socket.fromfd ssl.wrap_socket ssl.SSLContext",
        "socket", False, "asyncio streams (asyncio.open_connection / start_server)")  # fmt: skip
    add("urllib.request.urlopen", "socket", True, "aiohttp, or await asyncio.to_thread(urlopen)")
    add("http.client.HTTPConnection http.client.HTTPSConnection urllib3.PoolManager "
        "urllib3.HTTPConnectionPool httplib2.Http requests.Session requests.sessions.Session "
        "xmlrpc.client.ServerProxy", "socket", False, "aiohttp.ClientSession")  # fmt: skip
    add(
        "requests.get requests.post requests.put requests.delete requests.patch requests.head "
        "requests.options requests.request",
        "socket", True, "await aiohttp.ClientSession().get(...) (or httpx.AsyncClient)",
    )  # fmt: skip
    add("pymysql.connect pymysql.Connect pymysql.connections.Connection", "socket", True,
        "an asyncio driver (aiomysql, asyncmy), or await asyncio.to_thread(...)")  # fmt: skip
    add("smtplib.SMTP smtplib.SMTP_SSL ftplib.FTP telnetlib.Telnet", "socket", True,
        "an asyncio client (aiosmtplib, ...), or await asyncio.to_thread(...)")  # fmt: skip
    add("socketserver.TCPServer socketserver.ThreadingTCPServer socketserver.UDPServer "
        "http.server.HTTPServer wsgiref.simple_server.make_server",
        "socket", False, "asyncio.start_server / an asyncio HTTP server")  # fmt: skip
    add("threading.Thread threading.Timer _thread.start_new_thread _thread.start_new",
        "thread", False, "asyncio.create_task, or asyncio.to_thread for blocking work")  # fmt: skip
    add("threading.Lock threading.RLock threading.Condition threading.Semaphore "
        "threading.BoundedSemaphore threading.Event _thread.allocate_lock",
        "thread", False, "asyncio's primitive (or bridge's, for both worlds)")  # fmt: skip
    add("threading.local", "thread", False, "contextvars.ContextVar")
    add("queue.Queue queue.LifoQueue queue.PriorityQueue queue.SimpleQueue",
        "thread", False, "asyncio.Queue, or bridge.Queue for both worlds")  # fmt: skip
    add("concurrent.futures.ThreadPoolExecutor", "thread", False,
        "asyncio.to_thread / loop.run_in_executor (bridge keeps them native)")  # fmt: skip
    add("select.select", "select", True, "loop.add_reader / asyncio streams")
    add("select.poll select.epoll selectors.DefaultSelector selectors.SelectSelector "
        "selectors.PollSelector selectors.EpollSelector",
        "select", False, "loop.add_reader / asyncio streams")  # fmt: skip
    add("os.wait os.waitpid", "os", True, "await (await asyncio.create_subprocess_exec()).wait()")
    add("os.read os.write", "os", True, "asyncio streams over the pipe (loop.connect_read_pipe)")
    add("subprocess.run subprocess.call subprocess.check_call subprocess.check_output "
        "subprocess.getoutput subprocess.getstatusoutput", "subprocess", True,
        "await asyncio.create_subprocess_exec(...), then await proc.communicate()")  # fmt: skip
    add("subprocess.Popen", "subprocess", False, "asyncio.create_subprocess_exec")
    add("oslo_concurrency.processutils.execute oslo_concurrency.processutils.trycmd "
        "oslo_concurrency.processutils.ssh_execute", "subprocess", True,
        "await asyncio.create_subprocess_exec(...)")  # fmt: skip
    return table


IMPLICIT: dict[str, Implicit] = _table()

# The first name of every IMPLICIT entry: a reference rooted elsewhere is not looked up.
IMPLICIT_ROOTS = frozenset(name.split(".")[0] for name in IMPLICIT)

# Old and vendored spellings -> today's module (Python 2 era trees, six.moves).
MODULE_ALIASES: dict[str, str] = {
    "Queue": "queue",
    "thread": "_thread",
    "httplib": "http.client",
    "urllib2": "urllib.request",
    "SocketServer": "socketserver",
    "BaseHTTPServer": "http.server",
    "xmlrpclib": "xmlrpc.client",
    "six.moves.queue": "queue",
    "six.moves._thread": "_thread",
    "six.moves.http_client": "http.client",
    "six.moves.urllib": "urllib",
    "six.moves.urllib.request": "urllib.request",
    "six.moves.socketserver": "socketserver",
    "six.moves.xmlrpc_client": "xmlrpc.client",
    "six.moves.BaseHTTPServer": "http.server",
    "requests.api": "requests",
}

# Imports that make a module async code.
ASYNC_PACKAGES = frozenset(("asyncio", "aiohttp", "anyio", "trio"))
