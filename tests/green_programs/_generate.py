"""Seeded random green-only programs whose order is deterministic on eventlet's epolls hub.

A program is data (JSON-able lists and dicts), not source: ``_interpret`` runs
it and records a trace, the shrinker edits it, and a subprocess gets it as a
seed or as JSON. Nothing here imports eventlet.

What makes a program's order the same on every epolls run
----------------------------------------------------------
epolls runs in rounds: it fires the timers due when the round starts (every
``spawn``, ``sleep(0)`` and wake-up is a zero-delay timer; ties break on the
deadline, which is the clock when the timer was added), then polls the fds
once; a greenthread made ready during a round runs in the next one. That
order is fixed, except where eventlet itself leaves it open. The generator
keeps programs out of those places:

* *Wait sets.* ``Event`` waiters and ``Queue`` getters and putters are sets,
  woken in hash order (``id``-based: varies run to run). So every event has
  at most one waiter, every queue one consumer, and a bounded queue (whose
  ``put`` can block) one producer; a ``GreenThread`` has one joiner.
  ``Semaphore`` waiters are a FIFO deque: any number of actors may share one.
* *Several fds ready in one poll* are served in ``set`` order (hash order
  again). So one actor, ``io``, does all the socket work, one request at a
  time (send, then wait for the reply, the timeout or the server's close);
  the servers only answer. At most one fd turns ready per poll. Connections
  are set up (connect, accept) before the program starts and torn down
  after it ends, untraced.
* *Real time.* A timed step (``sleep``, a timeout, ``spawn_after``, a server
  delaying its reply) waits for a *phase*: the instant ``T0 + k * Q``, each
  phase used by exactly one timed step. Everything a phase sets off takes
  microseconds, far less than ``Q / 2``. The interpreter flags a run
  *disturbed* when a step came in the second half of its phase window, or
  when its probe greenthread (``_interpret._Run.probe``) found the process
  stalled across a phase: such a run is retried, never compared.

Deadlocks are avoided by construction, and bounded where they are not
(kills can leave a waiter alone): ops are generated in one global sequence,
and a step that blocks until another releases it is generated only after
that release (a ``get`` after enough ``put``\\s on its queue, a ``wait`` after
the ``send``, a ``join`` closes its target to further ops, a pool spawn that
may find the pool full closes the members already in it). A semaphore is
held across non-blocking steps only. Whatever still waits at the program's
last phase (``end_phase``) is reported and killed by the main greenthread.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

__all__ = ("GENERATOR_VERSION", "Program", "describe", "generate")

# Bumped whenever the same seed starts making a different program.
GENERATOR_VERSION = 2

# The phase length in milliseconds (see "Real time" above).
PHASE_MS = 12.0

Op = list[Any]


@dataclasses.dataclass
class Program:
    """One green-only program: who does what, and the shared objects they use.

    :ivar seed: the seed it was generated from (kept when it is shrunk).
    :ivar phase_ms: the phase length ``Q`` in milliseconds.
    :ivar queues: ``[kind, maxsize]`` per queue; kind is ``"light"``
        (``LightQueue``), ``"queue"`` (``Queue()``) or ``"bounded"``
        (``Queue(maxsize)``).
    :ivar events: how many ``eventlet.event.Event`` objects.
    :ivar sems: the initial value of each ``Semaphore``.
    :ivar pool_size: the ``GreenPool``'s size.
    :ivar conns: ``"unix"`` (a socketpair) or ``"tcp"`` (loopback) per connection,
        each served by a server greenthread ``s<i>``.
    :ivar main: top-level actors, ``[name, how, phase]``, spawned in order by
        the main greenthread (``how``: spawn, spawn_n, pool, after).
    :ivar actors: name -> list of ops (see ``describe`` for their meaning).
    :ivar killable: names of actors some op may kill (they release nothing
        another actor waits for).
    :ivar end_phase: the phase at which the main greenthread gives up waiting.
    """

    seed: int
    phase_ms: float
    queues: list[list[Any]]
    events: int
    sems: list[int]
    pool_size: int
    conns: list[str]
    main: list[list[Any]]
    actors: dict[str, list[Op]]
    killable: list[str]
    end_phase: int

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Program:
        return cls(**json.loads(text))

    def phases(self) -> list[int]:
        """Every phase a timed step of this program waits for, sorted."""
        found = []
        for ops in self.actors.values():
            for op in ops:
                found.extend(_op_phases(op))
        found.extend(p for _, _, p in self.main if p is not None)
        return sorted(found)

    def size(self) -> int:
        return sum(len(ops) for ops in self.actors.values()) + len(self.main)

    def __repr__(self) -> str:
        return f"<green program, seed {self.seed}: {len(self.actors)} actors, {self.size()} ops>"


def _op_phases(op: Op) -> list[int]:
    kind = op[0]
    if kind == "sleep":
        return [op[1]]
    if kind in ("get", "put", "wait", "acquire"):
        return [op[2]] if len(op) > 2 and op[2] is not None else []
    if kind == "spawn":
        return [op[3]] if op[3] is not None else []
    if kind == "req":
        return [p for p in (op[3], op[4]) if p is not None]
    return []


class _Builder:
    """The state of one generation: what exists, and what may still block on what."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.actors: dict[str, list[Op]] = {}
        self.killable: list[str] = []
        self.open: list[str] = []  # actors that may get more ops
        self.handles: list[str] = []  # actors spawned with a GreenThread (joinable, killable)
        self.joined: list[str] = []
        self.killed: list[str] = []  # targets of a kill op already
        self.next_phase = 1
        self.timed_budget = rng.choice((0, 0, 1, 2, 3, 4))
        self.queues: list[list[Any]] = []
        self.q_consumer: dict[int, str] = {}
        self.q_producer: dict[int, str] = {}  # bounded queues only
        self.q_puts: dict[int, int] = {}
        self.q_gets: dict[int, int] = {}  # every get, timed or not
        self.q_sure_gets: dict[int, int] = {}  # gets without a timeout
        self.events_sent: list[int] = []  # sent, not yet waited for
        self.events_unsent: list[int] = []  # waited for with a timeout, not yet sent
        self.n_events = 0
        self.sems: list[int] = []
        self.section: dict[str, tuple[int, int]] = {}  # actor -> (sem, ops left in it)
        self.pool_size = rng.randint(1, 3)
        self.pool_members: list[str] = []
        self.conns: list[str] = []
        self.conn_open: list[int] = []  # may be closed
        self.conn_dirty: list[int] = []  # usable, never closed (see _op_req)

    # -- helpers ---------------------------------------------------------------

    def phase(self) -> int | None:
        """A fresh phase for a timed step, or None when the budget is spent."""
        if self.timed_budget <= 0:
            return None
        self.timed_budget -= 1
        p = self.next_phase
        self.next_phase += 1
        return p

    def new_actor(self, killable: bool) -> str:
        name = f"a{sum(1 for n in self.actors if n != 'io')}"
        self.actors[name] = []
        self.open.append(name)
        if killable:
            self.killable.append(name)
        return name

    def close(self, name: str) -> None:
        if name in self.open:
            self.open.remove(name)
        self.section.pop(name, None)

    # -- op choice -------------------------------------------------------------

    def step(self) -> None:
        rng = self.rng
        if not self.open:
            return
        name = rng.choice(self.open)
        ops = self.actors[name]
        if name in self.section:
            self._section_step(name)
            return
        killable = name in self.killable
        choices: list[tuple[str, int]] = [("yield", 6), ("sleep", 1), ("acquire", 2)]
        choices += [("get", 5), ("wait", 3), ("join", 1)]
        if killable:
            # Long waits, so that a kill is likely to find it blocked.
            choices += [("wait", 3), ("sleep", 1)]
        else:
            choices += [("put", 6), ("send", 3), ("spawn", 3), ("kill", 3)]
        if name == "io":
            choices += [("req", 12), ("close", 2)]
        kinds, weights = zip(*choices, strict=True)
        for _ in range(8):
            kind = rng.choices(kinds, weights)[0]
            op = getattr(self, "_op_" + kind)(name)
            if op is not None:
                ops.append(op)
                return
        ops.append(["yield"])

    def _section_step(self, name: str) -> None:
        sem, left = self.section[name]
        rng = self.rng
        if left <= 0:
            self.actors[name].append(["release", sem])
            del self.section[name]
            return
        self.section[name] = (sem, left - 1)
        op = None
        kind = rng.choice(("yield", "yield", "sleep", "put", "send"))
        if kind == "sleep":
            op = self._op_sleep(name)
        elif kind == "put" and name not in self.killable:
            op = self._op_put(name, unbounded_only=True)
        elif kind == "send" and name not in self.killable:
            op = self._op_send(name)
        self.actors[name].append(op or ["yield"])

    def _op_yield(self, name: str) -> Op:
        return ["yield"]

    def _op_sleep(self, name: str) -> Op | None:
        p = self.phase()
        return None if p is None else ["sleep", p]

    def _op_put(self, name: str, unbounded_only: bool = False) -> Op | None:
        rng = self.rng
        if not self.queues or rng.random() < 0.3:
            kind = rng.choice(("light", "light", "queue", "bounded"))
            if unbounded_only and kind == "bounded":
                kind = "light"
            self.queues.append([kind, rng.randint(1, 2) if kind == "bounded" else 0])
        q = rng.randrange(len(self.queues))
        kind, maxsize = self.queues[q]
        if kind == "bounded":
            if unbounded_only or self.q_producer.setdefault(q, name) != name:
                return None
            # The n-th put (1-based) can block until n - maxsize sure gets ran.
            n = self.q_puts.get(q, 0) + 1
            if self.q_sure_gets.get(q, 0) < n - maxsize:
                p = self.phase()
                if p is None:
                    return None
                self.q_puts[q] = n
                return ["put", q, p, rng.choice(("arg", "ctx"))]
        self.q_puts[q] = self.q_puts.get(q, 0) + 1
        return ["put", q]

    def _op_get(self, name: str) -> Op | None:
        rng = self.rng
        mine = [q for q in range(len(self.queues)) if self.q_consumer.get(q, name) == name]
        if not mine:
            return None
        q = rng.choice(mine)
        if self.queues[q][0] == "bounded" and name in self.killable:
            return None  # a killed consumer would leave the producer blocked
        self.q_consumer[q] = name
        gets = self.q_gets.get(q, 0)
        if self.q_puts.get(q, 0) > gets and rng.random() < 0.8:
            self.q_gets[q] = gets + 1
            self.q_sure_gets[q] = self.q_sure_gets.get(q, 0) + 1
            return ["get", q]
        p = self.phase()
        if p is None:
            return None
        self.q_gets[q] = gets + 1
        return ["get", q, p, rng.choice(("arg", "ctx"))]

    def _op_send(self, name: str) -> Op:
        rng = self.rng
        if self.events_unsent and rng.random() < 0.5:
            ev = self.events_unsent.pop(0)
        else:
            ev = self.n_events
            self.n_events += 1
            self.events_sent.append(ev)
        return ["send", ev]

    def _op_wait(self, name: str) -> Op | None:
        rng = self.rng
        if self.events_sent and rng.random() < (0.5 if name in self.killable else 0.8):
            ev = self.events_sent.pop(rng.randrange(len(self.events_sent)))
            return ["wait", ev]
        p = self.phase()
        if p is None:
            return None
        ev = self.n_events
        self.n_events += 1
        self.events_unsent.append(ev)
        return ["wait", ev, p, rng.choice(("arg", "ctx"))]

    def _op_acquire(self, name: str) -> Op | None:
        rng = self.rng
        if not self.sems or rng.random() < 0.3:
            self.sems.append(rng.randint(1, 2))
        s = rng.randrange(len(self.sems))
        self.section[name] = (s, rng.randint(0, 3))
        if rng.random() < 0.25:
            p = self.phase()
            if p is not None:
                return ["acquire", s, p]
        return ["acquire", s]

    def _op_join(self, name: str) -> Op | None:
        targets = [t for t in self.handles if t != name and t not in self.joined]
        if not targets:
            return None
        target = self.rng.choice(targets)
        if target == "io":
            return None  # io stays open: it is the only actor that does I/O
        # Closed: every op of the target comes before the join (no deadlock).
        self.joined.append(target)
        self.close(target)
        return ["join", target]

    def _op_spawn(self, name: str) -> Op | None:
        rng = self.rng
        how = rng.choice(("spawn", "spawn", "spawn_n", "pool", "after"))
        phase = None
        if how == "after":
            phase = self.phase()
            if phase is None:
                how = "spawn"
        if how == "pool" and name in self.pool_members:
            how = "spawn"  # a member waiting for a slot may wait for its own
        if how == "pool":
            if len(self.pool_members) >= self.pool_size:
                # This spawn may wait for a pool slot: the members so far must
                # be able to finish without anything generated after it.
                for member in self.pool_members:
                    self.close(member)
            self.pool_members.append("")
        child = self.new_actor(killable=how != "spawn_n" and rng.random() < 0.4)
        if how == "pool":
            self.pool_members[-1] = child
        if how != "spawn_n":
            self.handles.append(child)
        return ["spawn", child, how, phase]

    def _op_kill(self, name: str) -> Op | None:
        targets = [t for t in self.killable if t in self.handles and t != name]
        fresh = [t for t in targets if t not in self.killed]
        if not targets or (not fresh and self.rng.random() < 0.8):
            return None
        target = self.rng.choice(fresh or targets)
        self.killed.append(target)
        return ["kill", target]

    def _op_req(self, name: str) -> Op | None:
        rng = self.rng
        if not (self.conn_open or self.conn_dirty) or (len(self.conns) < 3 and rng.random() < 0.15):
            self.conns.append(rng.choice(("unix", "tcp")))
            self.conn_open.append(len(self.conns) - 1)
        c = rng.choice(self.conn_open + self.conn_dirty)
        mode = rng.choice(("fast", "fast", "fast", "fast", "slow", "noreply"))
        slow = timeout = None
        if mode == "slow":
            slow = self.phase()
            if slow is None:
                mode = "fast"
            elif rng.random() < 0.4:
                timeout = self.phase()  # later than the reply: cancelled
                if timeout is not None and rng.random() < 0.5:
                    slow, timeout = timeout, slow  # earlier: it fires
                    # The server still sleeps when io goes on: a close now
                    # would race the late reply (EPIPE or not), so never close.
                    if c in self.conn_open:
                        self.conn_open.remove(c)
                        self.conn_dirty.append(c)
        elif mode == "noreply":
            timeout = self.phase()
            if timeout is None:
                mode = "fast"
        elif rng.random() < 0.15:
            timeout = self.phase()
        return ["req", c, mode, slow, timeout]

    def _op_close(self, name: str) -> Op | None:
        if not self.conn_open:
            return None
        c = self.rng.choice(self.conn_open)
        self.conn_open.remove(c)
        return ["close", c]


