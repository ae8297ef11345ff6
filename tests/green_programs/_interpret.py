"""Run a green program on whatever eventlet hub this process uses, and record its trace.

The trace is the list of labelled steps in the order they happened: every
actor's start, each op when it completes (with what it got: the label of the
item, the event's value, ``timeout``...), its end or its death, every server
step, and the main greenthread's verdict at the end. Labels are unique
within a run (``<actor>.<op index> ...``), so two traces can be compared as
orders of the same steps. Each step also gets its time since ``T0`` (for
the disturbance check, never for comparison).

This module imports eventlet: import it only after ``EVENTLET_HUB`` is set.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import eventlet
import eventlet.event
import eventlet.greenpool
import eventlet.hubs
import eventlet.queue
import eventlet.semaphore
import greenlet
from eventlet.green import socket

from tests.green_programs._generate import Op, Program

__all__ = ("run_program",)

_monotonic = time.monotonic


class _Run:
    """The objects of one program run and the trace it records."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.q = program.phase_ms / 1000.0
        self.trace: list[str] = []
        self.times: list[float] = []
        self.stall: str | None = None
        self.t0 = 0.0
        self.queues: list[Any] = []
        for kind, maxsize in program.queues:
            if kind == "light":
                self.queues.append(eventlet.queue.LightQueue())
            elif kind == "queue":
                self.queues.append(eventlet.queue.Queue())
            else:
                self.queues.append(eventlet.queue.Queue(maxsize))
        self.events = [eventlet.event.Event() for _ in range(program.events)]
        self.sems = [eventlet.semaphore.Semaphore(v) for v in program.sems]
        self.pool = eventlet.greenpool.GreenPool(program.pool_size)
        self.handles: dict[str, Any] = {}
        self.started: set[str] = set()
        self.finished: set[str] = set()
        self.pc: dict[str, int] = {}
        self.live = 0
        self.done = eventlet.event.Event()
        self.clients: list[Any] = []
        self.servers: list[Any] = []
        self.server_threads: list[Any] = []
        self.closed = [eventlet.event.Event() for _ in program.conns]
        self.buffers = [b""] * len(program.conns)
        self.listeners: list[Any] = []

    # -- recording -------------------------------------------------------------

    def rec(self, label: str) -> None:
        self.trace.append(label)
        self.times.append((_monotonic() - self.t0) * 1000.0)

    def until(self, phase: int) -> float:
        """Seconds from now to ``phase`` (0 if it has passed)."""
        return max(0.0, self.t0 + phase * self.q - _monotonic())

    # -- setup and teardown ----------------------------------------------------

    def connect(self) -> None:
        for kind in self.program.conns:
            if kind == "unix":
                a, b = socket.socketpair()
            else:
                listener = socket.socket()
                listener.bind(("127.0.0.1", 0))
                listener.listen(1)
                self.listeners.append(listener)
                a = socket.socket()
                a.connect(listener.getsockname())
                b, _ = listener.accept()
                for s in (a, b):
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.clients.append(a)
            self.servers.append(b)
        for c in range(len(self.program.conns)):
            self.server_threads.append(eventlet.spawn(self.serve, c))

    def teardown(self) -> None:
        for gt in self.server_threads:
            gt.kill()
        for sock in [*self.clients, *self.listeners]:
            sock.close()
        eventlet.sleep(0)

    # -- the main greenthread ----------------------------------------------------

    def run(self) -> None:
        program = self.program
        self.connect()
        eventlet.sleep(0)  # the servers start and wait in recv
        self.t0 = _monotonic()
        probe = eventlet.spawn(self.probe)
        for name, how, phase in program.main:
            self.spawn(name, how, phase)
        if self.live and self.done.wait(timeout=self.until(program.end_phase)) is None:
            stuck = sorted(n for n in self.handles if n not in self.finished)
            self.rec("main end: stuck " + " ".join(f"{n}@{self.pc.get(n, '-')}" for n in stuck))
            for name in stuck:
                eventlet.kill(self.handles[name])
        probe.kill()
        self.teardown()

    def probe(self) -> None:
        """Check that no cascade of steps can have run into a phase (``stall``).

        Steps follow T0 or a phase's timer in a quick cascade. A cascade that
        the machine stalled until past the next phase would meet that phase's
        timer, and no step need show it. This greenthread wakes half-way to
        each phase, where nothing else runs: late by half a phase, the process
        stalled across that phase; a step recorded while it yields twice, a
        cascade was still running. It records no step, and meets no other
        greenthread in an undisturbed run.
        """
        half = self.q / 2
        program = self.program
        for phase in sorted({*program.phases(), program.end_phase}):
            at = self.t0 + phase * self.q - half
            eventlet.sleep(max(0.0, at - _monotonic()))
            late = (_monotonic() - at) * 1000.0
            if late > self.program.phase_ms / 2 - 1 and self.stall is None:
                self.stall = f"the probe half-way to phase {phase} woke {late:.2f} ms late"
            steps = len(self.trace)
            eventlet.sleep(0)
            eventlet.sleep(0)
            if len(self.trace) != steps and self.stall is None:
                self.stall = f"steps still ran half-way to phase {phase}: {self.trace[steps:]}"

    def spawn(self, child: str, how: str, phase: int | None) -> Any:
        self.live += 1
        if how == "spawn":
            handle = eventlet.spawn(self.actor, child)
        elif how == "spawn_n":
            handle = eventlet.spawn_n(self.actor, child)
        elif how == "pool":
            handle = self.pool.spawn(self.actor, child)
        elif how == "after":
            assert phase is not None
            delay = self.until(phase)
            handle = eventlet.spawn_after(delay, self.actor, child)
        else:
            raise ValueError(f"unknown spawn kind {how!r}")
        self.handles[child] = handle
        return handle

    def exited(self, name: str) -> None:
        self.finished.add(name)
        self.live -= 1
        if self.live == 0:
            self.done.send(True)

    # -- actors ----------------------------------------------------------------

    def actor(self, name: str) -> None:
        self.started.add(name)
        self.rec(f"{name} start")
        held: list[int] = []
        try:
            for i, op in enumerate(self.program.actors[name]):
                self.pc[name] = i
                getattr(self, "op_" + op[0])(name, i, op, held)
            self.pc[name] = len(self.program.actors[name])
            self.rec(f"{name} end")
        except greenlet.GreenletExit:
            self.rec(f"{name} killed@{self.pc.get(name)}")
        except Exception as exc:
            self.rec(f"{name} error@{self.pc.get(name)} {type(exc).__name__}: {exc}")
        finally:
            for s in held:
                self.sems[s].release()
                self.rec(f"{name} released sem{s} on exit")
            self.exited(name)

    @contextlib.contextmanager
    def timeout(self, phase: int, label: str) -> Iterator[None]:
        """``eventlet.Timeout`` until ``phase``; when it fires, record ``label`` instead."""
        delay = self.until(phase)
        with eventlet.Timeout(delay) as t:
            try:
                yield
            except eventlet.Timeout as exc:
                if exc is not t:
                    raise
                self.rec(label)

    def op_yield(self, name: str, i: int, op: Op, held: list[int]) -> None:
        eventlet.sleep(0)
        self.rec(f"{name}.{i} yielded")

    def op_sleep(self, name: str, i: int, op: Op, held: list[int]) -> None:
        delay = self.until(op[1])
        eventlet.sleep(delay)
        self.rec(f"{name}.{i} slept@{op[1]}")

    def op_put(self, name: str, i: int, op: Op, held: list[int]) -> None:
        q, label = op[1], f"{name}.{i}"
        queue = self.queues[q]
        if len(op) == 2:
            queue.put(label)
            self.rec(f"{label} put q{q}")
        elif op[3] == "arg":
            delay = self.until(op[2])
            try:
                queue.put(label, timeout=delay)
                self.rec(f"{label} put q{q}")
            except eventlet.queue.Full:
                self.rec(f"{label} put q{q}: full")
        else:
            with self.timeout(op[2], f"{label} put q{q}: timeout"):
                queue.put(label)
                self.rec(f"{label} put q{q}")

    def op_get(self, name: str, i: int, op: Op, held: list[int]) -> None:
        q, label = op[1], f"{name}.{i}"
        queue = self.queues[q]
        if len(op) == 2:
            self.rec(f"{label} got q{q}={queue.get()}")
        elif op[3] == "arg":
            delay = self.until(op[2])
            try:
                self.rec(f"{label} got q{q}={queue.get(timeout=delay)}")
            except eventlet.queue.Empty:
                self.rec(f"{label} got q{q}: empty")
        else:
            with self.timeout(op[2], f"{label} got q{q}: timeout"):
                self.rec(f"{label} got q{q}={queue.get()}")

    def op_send(self, name: str, i: int, op: Op, held: list[int]) -> None:
        self.events[op[1]].send(f"{name}.{i}")
        self.rec(f"{name}.{i} sent ev{op[1]}")

    def op_wait(self, name: str, i: int, op: Op, held: list[int]) -> None:
        ev, label = op[1], f"{name}.{i}"
        event = self.events[ev]
        if len(op) == 2:
            self.rec(f"{label} waited ev{ev}={event.wait()}")
        elif op[3] == "arg":
            delay = self.until(op[2])
            value = event.wait(timeout=delay)  # None when it times out
            self.rec(f"{label} waited ev{ev}={value}")
        else:
            with self.timeout(op[2], f"{label} waited ev{ev}: timeout"):
                self.rec(f"{label} waited ev{ev}={event.wait()}")

    def op_acquire(self, name: str, i: int, op: Op, held: list[int]) -> None:
        s, label = op[1], f"{name}.{i}"
        if len(op) == 2:
            self.sems[s].acquire()
            held.append(s)
            self.rec(f"{label} acquired sem{s}")
            return
        delay = self.until(op[2])
        if self.sems[s].acquire(timeout=delay):
            held.append(s)
            self.rec(f"{label} acquired sem{s}")
        else:
            self.rec(f"{label} acquire sem{s}: timeout")

    def op_release(self, name: str, i: int, op: Op, held: list[int]) -> None:
        s = op[1]
        if s in held:
            held.remove(s)
            self.sems[s].release()
            self.rec(f"{name}.{i} released sem{s}")
        else:
            self.rec(f"{name}.{i} release sem{s}: not held")

    def op_spawn(self, name: str, i: int, op: Op, held: list[int]) -> None:
        _, child, how, phase = op
        self.spawn(child, how, phase)
        self.rec(f"{name}.{i} spawned {child}")

    def op_kill(self, name: str, i: int, op: Op, held: list[int]) -> None:
        target, label = op[1], f"{name}.{i}"
        handle = self.handles.get(target)
        if handle is None:
            self.rec(f"{label} kill {target}: not spawned yet")
            return
        was_dead = handle.dead
        eventlet.kill(handle)
        if target not in self.started and target not in self.finished:
            # Killed before it ran: its actor() never starts, so never exits.
            self.rec(f"{label} killed {target} before it started")
            self.exited(target)
        else:
            self.rec(f"{label} killed {target}" + (" (already dead)" if was_dead else ""))

    def op_join(self, name: str, i: int, op: Op, held: list[int]) -> None:
        target, label = op[1], f"{name}.{i}"
        handle = self.handles.get(target)
        if handle is None:
            self.rec(f"{label} join {target}: not spawned yet")
            return
        try:
            handle.wait()
        except greenlet.GreenletExit:
            if not (handle.dead and target not in self.started):
                raise  # this actor was killed while it waited
            self.rec(f"{label} joined {target} (killed before it started)")
            return
        self.rec(f"{label} joined {target}")

    # -- the io actor and the servers -------------------------------------------

    def readline(self, c: int) -> str | None:
        while b"\n" not in self.buffers[c]:
            data = self.clients[c].recv(4096)
            if not data:
                return None
            self.buffers[c] += data
        line, self.buffers[c] = self.buffers[c].split(b"\n", 1)
        return line.decode()

    def op_req(self, name: str, i: int, op: Op, held: list[int]) -> None:
        _, c, mode, slow, timeout = op
        label = f"{name}.{i}"
        self.clients[c].sendall(f"{label} {mode} {slow or 0}\n".encode())
        self.rec(f"{label} sent on c{c}")

        def read_reply() -> None:
            while True:
                line = self.readline(c)
                if line is None:
                    self.rec(f"{label} eof on c{c}")
                    return
                if line == label:
                    self.rec(f"{label} reply on c{c}")
                    return
                self.rec(f"{label} stale reply {line} on c{c}")

        if timeout is None:
            read_reply()
        else:
            with self.timeout(timeout, f"{label} timeout on c{c}"):
                read_reply()

    def op_close(self, name: str, i: int, op: Op, held: list[int]) -> None:
        c = op[1]
        self.clients[c].close()
        self.rec(f"{name}.{i} closed c{c}")
        self.closed[c].wait()
        self.rec(f"{name}.{i} c{c} server gone")

    def serve(self, c: int) -> None:
        sock = self.servers[c]
        buf = b""
        try:
            while True:
                data = sock.recv(4096)
                if not data:
                    self.rec(f"s{c} eof")
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    label, mode, slow = line.decode().split()
                    self.rec(f"s{c} got {label}")
                    if mode == "noreply":
                        continue
                    if mode == "slow":
                        delay = self.until(int(slow))
                        eventlet.sleep(delay)
                        self.rec(f"s{c} slept@{slow} for {label}")
                    sock.sendall(label.encode() + b"\n")
        except greenlet.GreenletExit:
            pass  # teardown
        except OSError as exc:
            self.rec(f"s{c} {type(exc).__name__}")
        finally:
            sock.close()
            if not self.closed[c].ready():
                self.closed[c].send()


