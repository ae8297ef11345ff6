"""Stateful property tests: bridge's primitives against a plain model (bridge/_sync/).

Each machine drives one primitive with random interleavings of operations of
both worlds -- async tasks and greenthreads acquiring, waiting, putting and
getting concurrently; timeouts (``asyncio.timeout``, ``asyncio.wait_for``,
the green faces' ``timeout=``, ``eventlet.Timeout``), cancellations
(``task.cancel()``) and kills (``greenthread.kill()``), some of them landing
between a wake-up and the moment the woken waiter runs -- and checks the
result against a model written here in plain Python: who holds a permit,
the FIFO order of the waiters, who is woken and with what, the queue's
contents, and the errors on misuse as asyncio and threading raise them.

How a step runs: a rule acts (starts one operation in a new task or
greenthread, or calls a non-blocking method inline), updates the model, then
*settles*: it lets the loop run until nothing is ready in the loop or the hub
(bounded; a step that does not settle fails). Operations started in earlier
steps have all either finished or parked by then, so each step is
deterministic, and the invariant compares every operation's outcome and the
primitive's state with the model. A wrong wake-up shows as an operation that
finished when the model says it waits, or the reverse; a lost wake-up, as one
that still waits.

Profiles: ``BRIDGE_HYPOTHESIS_PROFILE=ci`` (the default: fixed seeds, so CI
runs are reproducible, about a second per machine and hub mode), ``dev``
(random, about as long), ``soak`` (random, long: for local soak runs, as
``BRIDGE_HYPOTHESIS_PROFILE=soak pytest tests/test_sync_stateful.py -o
timeout=0``).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import itertools
import os
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import eventlet
import eventlet.greenthread
import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine as conjecture_engine
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

import bridge
from bridge import BoundedSemaphore
from bridge._core import current_hub

from .conftest import run_owner

# An operation's deadline that never expires during a test; timeouts that
# must expire are fired on purpose (see _Machine.interrupt).
LONG = 60.0
SETTLE_ROUNDS = 200

_COMMON = dict(
    deadline=None,
    # One bug, shrunk: shrinking several at once takes several times longer.
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILES = {
    "ci": settings(max_examples=20, stateful_step_count=30, database=None, **_COMMON),
    "dev": settings(max_examples=40, stateful_step_count=30, database=None, **_COMMON),
    "soak": settings(max_examples=2000, stateful_step_count=60, database=None, **_COMMON),
}
# CI runs are reproducible: fixed seeds. Several short runs, not one long
# one: hypothesis builds each example from earlier ones, so one run's
# examples are alike (one seed put 946 of a run's 1,650 Queue states at
# maxsize=1), and four seeds reach more corners for the same cost.
SEEDS: dict[str, list[int | None]] = {"ci": [1, 2, 3, 4], "dev": [None], "soak": [None]}
PROFILE_NAME = os.environ.get("BRIDGE_HYPOTHESIS_PROFILE", "ci")
if PROFILE_NAME not in PROFILES:
    raise ValueError(
        f"BRIDGE_HYPOTHESIS_PROFILE={PROFILE_NAME!r}: use one of {', '.join(PROFILES)}"
    )
PROFILE = PROFILES[PROFILE_NAME]


# How long a guest-mode run may take: under the 60 s test timeout, except for
# soak runs (run them with -o timeout=0).
GUEST_BOUND = 6 * 3600 if PROFILE_NAME == "soak" else 55

# Shrinking a failure took up to 150 s in trials, past the 60 s test timeout,
# which then ends the whole run with a stack dump instead of the failing
# steps. Hypothesis has no setting for it; its engine's constant bounds it.
SHRINK_SECONDS = 20


def run_machine(machine: type[RuleBasedStateMachine], settings: settings = PROFILE) -> None:
    """Run ``machine`` under the profile's settings, once per seed of the profile."""
    budget = getattr(conjecture_engine, "MAX_SHRINKING_SECONDS", None)
    if budget is not None and PROFILE_NAME != "soak":
        conjecture_engine.MAX_SHRINKING_SECONDS = SHRINK_SECONDS  # type: ignore[attr-defined]
    try:
        for chosen in SEEDS[PROFILE_NAME]:
            seeded = (
                machine if chosen is None else seed(chosen)(type(machine.__name__, (machine,), {}))
            )
            run_state_machine_as_test(seeded, settings=settings)
    finally:
        if budget is not None:
            conjecture_engine.MAX_SHRINKING_SECONDS = budget  # type: ignore[attr-defined]