def generate(seed: int) -> Program:
    """The program of ``seed`` (the same one in every process and Python version)."""
    rng = random.Random(seed)
    b = _Builder(rng)
    main: list[list[Any]] = []
    with_io = rng.random() < 0.7
    if with_io:
        b.actors["io"] = []
        b.open.append("io")
        b.handles.append("io")
        main.append(["io", "spawn", None])
    for _ in range(rng.randint(1, 3)):
        how = rng.choice(("spawn", "spawn", "spawn_n", "after"))
        phase = b.phase() if how == "after" else None
        if how == "after" and phase is None:
            how = "spawn"
        name = b.new_actor(killable=how != "spawn_n" and rng.random() < 0.3)
        if how != "spawn_n":
            b.handles.append(name)
        main.append([name, how, phase])
    rng.shuffle(main)
    for _ in range(rng.randint(8, 40)):
        b.step()
    for name in list(b.section):  # close open sections
        sem, _ = b.section.pop(name)
        b.actors[name].append(["release", sem])
    return Program(
        seed=seed,
        phase_ms=PHASE_MS,
        queues=b.queues,
        events=b.n_events,
        sems=b.sems,
        pool_size=b.pool_size,
        conns=b.conns,
        main=main,
        actors=b.actors,
        killable=b.killable,
        end_phase=b.next_phase + 1,
    )