@contextlib.contextmanager
def _record_hub_errors(run: _Run) -> Iterator[None]:
    """Errors the hub swallows (a timer or fd callback that raised) go into the trace too."""
    hub = eventlet.hubs.get_hub()
    names = ("squelch_timer_exception", "squelch_exception", "squelch_generic_exception")
    saved = {n: hub.__dict__.get(n) for n in names}

    def recorder(name: str) -> Callable[..., None]:
        def squelch(_what: object, exc_info: Any = None) -> None:
            if exc_info is None:  # squelch_generic_exception(exc_info)
                exc_info = _what
            run.rec(f"hub {name}: {exc_info[0].__name__}: {exc_info[1]}")

        return squelch

    for n in names:
        setattr(hub, n, recorder(n))
    try:
        yield
    finally:
        for n, old in saved.items():
            if old is None:
                delattr(hub, n)
            else:
                setattr(hub, n, old)


def run_program(program: Program) -> dict[str, Any]:
    """Run ``program`` in the calling greenlet (green main, or a greenthread) and return
    ``{"trace": [...], "times": [...], "disturbed": reason or None}``.

    ``disturbed`` says why the run's order may owe to the machine rather than
    the hub (see ``_disturbance``); such a run is not compared.
    """
    run = _Run(program)
    with _record_hub_errors(run):
        run.run()
    return {
        "trace": run.trace,
        "times": [round(t, 3) for t in run.times],
        "disturbed": _disturbance(run, program),
    }


def _disturbance(run: _Run, program: Program) -> str | None:
    """Why this run's order may owe to the machine rather than the hub, or None.

    No step may come in the second half of its phase window, and the probe
    must have found every phase's approach quiet (see ``_generate``'s "Real
    time" and ``_Run.probe``).
    """
    if run.stall is not None:
        return run.stall
    q = program.phase_ms
    for label, t in zip(run.trace, run.times, strict=True):
        if t % q >= q / 2:
            return f"{label!r} at {t:.2f} ms, {t % q:.2f} ms into its phase window"
    return None


def hub_name() -> str:
    """The module of this thread's hub class (``eventlet.hubs.epolls``, ``bridge.hub``...)."""
    return type(eventlet.hubs.get_hub()).__module__