# How an operation waits, per world. "timeout" arms an asyncio.timeout (3.11+)
# that _Machine.interrupt can fire; "eventlet_timeout" an eventlet.Timeout it
# can fire; "timeout_arg" passes the green face's timeout= (never expiring).
ASYNC_FLAVOURS = ["plain", "wait_for"] + (["timeout"] if hasattr(asyncio, "timeout") else [])
GREEN_FLAVOURS = ["plain", "timeout_arg", "eventlet_timeout"]
WAYS = st.sampled_from(
    [("async", f) for f in ASYNC_FLAVOURS] + [("green", f) for f in GREEN_FLAVOURS]
)
FACES = st.sampled_from(["async", "green"])
HOW = st.sampled_from(["cancel", "timeout"])
ORDER = st.sampled_from(["act_first", "interrupt_first"])
PICK = st.integers(min_value=0, max_value=15)
# An interruption racing a wake-up: which waiter, how, and which lands first.
# (Hypothesis draws a strategy's first choice most often: the race first.)
RACE = st.one_of(st.tuples(PICK, HOW, ORDER), st.none())
# Calls that do not wait, run inline: *_nowait(), acquire(blocking=False), a
# green timeout=0 (or -1 for Event.wait). A rule has both kinds of ways:
# swarm testing switches rules off per example, and a kind of call in a rule
# of its own would be missing from many.
INLINE = ("nowait", "timeout=0", "timeout=-1")
WAYS_OR_INLINE = st.sampled_from(
    [("async", f) for f in ASYNC_FLAVOURS]
    + [("green", f) for f in GREEN_FLAVOURS]
    + [("green", "nowait"), ("green", "timeout=0"), ("green", "timeout=-1")]
)
PUT_OR_GET_WAYS = st.sampled_from(
    [("async", f) for f in ASYNC_FLAVOURS]
    + [("green", f) for f in GREEN_FLAVOURS]
    + [("async", "nowait"), ("green", "nowait"), ("green", "timeout=0")]
)
# Non-blocking calls right after a wake-up, before the woken waiter runs:
# on both faces, in this order (a call that fails changes nothing).
NEWCOMER = st.sampled_from([("async", "green"), ("green", "async"), None])

Outcome = tuple[str, Any]  # ("ok", value) or ("raised", exception class name)
_F = TypeVar("_F", bound=Callable[..., None])
_M = TypeVar("_M", bound=type)


def action(**arguments: st.SearchStrategy[Any]) -> Callable[[_F], _F]:
    """Mark a machine's method as one of its actions, drawn with these arguments."""

    def mark(method: _F) -> _F:
        method._action_arguments = arguments  # type: ignore[attr-defined]
        return method

    return mark


def steps(**weights: int) -> Callable[[_M], _M]:
    """Give the machine one rule, ``step``, that runs one of its actions, drawn by weight.

    Not a rule per action: hypothesis switches rules off per example (swarm
    testing), and many examples then ran one or two kinds of step, 30 times
    over; here every example mixes every action, at rates we choose.
    """

    def add_step_rule(machine: _M) -> _M:
        branches = []
        for name, weight in weights.items():
            arguments = getattr(machine, name)._action_arguments
            branch = st.fixed_dictionaries(arguments).map(functools.partial(_named, name))
            branches += [branch] * weight

        def step(self: Any, action: tuple[str, dict[str, Any]]) -> None:
            name, arguments = action
            getattr(self, name)(**arguments)

        machine.step = rule(action=st.one_of(branches))(step)  # type: ignore[attr-defined]
        return machine

    return add_step_rule


