"""Legacy: the BMC line protocol, its green client, and a green simulator of a rack of BMCs.

Protocol, one exchange per connection: the client sends ``POWER <node>
<on|off>\\n`` or ``STATUS <node>\\n``; the BMC answers ``OK <node> <on|off>\\n``
or ``ERR <reason>\\n``. Written as eventlet code always was: green sockets,
a GreenPool per server, ``eventlet.Timeout`` around each exchange.
"""

from __future__ import annotations

import eventlet
import eventlet.greenpool

from .settings import Settings


class BMCError(Exception):
    """The BMC refused the command."""


def exchange(address: tuple[str, int], command: str, timeout: float) -> tuple[str, str]:
    """Send one command to the BMC at ``address``; return ``(node, power state)``."""
    with eventlet.Timeout(timeout):
        sock = eventlet.connect(address)
        try:
            sock.sendall(command.encode() + b"\n")
            reply = sock.makefile("rb").readline().decode().split()
        finally:
            sock.close()
    if len(reply) != 3 or reply[0] != "OK":
        raise BMCError(" ".join(reply) or "connection closed")
    return reply[1], reply[2]


class Simulator:
    """A rack of simulated BMCs behind one green TCP server."""

    def __init__(self, settings: Settings) -> None:
        self.delay = settings.bmc_delay
        self.power = {f"node-{i}": "off" for i in range(settings.nodes)}
        self.listener = eventlet.listen((settings.host, 0))
        self.address: tuple[str, int] = self.listener.getsockname()
        self.pool = eventlet.greenpool.GreenPool()

    def serve_forever(self) -> None:
        """Accept connections until :meth:`close`; run in a greenthread."""
        try:
            while True:
                conn, _ = self.listener.accept()
                self.pool.spawn_n(self._handle, conn)
        except OSError:  # the listener was closed
            pass

    def close(self) -> None:
        self.listener.close()
        self.pool.waitall()

    def _handle(self, conn: eventlet.greenio.GreenSocket) -> None:
        try:
            words = conn.makefile("rb").readline().decode().split()
            eventlet.sleep(self.delay)  # the BMC takes its time
            conn.sendall(self._answer(words).encode() + b"\n")
        finally:
            conn.close()

    def _answer(self, words: list[str]) -> str:
        if len(words) == 3 and words[0] == "POWER" and words[2] in ("on", "off"):
            command, node, state = words
        elif len(words) == 2 and words[0] == "STATUS":
            (command, node), state = words, ""
        else:
            return "ERR bad command"
        if node not in self.power:
            return f"ERR no node {node}"
        if command == "POWER":
            self.power[node] = state
        return f"OK {node} {self.power[node]}"