def _describe_op(op: Op) -> str:
    kind, *args = op
    at = "until phase {}".format
    if kind == "yield":
        return "eventlet.sleep(0)"
    if kind == "sleep":
        return f"eventlet.sleep({at(args[0])})"
    if kind in ("put", "get", "wait", "acquire"):
        target = {"put": "q", "get": "q", "wait": "ev", "acquire": "sem"}[kind]
        call = f"{target}{args[0]}.{kind}()"
        if len(args) > 1 and args[1] is not None:
            style = args[2] if len(args) > 2 else "arg"
            how = "timeout=" if style == "arg" else "inside eventlet.Timeout "
            call += f" ({how}{at(args[1])})"
        return call
    if kind == "send":
        return f"ev{args[0]}.send(label)"
    if kind == "release":
        return f"sem{args[0]}.release()  (if held)"
    if kind == "spawn":
        child, how, phase = args
        return f"{how}({child})" + (f" after {at(phase)}" if phase is not None else "")
    if kind == "kill":
        return f"eventlet.kill({args[0]})"
    if kind == "join":
        return f"{args[0]}.wait()"
    if kind == "req":
        c, mode, slow, timeout = args
        text = f"c{c}: send a request ({mode}"
        if slow is not None:
            text += f": server replies at phase {slow}"
        text += "), read its reply"
        if timeout is not None:
            text += f" inside eventlet.Timeout {at(timeout)}"
        return text
    if kind == "close":
        return f"c{args[0]}.close(); wait until server s{args[0]} saw EOF"
    return repr(op)


def describe(program: Program) -> str:
    """The program as readable pseudo-code (for failure messages)."""
    lines = [
        f"# green program, seed {program.seed} (generator v{GENERATOR_VERSION}); "
        f"phase k = T0 + k * {program.phase_ms:g} ms",
        f"# queues {program.queues}  events {program.events}  semaphores {program.sems}  "
        f"pool size {program.pool_size}  connections {program.conns}  "
        f"killable {program.killable}  end at phase {program.end_phase}",
        "main: "
        + "; ".join(
            f"{how}({name})" + (f" at phase {p}" if p is not None else "")
            for name, how, p in program.main
        ),
    ]
    for name, ops in program.actors.items():
        lines.append(f"{name}:")
        lines.extend(f"  {i}: {_describe_op(op)}" for i, op in enumerate(ops))
    return "\n".join(lines)
