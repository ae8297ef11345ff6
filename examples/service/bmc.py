"""Legacy: the BMC line protocol, its green client, and a green simulator of a rack of BMCs.

Protocol, one exchange per connection: the client sends ``POWER <node>
<on|off>\\n`` or ``STATUS <node>\\n``; the BMC answers ``OK <node> <on|off>\\n``
or ``ERR <reason>\\n``. Written as eventlet code always was: green sockets,
a GreenPool per server, ``eventlet.Timeout`` around each exchange.

``POWER`` is idempotent (powering on a node that is on changes nothing):
that is what lets a conductor repeat a job that another conductor died
doing.

The simulator stands in for the hardware: it answers for any node name
(a node it has not seen is off), after ``bmc_delay`` seconds; a node whose
name starts with ``stuck-`` never answers (a hung BMC: the client's
``eventlet.Timeout`` has to fire). ``--role bmc`` runs it as a process of
its own, shared by the API and conductor processes of a cluster.
"""

from __future__ import annotations

import eventlet
import eventlet.event
import eventlet.greenpool

STUCK = "stuck-"


class BMCError(Exception):
    """The BMC refused the command."""


def exchange(address: tuple[str, int], command: str, timeout: float) -> tuple[str, str]:
    """Send one command to the BMC at ``address``; return ``(node, power state)``.

    :raises eventlet.Timeout: no answer within ``timeout`` seconds.
    :raises BMCError: the BMC refused the command.
    :raises OSError: the BMC could not be reached.
    """
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

    def __init__(self, host: str, port: int = 0, delay: float = 0.002) -> None:
        self.delay = delay
        self.power: dict[str, str] = {}
        self.commands = 0
        self.listener = eventlet.listen((host, port))
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.pool = eventlet.greenpool.GreenPool()
        self._closing = eventlet.event.Event()

    def serve_forever(self) -> None:
        """Accept connections until :meth:`close`; run in a greenthread."""
        try:
            while True:
                conn, _ = self.listener.accept()
                self.pool.spawn_n(self._handle, conn)
        except OSError:  # the listener was closed
            pass

    def close(self) -> None:
        """Stop accepting, release hung exchanges, and wait for the ones in progress."""
        self.listener.close()
        if not self._closing.ready():
            self._closing.send()
        self.pool.waitall()

    def _handle(self, conn: eventlet.greenio.GreenSocket) -> None:
        try:
            words = conn.makefile("rb").readline().decode().split()
            if len(words) > 1 and words[1].startswith(STUCK):
                self._closing.wait()  # a hung BMC: it never answers
                return
            eventlet.sleep(self.delay)  # the BMC takes its time
            conn.sendall(self._answer(words).encode() + b"\n")
        except OSError:
            pass  # the client gave up (its Timeout fired) and closed the connection
        finally:
            conn.close()

    def _answer(self, words: list[str]) -> str:
        if len(words) == 3 and words[0] == "POWER" and words[2] in ("on", "off"):
            command, node, state = words
        elif len(words) == 2 and words[0] == "STATUS":
            (command, node), state = words, ""
        else:
            return "ERR bad command"
        self.commands += 1
        if command == "POWER":
            self.power[node] = state
        return f"OK {node} {self.power.get(node, 'off')}"