def _named(name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return name, arguments


@dataclasses.dataclass(eq=False)
class Op:
    """One operation, run by a task or a greenthread; the model's and the real outcome."""

    label: str
    world: str
    flavour: str
    outcome: Outcome | None = None  # what happened; None: still running
    expected: Outcome | None = None  # what the model says; None: waits
    handle: Any = None  # the asyncio task, or the GreenThread
    timeout: Any = None  # the asyncio.Timeout or eventlet.Timeout to fire
    item: int | None = None  # what a putter puts
    # What the green face's timeout= gives when it expires (None: no timeout=).
    timed_out: Outcome | None = None

    def __repr__(self) -> str:
        return f"<{self.label} outcome={self.outcome} expected={self.expected}>"

    @property
    def raceable(self) -> bool:
        # asyncio.wait_for before 3.12 runs the call in a task of its own and,
        # cancelled while that task finishes, returns the result instead of
        # raising: whether a wake-up or a cancel wins is asyncio's to decide.
        return self.flavour != "wait_for"


async def _run_async(op: Op, make: Callable[[], Awaitable[Any]]) -> None:
    try:
        if op.flavour == "wait_for":
            value = await asyncio.wait_for(make(), LONG)
        elif op.flavour == "timeout":
            async with asyncio.timeout(None) as cm:  # type: ignore[attr-defined]
                op.timeout = cm
                value = await make()
        else:
            value = await make()
    except BaseException as exc:  # the outcome is the test's to check
        op.outcome = ("raised", type(exc).__name__)
        return
    op.outcome = ("ok", value)


def _run_green(op: Op, call: Callable[[float | None], Any]) -> None:
    try:
        if op.flavour == "eventlet_timeout":
            op.timeout = eventlet.Timeout(LONG)
            try:
                value = call(None)
            finally:
                op.timeout.cancel()
        else:
            value = call(LONG if op.flavour == "timeout_arg" else None)
    except BaseException as exc:  # GreenletExit and Timeout included
        op.outcome = ("raised", type(exc).__name__)
        return
    op.outcome = ("ok", value)


class _Machine(RuleBasedStateMachine):
    """What every machine shares: starting, interrupting and settling operations."""

    def __init__(self) -> None:
        super().__init__()
        self.hub = current_hub()
        self.ops: list[Op] = []
        self._numbers = itertools.count(1)

    # -- what each machine tells us ------------------------------------------

    def parked(self) -> list[Op]:
        """The operations the model says wait, in every wait queue of the primitive."""
        raise NotImplementedError

    def forget(self, op: Op) -> None:
        """Take ``op`` out of the model's wait queues (it was interrupted)."""
        raise NotImplementedError

    def check_state(self) -> None:
        """Compare the primitive's own state with the model's."""
        raise NotImplementedError

    # -- operations -------------------------------------------------------------

    def start(
        self,
        what: str,
        way: tuple[str, str],
        make_async: Callable[[], Awaitable[Any]],
        call_green: Callable[[float | None], Any],
    ) -> Op:
        world, flavour = way
        op = Op(f"#{next(self._numbers)} {world} {what} ({flavour})", world, flavour)
        if world == "async":
            op.handle = self.hub.loop.create_task(_run_async(op, make_async))
        else:
            op.handle = eventlet.spawn(_run_green, op, call_green)
        self.ops.append(op)
        return op

    def wait_queues(self) -> list[Any]:
        """The primitive's ``WaitQueue`` objects."""
        raise NotImplementedError

    def prepare_interrupt(
        self, op: Op, how: str, *, racing: bool = False
    ) -> tuple[Callable[[], object], Outcome, bool]:
        """How to cancel, kill or time out ``op``: the call, its outcome, and if it is *soft*.

        A soft interruption is the expiry of the green face's ``timeout=``: a
        wake-up that comes in the same round wins over it, and the call
        succeeds. The others (cancel, kill, a Timeout raised) always win.
        ``racing``: the interruption must land before ``op`` runs again, even
        if it was just woken. Firing an ``asyncio.timeout`` takes a loop
        callback, which may come after the wake-up: a cancel instead.
        """
        if op.world == "async":
            if how == "timeout" and op.flavour == "timeout" and not racing:
                cm, loop = op.timeout, self.hub.loop

                def fire() -> None:
                    loop.call_soon(lambda: op.outcome is None and cm.reschedule(loop.time()))

                return fire, ("raised", "TimeoutError"), False
            return op.handle.cancel, ("raised", "CancelledError"), False
        if how == "timeout" and op.flavour == "eventlet_timeout":
            # As the Timeout's timer would, only sooner.
            return functools.partial(op.handle.kill, op.timeout), ("raised", "Timeout"), False
        if how == "timeout" and op.flavour == "timeout_arg" and op.timed_out is not None:
            # What the timeout= timer calls when it expires, called as a timer
            # would call it: from the hub, at its next round.
            (waiter,) = [
                w
                for q in self.wait_queues()
                for w in q._waiters
                if getattr(w, "greenlet", None) is op.handle
            ]
            return (
                functools.partial(self.hub.schedule_call_global, 0, waiter.time_out),
                op.timed_out,
                True,
            )
        return op.handle.kill, ("raised", "GreenletExit"), False

    def interrupt(self, op: Op, how: str) -> Outcome:
        """Interrupt ``op`` now (nothing else going on); return its outcome."""
        fire, outcome, _ = self.prepare_interrupt(op, how)
        fire()
        return outcome

    def race(
        self,
        op: Op,
        how: str,
        order: str,
        act: Callable[[], object],
        model_act: Callable[[], object],
    ) -> bool:
        """``act()`` (a wake-up) with ``op`` interrupted just after it, or just before.

        Either way the interruption lands before anything runs: a woken op
        that is interrupted passes its wake-up on, so the model forgets the
        op first, then acts -- except for a soft interruption, which loses
        to a wake-up of ``op`` itself. Returns whether the state is settled
        as the model says now, before any task ran: not so if a task woken
        by ``act()`` was then cancelled, for it gives its wake-up back only
        when it runs (asyncio's own Lock holds on to it the same way).
        """
        fire, outcome, soft = self.prepare_interrupt(op, how, racing=True)
        if order == "interrupt_first":
            fire()
            act()
        else:
            act()
            fire()
        if not soft:
            self.forget(op)
            op.expected = outcome
        model_act()
        if soft and op in self.parked():  # not woken by act(): it times out
            self.forget(op)
            op.expected = outcome
        return order == "interrupt_first" or op.world == "green"

    def wake(
        self,
        race: tuple[int, str, str] | None,
        candidates: list[Op],
        act: Callable[[], object],
        model_act: Callable[[], object],
    ) -> bool:
        """``act()``, a wake-up; raced by an interruption of one of ``candidates``.

        Returns as :meth:`race` does (True when not raced).
        """
        raceable = [op for op in candidates if op.raceable]
        if race is None or not raceable:
            act()
            model_act()
            return True
        pick, how, order = race
        return self.race(self.pick(raceable, pick), how, order, act, model_act)

    def pick(self, candidates: list[Op], pick: int) -> Op:
        return candidates[pick % len(candidates)]

    def settle(self) -> None:
        """Let the loop run until nothing is ready, in the loop or in the hub."""
        hub, loop = self.hub, self.hub.loop
        loop_ready = getattr(loop, "_ready", None)  # the stdlib loop's; uvloop has none
        quiet_needed = 2 if loop_ready is not None else 8
        quiet = 0
        for _ in range(SETTLE_ROUNDS):
            bridge.await_(asyncio.sleep(0))
            if hub._ready or hub._inbox or loop_ready:
                quiet = 0
            else:
                quiet += 1
                if quiet >= quiet_needed:
                    return
        raise AssertionError(f"the loop did not settle in {SETTLE_ROUNDS} rounds: {self.ops}")

    # -- rules every machine has ------------------------------------------------

    @action(pick=PICK, how=HOW)
    def interrupt_a_waiter(self, pick: int, how: str) -> None:
        if not self.parked():
            return
        op = self.pick(self.parked(), pick)
        self.forget(op)
        op.expected = self.interrupt(op, how)
        self.settle()

    @invariant()
    def outcomes_and_state_match_the_model(self) -> None:
        for op in self.ops:
            assert op.outcome == op.expected, op
        self.check_state()

    def teardown(self) -> None:
        for op in self.ops:
            if op.outcome is None:
                self.interrupt(op, "cancel")
        self.settle()
        left = [op for op in self.ops if op.outcome is None]
        assert not left, f"still running after every one was interrupted: {left}"


# -- Lock, Semaphore, BoundedSemaphore --------------------------------------------


class _PermitsMachine(_Machine):
    """Model: ``value`` free permits and a FIFO of waiters; a release wakes the first."""

    bound_error: ClassVar[str | None] = None  # what an over-release raises
    most_released: ClassVar[int] = 2  # release(n) of the green face, as threading's

    def __init__(self) -> None:
        super().__init__()
        self.value = 0
        self.bound: int | None = None
        self.waiting: list[Op] = []
        self.prim: Any = None

    def parked(self) -> list[Op]:
        return self.waiting

    def forget(self, op: Op) -> None:
        self.waiting.remove(op)

    def wait_queues(self) -> list[Any]:
        return [self.prim._permits._waiters]

    def check_state(self) -> None:
        permits = self.prim._permits
        assert permits._value == self.value >= 0
        assert permits._waiters.woken == 0  # settled: every wake-up was taken
        assert self.bound is None or self.value <= self.bound
        stats = self.prim.statistics()
        assert stats.waiters == len(self.waiting)
        assert stats.green_waiters == sum(op.world == "green" for op in self.waiting)
        assert self.prim.locked() == self.prim.green.locked() == (self.value == 0)

    def can_release(self) -> bool:
        return self.bound is None or self.value < self.bound

    def model_release(self, n: int = 1) -> None:
        for _ in range(n):
            if self.waiting:
                self.waiting.pop(0).expected = ("ok", True)
            else:
                self.value += 1

    def do_release(self, face: str, n: int = 1) -> str | None:
        """Release through ``face``; the name of the exception raised, or None."""
        try:
            if face == "async":
                for _ in range(n):
                    self.prim.release()
            elif n == 1:
                self.prim.green.release()
            else:
                self.prim.green.release(n)
        except Exception as exc:
            return type(exc).__name__
        return None

    def green_acquire(self, timeout: float | None) -> bool:
        if timeout is None:
            return bool(self.prim.green.acquire())
        return bool(self.prim.green.acquire(timeout=timeout))

    def newcomer_tries(self) -> None:
        """A green acquire that may not wait: it must not overtake a woken waiter."""
        assert self.prim.locked() == self.prim.green.locked() == (self.value == 0)
        got = self.prim.green.acquire(blocking=False)
        assert got == (self.value > 0)
        if got:
            self.value -= 1

    def acquire_inline(self, how: str) -> bool:
        """The green face's acquire that does not wait."""
        if how == "nowait":
            return bool(self.prim.green.acquire(blocking=False))
        # threading.Semaphore reads a negative timeout as "do not wait"
        return bool(self.prim.green.acquire(timeout=0 if how == "timeout=0" else -1))

    # Operations started in one step, each settled before the next starts.
    @action(ways=st.lists(WAYS_OR_INLINE, min_size=1, max_size=3))
    def acquire(self, ways: list[tuple[str, str]]) -> None:
        for way in ways:
            if way[1] in INLINE:
                got = self.acquire_inline(way[1])
                assert got == (self.value > 0)
                self.value -= got
            else:
                op = self.start("acquire", way, self.prim.acquire, self.green_acquire)
                op.timed_out = ("ok", False)
                if self.value > 0:
                    self.value -= 1
                    op.expected = ("ok", True)
                else:
                    self.waiting.append(op)
            self.settle()

    def released(self, face: str, n: int) -> None:
        raised = self.do_release(face, n)
        assert raised is None, raised

    @action(face=FACES, n=st.integers(min_value=1, max_value=2), race=RACE, newcomer=NEWCOMER)
    def release(
        self,
        face: str,
        n: int,
        race: tuple[int, str, str] | None,
        newcomer: tuple[str, str] | None,
    ) -> None:
        # A release wakes the first waiter; an interruption may land on a
        # waiter (maybe that one) before it runs, or just before the release;
        # a newcomer may try to acquire before the woken waiter runs.
        n = min(n, self.most_released)
        if self.bound is not None and self.value + n > self.bound:
            if face == "async":  # one at a time: the last one fails
                n = self.bound - self.value + 1
            # All or nothing on the green face (threading's release(n)).
            assert self.do_release(face, n) == self.bound_error
            if face == "async":
                self.model_release(n - 1)
        else:
            act = functools.partial(self.released, face, n)
            if self.wake(race, self.waiting, act, functools.partial(self.model_release, n)):
                if newcomer:
                    self.newcomer_tries()
        self.settle()


@steps(acquire=3, release=3, interrupt_a_waiter=1)
class LockMachine(_PermitsMachine):
    bound_error = "RuntimeError"
    most_released = 1  # threading.Lock.release() takes no n

    @initialize()
    def make(self) -> None:
        self.prim = bridge.Lock()
        self.value = self.bound = 1

    def acquire_inline(self, how: str) -> bool:
        # threading.Lock reads timeout=-1 as "forever": not one of these.
        acquire = self.prim.green.acquire
        return bool(acquire(timeout=0) if how == "timeout=0" else acquire(blocking=False))

    def green_acquire(self, timeout: float | None) -> bool:
        # threading.Lock's signature: timeout=-1 is "forever".
        return bool(self.prim.green.acquire(True, -1 if timeout is None else timeout))


@steps(acquire=3, release=3, interrupt_a_waiter=1)
class SemaphoreMachine(_PermitsMachine):
    @initialize(value=st.integers(min_value=0, max_value=2))
    def make(self, value: int) -> None:
        self.prim = bridge.Semaphore(value)
        self.value = value


@steps(acquire=3, release=3, interrupt_a_waiter=1)
class BoundedSemaphoreMachine(_PermitsMachine):
    bound_error = "ValueError"

    @initialize(value=st.integers(min_value=0, max_value=2), taken=st.integers(0, 2))
    def make(self, value: int, taken: int) -> None:
        self.prim = BoundedSemaphore(value)
        self.value = self.bound = value
        for _ in range(min(taken, value)):  # start with some permits out
            assert self.prim.green.acquire(blocking=False)
            self.value -= 1


# -- Event --------------------------------------------------------------------------


@steps(wait=3, set=2, clear=1, interrupt_a_waiter=1)
class EventMachine(_Machine):
    """Model: a flag and the waiters; set() wakes them all, True even after a clear()."""

    def __init__(self) -> None:
        super().__init__()
        self.flag = False
        self.waiting: list[Op] = []
        self.ev = bridge.Event()

    def parked(self) -> list[Op]:
        return self.waiting

    def forget(self, op: Op) -> None:
        self.waiting.remove(op)

    def wait_queues(self) -> list[Any]:
        return [self.ev._waiters]

    def check_state(self) -> None:
        assert self.ev.is_set() == self.ev.green.is_set() == self.flag
        stats = self.ev.statistics()
        assert stats.waiters == len(self.waiting)
        assert stats.green_waiters == sum(op.world == "green" for op in self.waiting)
        assert self.ev._waiters.woken == 0

    def model_set(self) -> None:
        self.flag = True
        for op in self.waiting:
            op.expected = ("ok", True)
        self.waiting.clear()

    def face(self, face: str) -> Any:
        return self.ev if face == "async" else self.ev.green

    def green_wait(self, timeout: float | None) -> bool:
        return self.ev.green.wait(timeout)

    @action(ways=st.lists(WAYS_OR_INLINE, min_size=1, max_size=3))
    def wait(self, ways: list[tuple[str, str]]) -> None:
        for way in ways:
            if way[1] in INLINE:  # the green face's wait(0) or wait(-1): no wait
                assert self.ev.green.wait(0 if way[1] == "timeout=0" else -1) == self.flag
            else:
                op = self.start("wait", way, self.ev.wait, self.green_wait)
                op.timed_out = ("ok", False)
                if self.flag:
                    op.expected = ("ok", True)
                else:
                    self.waiting.append(op)
            self.settle()

    @action(face=FACES, race=RACE, then_clear=st.sampled_from([None, "async", "green"]))
    def set(self, face: str, race: tuple[int, str, str] | None, then_clear: str | None) -> None:
        # Every waiter woken by the set() returns True, though the flag may be
        # clear by the time it runs (asyncio.Event, threading.Event); one may
        # be interrupted just before or after the set().
        self.wake(race, self.waiting, self.face(face).set, self.model_set)
        if then_clear:
            self.face(then_clear).clear()
            self.flag = False
        self.settle()

    @action(face=FACES)
    def clear(self, face: str) -> None:
        self.face(face).clear()
        self.flag = False
        self.settle()


# -- Queue --------------------------------------------------------------------------


@steps(put=3, get=3, join=1, task_done=1, wake_a_waiter=3, interrupt_a_waiter=1)
class QueueMachine(_Machine):
    """Model: items, maxsize, FIFO getters and putters, unfinished tasks, joiners."""

    def __init__(self) -> None:
        super().__init__()
        self.items: collections.deque[int] = collections.deque()
        self.maxsize = 0
        self.getters: list[Op] = []
        self.putters: list[Op] = []
        self.joiners: list[Op] = []
        self.unfinished = 0
        self._item_numbers = itertools.count(100)
        self.q: Any = None

    # Bounded more often than not: putters wait only in a bounded queue.
    @initialize(maxsize=st.sampled_from([1, 2, 1, 0]))
    def make(self, maxsize: int) -> None:
        self.q = bridge.Queue(maxsize)
        self.maxsize = maxsize

    def parked(self) -> list[Op]:
        return self.getters + self.putters + self.joiners

    def forget(self, op: Op) -> None:
        for waiting in (self.getters, self.putters, self.joiners):
            if op in waiting:
                waiting.remove(op)

    def wait_queues(self) -> list[Any]:
        return [self.q._getters, self.q._putters, self.q._finished._waiters]

    def check_state(self) -> None:
        q = self.q
        assert list(q._items) == list(self.items)
        assert q.qsize() == q.green.qsize() == len(self.items)
        assert q.empty() == q.green.empty() == (not self.items)
        assert q.full() == q.green.full() == (0 < self.maxsize <= len(self.items))
        assert q._unfinished == self.unfinished >= 0
        stats = q.statistics()
        assert stats.waiters == len(self.getters)
        assert stats.green_waiters == sum(op.world == "green" for op in self.getters)
        assert len(q._putters) == len(self.putters)
        assert len(q._finished._waiters) == len(self.joiners)
        assert q._getters.woken == q._putters.woken == 0
        assert self.maxsize == 0 or len(self.items) <= self.maxsize

    def has_room(self) -> bool:
        return self.maxsize == 0 or len(self.items) < self.maxsize

    def model_append(self, item: int) -> None:
        self.items.append(item)
        self.unfinished += 1

    def model_flow(self) -> None:
        """Serve parked getters and putters, first come first, while they can go."""
        while True:
            if self.getters and self.items:
                self.getters.pop(0).expected = ("ok", self.items.popleft())
            elif self.putters and self.has_room():
                putter = self.putters.pop(0)
                assert putter.item is not None
                self.model_append(putter.item)
                putter.expected = ("ok", None)
            else:
                return

    def model_put(self, item: int) -> None:
        """A put that did not wait (the caller checked it could go)."""
        self.model_append(item)
        self.model_flow()

    def model_get(self) -> int:
        """A get that did not wait (the caller checked it could go)."""
        item = self.items.popleft()
        self.model_flow()
        return item

    def model_task_done(self) -> None:
        self.unfinished -= 1
        if not self.unfinished:
            for op in self.joiners:
                op.expected = ("ok", None)
            self.joiners.clear()

    def face(self, face: str) -> Any:
        return self.q if face == "async" else self.q.green

    def try_put(self, face: str, timeout_zero: bool = False) -> None:
        """A put that may not wait, checked against the model."""
        item = next(self._item_numbers)
        try:
            if face == "green" and timeout_zero:
                self.q.green.put(item, timeout=0)
            else:
                self.face(face).put_nowait(item)
        except Exception as exc:
            assert type(exc).__name__ == ("QueueFull" if face == "async" else "Full")
            assert self.putters or not self.has_room()
        else:
            assert not self.putters and self.has_room()
            self.model_put(item)

    def try_get(self, face: str, timeout_zero: bool = False) -> None:
        """A get that may not wait, checked against the model."""
        try:
            if face == "green" and timeout_zero:
                got = self.q.green.get(timeout=0)
            else:
                got = self.face(face).get_nowait()
        except Exception as exc:
            assert type(exc).__name__ == ("QueueEmpty" if face == "async" else "Empty")
            assert self.getters or not self.items
        else:
            assert not self.getters and self.items
            assert got == self.model_get()

    def put_now(self, face: str) -> tuple[Callable[[], object], Callable[[], object]]:
        """A put that can go now, and its model."""
        item = next(self._item_numbers)
        return (
            functools.partial(self.face(face).put_nowait, item),
            functools.partial(self.model_put, item),
        )

    def get_now(self, face: str) -> tuple[Callable[[], object], Callable[[], object]]:
        """A get that can go now, and its model (which checks the item got)."""
        got: list[Any] = []

        def model_get() -> None:
            assert got == [self.model_get()]

        return lambda: got.append(self.face(face).get_nowait()), model_get

    def green_get(self, timeout: float | None) -> Any:
        return self.q.green.get(timeout=timeout)

    def green_join(self, timeout: float | None) -> None:
        self.q.green.join()  # eventlet's join() takes no timeout

    # A put or get that cannot wait runs inline; when it wakes a parked
    # waiter, an interruption may race it and newcomers may try to overtake
    # the woken waiter.

    @action(way=PUT_OR_GET_WAYS, race=RACE, newcomer=NEWCOMER)
    def put(
        self,
        way: tuple[str, str],
        race: tuple[int, str, str] | None,
        newcomer: tuple[str, str] | None,
    ) -> None:
        face, flavour = way
        if flavour in INLINE and self.getters:
            # It goes, and sets the item aside for the first getter.
            if self.wake(race, self.getters, *self.put_now(face)) and newcomer:
                for newcomer_face in newcomer:
                    self.try_get(newcomer_face)
        elif flavour in INLINE:
            self.try_put(face, timeout_zero=flavour == "timeout=0")
        else:
            item = next(self._item_numbers)

            def green_put(timeout: float | None, item: int = item) -> None:
                self.q.green.put(item, timeout=timeout)

            op = self.start(f"put {item}", way, functools.partial(self.q.put, item), green_put)
            op.item, op.timed_out = item, ("raised", "Full")
            if not self.putters and self.has_room():
                op.expected = ("ok", None)
                self.model_put(item)
            else:
                self.putters.append(op)
        self.settle()

    @action(way=PUT_OR_GET_WAYS, race=RACE, newcomer=NEWCOMER)
    def get(
        self,
        way: tuple[str, str],
        race: tuple[int, str, str] | None,
        newcomer: tuple[str, str] | None,
    ) -> None:
        face, flavour = way
        if flavour in INLINE and self.putters:
            # Putters wait only while the queue is full: this get goes, and
            # sets the room aside for the first putter.
            if self.wake(race, self.putters, *self.get_now(face)) and newcomer:
                for newcomer_face in newcomer:
                    self.try_put(newcomer_face)
        elif flavour in INLINE:
            self.try_get(face, timeout_zero=flavour == "timeout=0")
        else:
            op = self.start("get", way, self.q.get, self.green_get)
            op.timed_out = ("raised", "Empty")
            if not self.getters and self.items:
                op.expected = ("ok", self.model_get())
            else:
                self.getters.append(op)
        self.settle()

    @action(face=FACES, race=RACE, newcomer=NEWCOMER)
    def wake_a_waiter(
        self,
        face: str,
        race: tuple[int, str, str] | None,
        newcomer: tuple[str, str] | None,
    ) -> None:
        """The call that wakes whoever waits: a put for getters, a get for putters..."""
        if self.getters:
            self.put((face, "nowait"), race, newcomer)
        elif self.putters:
            self.get((face, "nowait"), race, newcomer)
        elif self.joiners:
            self.task_done(face, True, race)

    @action(way=WAYS)
    def join(self, way: tuple[str, str]) -> None:
        op = self.start("join", way, self.q.join, self.green_join)
        if self.unfinished:
            self.joiners.append(op)
        else:
            op.expected = ("ok", None)
        self.settle()

    @action(face=FACES, all_of_them=st.booleans(), race=RACE)
    def task_done(self, face: str, all_of_them: bool, race: tuple[int, str, str] | None) -> None:
        # All of them: the last one wakes the joiners, maybe raced.
        if not self.unfinished:
            with pytest.raises(ValueError, match="too many"):
                self.face(face).task_done()
        for _ in range(self.unfinished - 1 if all_of_them else 0):
            self.face(face).task_done()
            self.model_task_done()
        if self.unfinished:
            self.wake(race, self.joiners, self.face(face).task_done, self.model_task_done)
        self.settle()


MACHINES = [LockMachine, SemaphoreMachine, BoundedSemaphoreMachine, EventMachine, QueueMachine]


def run_guest(fn: Callable[[], None]) -> None:
    """conftest's guest mode, with room for hypothesis to shrink a failure."""

    async def main() -> None:
        await asyncio.wait_for(eventlet.spawn(fn), timeout=GUEST_BOUND)

    asyncio.run(main())


@pytest.mark.parametrize("mode", ["owner", "guest"])
@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.__name__)
def test_primitive_matches_its_model_in_both_worlds(
    machine: type[RuleBasedStateMachine], mode: str
) -> None:
    run = functools.partial(run_machine, machine)
    if mode == "owner":
        run_owner(run)  # the machine is green main; the hub owns the loop
    else:
        run_guest(run)  # the machine is a greenthread inside asyncio.run()


def test_the_model_catches_a_lost_wake_up() -> None:
    # The machines are only as good as their power to fail: with a wake-up
    # dropped on purpose, the Event machine must find it.
    original = bridge.Event.set

    def lossy_set(self: bridge.Event) -> None:
        waiters = self._waiters._waiters
        if len(waiters) >= 2:
            waiters.popitem(last=True)  # the last waiter never hears of it
        original(self)

    bridge.Event.set = lossy_set  # type: ignore[method-assign]
    try:
        with pytest.raises(AssertionError):
            # Found is enough: no shrinking, no report.
            run_machine(EventMachine, settings(PROFILE, phases=[Phase.generate], print_blob=False))
    finally:
        bridge.Event.set = original  # type: ignore[method-assign]
