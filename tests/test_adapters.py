"""The adapters' semantics table (bridge/_crossings/__init__.py), cell by cell, in both hub modes.

Async-side tests run their coroutine either under ``asyncio.run`` (guest
mode) or as a task on the owner loop, awaited by green main through
``bridge.await_`` (owner mode). Green-side tests use the ``hub_mode``
fixture.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import subprocess
import sys
import textwrap
import traceback
import warnings
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import eventlet
import greenlet
import pytest

import bridge

from .conftest import RunInMode

BOUND = 10  # seconds: the bound on every wait
T = TypeVar("T")
RunAsync = Callable[[Callable[[], Awaitable[Any]]], Any]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


@pytest.fixture(params=["owner", "guest"])
def run_async(request: pytest.FixtureRequest) -> RunAsync:
    """``run(afn)``: await ``afn()`` as a task, in each hub mode; returns its result."""

    def owner(afn: Callable[[], Awaitable[T]]) -> T:
        return bridge.await_(asyncio.wait_for(afn(), BOUND))

    def guest(afn: Callable[[], Awaitable[T]]) -> T:
        async def main() -> T:
            return await asyncio.wait_for(afn(), BOUND)

        return asyncio.run(main())

    return owner if request.param == "owner" else guest


def frames(exc: BaseException) -> str:
    return "".join(traceback.format_tb(exc.__traceback__))


# -- async calls green: to_async ---------------------------------------------


def test_to_async_returns_the_green_result(run_async: RunAsync) -> None:
    def green(x: int) -> int:
        eventlet.sleep(0.001)
        return x * 2

    async def main() -> list[int]:
        return [await bridge.to_async(green)(21), await bridge.to_async(lambda: 7)()]

    assert run_async(main) == [42, 7]


def test_to_async_raises_the_green_exception_with_its_frames(run_async: RunAsync) -> None:
    def failing_green_function() -> None:
        eventlet.sleep(0)
        raise ValueError("from green")

    async def main() -> BaseException:
        try:
            await bridge.to_async(failing_green_function)()
        except ValueError as exc:
            return exc
        raise AssertionError("no exception")

    exc = run_async(main)
    assert str(exc) == "from green"
    assert "failing_green_function" in frames(exc)


def test_to_async_cancelling_the_task_kills_the_greenthread(run_async: RunAsync) -> None:
    def sleeper(log: list[str]) -> None:
        log.append("started")
        try:
            eventlet.sleep(BOUND)
        except greenlet.GreenletExit:
            log.append("GreenletExit")
            raise
        finally:
            eventlet.sleep(0)  # a finally may block green, and is waited for
            log.append("finally")

    async def main() -> tuple[list[str], bool]:
        log: list[str] = []
        task = asyncio.ensure_future(bridge.to_async(sleeper)(log))
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return log, task.cancelled()
        raise AssertionError("not cancelled")

    assert run_async(main) == (["started", "GreenletExit", "finally"], True)


def test_to_async_timeout_kills_the_greenthread(run_async: RunAsync) -> None:
    def sleeper(log: list[str]) -> None:
        try:
            eventlet.sleep(BOUND)
        finally:
            log.append("finally")

    async def main() -> list[str]:
        log: list[str] = []
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(bridge.to_async(sleeper)(log), 0.01)
        return log

    assert run_async(main) == ["finally"]


def test_to_async_greenthread_killed_by_other_green_code_ends_the_await(
    run_async: RunAsync,
) -> None:
    callee: list[greenlet.greenlet] = []

    def victim() -> str:
        callee.append(greenlet.getcurrent())
        eventlet.sleep(BOUND)
        return "not killed"

    def killer() -> None:
        while not callee:
            eventlet.sleep(0)
        callee[0].kill()

    async def main() -> str:
        eventlet.spawn(killer)
        try:
            return await bridge.to_async(victim)()
        except greenlet.GreenletExit:
            return "GreenletExit"

    assert run_async(main) == "GreenletExit"


def test_to_async_callee_runs_in_a_copy_of_the_callers_context(run_async: RunAsync) -> None:
    def green() -> str:
        seen = request_id.get()
        request_id.set("changed by callee")
        return seen

    async def main() -> tuple[str, str]:
        request_id.set("req-1")
        seen = await bridge.to_async(green)()
        return seen, request_id.get()

    assert run_async(main) == ("req-1", "req-1")


def test_to_async_callee_is_a_greenthread() -> None:
    def green() -> bool:
        current = eventlet.getcurrent()
        return isinstance(current, eventlet.greenthread.GreenThread) and hasattr(current, "link")

    async def main() -> bool:
        return await bridge.to_async(green)()

    assert asyncio.run(main()) is True


def test_to_async_works_as_a_decorator() -> None:
    @bridge.to_async
    def legacy_lookup(key: str) -> str:
        eventlet.sleep(0)
        return key.upper()

    assert asyncio.run(legacy_lookup("abc")) == "ABC"
    assert legacy_lookup.__name__ == "legacy_lookup"


def test_to_async_from_many_tasks_at_once(run_async: RunAsync) -> None:
    def green(i: int) -> int:
        eventlet.sleep(0.001 * (i % 3))
        return i

    async def main() -> list[int]:
        return list(await asyncio.gather(*(bridge.to_async(green)(i) for i in range(100))))

    assert run_async(main) == list(range(100))


# -- green calls async: await_ and to_green -----------------------------------


def test_await_returns_the_async_result(hub_mode: RunInMode) -> None:
    async def add_one(x: int) -> int:
        await asyncio.sleep(0.001)
        return x + 1

    async def immediate() -> str:
        return "no suspension"

    def scenario() -> list[object]:
        loop = eventlet.hubs.get_hub().loop
        future = loop.create_future()
        loop.call_soon(future.set_result, "a future")
        return [bridge.await_(add_one(1)), bridge.await_(immediate()), bridge.await_(future)]

    assert hub_mode(scenario) == [2, "no suspension", "a future"]


def test_await_runs_the_first_step_at_once_as_a_step_on_the_loop(hub_mode: RunInMode) -> None:
    # await_ runs a new task's first step in the calling greenthread (no loop
    # iteration); that step must behave as one the loop runs.
    async def report() -> list[object]:
        seen: list[object] = []
        for step in ("first step", "later step"):
            seen.append((step, asyncio.current_task() is not None))
            with pytest.raises(bridge.BlockingCallError):
                eventlet.sleep(0.001)
            with pytest.raises(bridge.BlockingCallError, match="use `await` instead"):
                bridge.await_(asyncio.sleep(0))
            await asyncio.sleep(0)
        return seen

    assert hub_mode(bridge.await_, report()) == [("first step", True), ("later step", True)]


def test_await_first_step_can_switch_to_greenthreads_and_come_back(hub_mode: RunInMode) -> None:
    def scenario() -> tuple[bool, list[str]]:
        log: list[str] = []

        def sleeper() -> None:
            try:
                eventlet.sleep(BOUND)
            finally:
                log.append("sleeper's finally")

        sleeping = eventlet.spawn(sleeper)
        eventlet.sleep(0)

        async def kill_it() -> bool:
            sleeping.kill()  # from the loop: runs the sleeper's finally now
            log.append("the step went on")
            return sleeping.dead

        return bridge.await_(kill_it()), log

    assert hub_mode(scenario) == (True, ["sleeper's finally", "the step went on"])


def test_await_resumes_the_greenthread_outside_any_task(hub_mode: RunInMode) -> None:
    async def suspends(x: int) -> int:
        await asyncio.sleep(0)
        return x

    def scenario() -> list[object]:
        loop = eventlet.hubs.get_hub().loop
        seen: list[object] = []
        for x in range(3):  # each one woken from inside the previous task's last step
            seen.append(bridge.await_(suspends(x)))
            seen.append(asyncio.current_task(loop))
        return seen

    assert hub_mode(scenario) == [0, None, 1, None, 2, None]


def test_await_goes_through_the_loops_task_factory(hub_mode: RunInMode) -> None:
    async def immediate() -> str:
        return "done"

    def scenario() -> tuple[str, int]:
        loop = eventlet.hubs.get_hub().loop
        made: list[asyncio.Task[Any]] = []

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            made.append(asyncio.Task(coro, loop=loop, **kwargs))
            return made[-1]

        loop.set_task_factory(factory)
        try:
            return bridge.await_(immediate()), len(made)
        finally:
            loop.set_task_factory(None)

    assert hub_mode(scenario) == ("done", 1)


def test_await_of_coroutines_that_never_suspend_still_lets_others_run(
    hub_mode: RunInMode,
) -> None:
    async def immediate() -> None:
        return None

    def scenario() -> bool:
        others: list[str] = []
        eventlet.spawn(others.append, "another greenthread ran")
        for _ in range(1000):
            bridge.await_(immediate())
            if others:
                return True
        return False

    assert hub_mode(scenario)


def test_await_leaves_no_task_exception_unretrieved(hub_mode: RunInMode) -> None:
    async def failing() -> None:
        raise KeyError("delivered to the greenthread")

    def scenario() -> list[str]:
        loop = eventlet.hubs.get_hub().loop
        reported: list[str] = []
        loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
        try:
            try:
                bridge.await_(failing())
            except KeyError:
                pass
            gc.collect()  # a task with an unread exception logs it when collected
        finally:
            loop.set_exception_handler(None)
        return reported

    assert hub_mode(scenario) == []


def test_await_first_step_can_use_asyncio_primitives(hub_mode: RunInMode) -> None:
    # asyncio.Event/Lock/Queue bind the running loop on first use; green main
    # standing in for the loop must not look like a green main about to start
    # a loop of its own (which steps the owner loop aside).
    async def uses_primitives() -> str:
        event, lock, queue = asyncio.Event(), asyncio.Lock(), asyncio.Queue[str]()
        asyncio.get_running_loop().call_soon(event.set)
        async with lock:
            await event.wait()
        queue.put_nowait("ok")
        return await queue.get()

    def scenario() -> list[str]:
        return [bridge.await_(uses_primitives()) for _ in range(3)]

    assert hub_mode(scenario) == ["ok", "ok", "ok"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.eager_task_factory is 3.12+")
def test_await_under_an_eager_task_factory_runs_steps_only_as_on_the_loop() -> None:
    async def blocks_green() -> str:
        try:
            eventlet.sleep(0.001)
        except bridge.BlockingCallError:
            return "refused"
        return "slept in a greenthread"

    def scenario() -> set[str]:
        # More than the eager budget: the starts that wait for the loop too.
        return {bridge.await_(blocks_green()) for _ in range(130)}

    async def main() -> set[str]:
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
        return await asyncio.wait_for(eventlet.spawn(scenario), BOUND)

    assert asyncio.run(main()) == {"refused"}


def test_await_a_failure_nobody_waits_for_any_more_is_reported(hub_mode: RunInMode) -> None:
    # The greenthread gave up (eventlet.Timeout); the task's cleanup then
    # failed: asyncio's exception handler hears of it, as for any task.
    class CleanupFailed(Exception):
        pass

    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(BOUND)
        finally:
            raise CleanupFailed

    def scenario() -> list[object]:
        loop = eventlet.hubs.get_hub().loop
        reported: list[object] = []
        loop.set_exception_handler(lambda _, context: reported.append(context.get("exception")))
        try:
            try:
                with eventlet.Timeout(0.01):
                    bridge.await_(fails_on_cancel())
            except eventlet.Timeout:
                pass
            eventlet.sleep(0)  # the task's last step, which woke us, finishes
            gc.collect()
        finally:
            loop.set_exception_handler(None)
        return [type(exc).__name__ for exc in reported]

    assert hub_mode(scenario) == ["CleanupFailed"]


def test_await_raises_the_async_exception_with_its_frames(hub_mode: RunInMode) -> None:
    async def failing_coroutine() -> None:
        await asyncio.sleep(0)
        raise KeyError("from async")

    def scenario() -> BaseException:
        try:
            bridge.await_(failing_coroutine())
        except KeyError as exc:
            return exc
        raise AssertionError("no exception")

    exc = hub_mode(scenario)
    assert exc.args == ("from async",)
    assert "failing_coroutine" in frames(exc)


def test_await_killing_the_greenthread_cancels_the_task(hub_mode: RunInMode) -> None:
    def scenario() -> list[str]:
        log: list[str] = []

        async def slow() -> None:
            try:
                await asyncio.sleep(BOUND)
            except asyncio.CancelledError:
                log.append("cancelled")
                raise
            finally:
                await asyncio.sleep(0)  # cleanup that awaits is waited for
                log.append("finally")

        waiter = eventlet.spawn(bridge.await_, slow())
        eventlet.sleep(0.01)
        waiter.kill()  # returns once the waiter blocks on the task's cleanup
        with eventlet.Timeout(BOUND), pytest.raises(greenlet.GreenletExit):
            waiter.wait()
        return log

    assert hub_mode(scenario) == ["cancelled", "finally"]


def test_await_eventlet_timeout_cancels_the_task_and_raises(hub_mode: RunInMode) -> None:
    def scenario() -> tuple[str, list[str]]:
        log: list[str] = []

        async def slow() -> None:
            try:
                await asyncio.sleep(BOUND)
            finally:
                log.append("finally")

        try:
            with eventlet.Timeout(0.01):
                bridge.await_(slow())
        except eventlet.Timeout:
            return "Timeout", log
        return "no timeout", log

    assert hub_mode(scenario) == ("Timeout", ["finally"])


def test_await_callee_runs_in_a_copy_of_the_callers_context(hub_mode: RunInMode) -> None:
    async def read_and_change() -> str:
        seen = request_id.get()
        request_id.set("changed by callee")
        return seen

    def scenario() -> tuple[str, str]:
        request_id.set("green-req")
        return bridge.await_(read_and_change()), request_id.get()

    assert hub_mode(scenario) == ("green-req", "green-req")


def test_to_green_works_as_wrapper_and_decorator(hub_mode: RunInMode) -> None:
    @bridge.to_green
    async def fetch(key: str) -> str:
        await asyncio.sleep(0)
        return f"value of {key}"

    def scenario() -> list[str]:
        return [fetch("a"), bridge.to_green(asyncio.sleep)(0, "slept")]

    assert hub_mode(scenario) == ["value of a", "slept"]


def test_await_from_greenpool_workers(hub_mode: RunInMode) -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0.001)
        return 2 * x

    def scenario() -> list[int]:
        pool = eventlet.GreenPool(10)
        return list(pool.imap(lambda x: bridge.await_(double(x)), range(30)))

    assert hub_mode(scenario) == [2 * x for x in range(30)]


def test_await_on_the_loop_itself_is_refused_and_closes_the_coroutine() -> None:
    async def never_run() -> None:
        raise AssertionError("ran")

    async def main() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a "never awaited" warning would fail here
            with pytest.raises(bridge.BlockingCallError, match="use `await` instead"):
                bridge.await_(never_run())

    asyncio.run(main())


# -- both directions ------------------------------------------------------------


def test_nesting_fifty_levels_deep(run_async: RunAsync) -> None:
    def green_level(depth: int) -> int:
        if depth == 0:
            return 0
        return bridge.await_(async_level(depth - 1)) + 1

    async def async_level(depth: int) -> int:
        if depth == 0:
            return 0
        return await bridge.to_async(green_level)(depth - 1) + 1

    async def main() -> int:
        return await async_level(50)

    assert run_async(main) == 50


def test_keyboard_interrupt_in_green_code_reaches_asyncio_run() -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    async def main() -> None:
        await bridge.to_async(interrupted)()

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())
    assert eventlet.spawn(lambda: "hub still works").wait() == "hub still works"


def test_adapters_on_another_hub_say_which_hub_to_select() -> None:
    program = textwrap.dedent(
        """
        import asyncio, eventlet, bridge
        async def nothing():
            return None
        try:
            bridge.await_(nothing())
        except RuntimeError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        env={"EVENTLET_HUB": "epolls", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "EVENTLET_HUB=bridge.hub" in result.stdout, result.stdout + result.stderr
    assert "eventlet.hubs.epolls.Hub" in result.stdout


def test_killing_a_greenthread_from_async_code_leaves_no_stray_wake_up() -> None:
    # eventlet's kill() schedules a switch back to its caller unless the caller
    # is the mainloop; from a task, the caller is the hub's dispatcher, and a
    # stray switch to it would later resume the owner loop inside a guest one.
    async def killer() -> None:
        gt = eventlet.spawn(eventlet.sleep, BOUND)
        await asyncio.sleep(0)
        gt.kill()

    bridge.await_(killer())  # a task on the owner loop
    assert asyncio.run(asyncio.wait_for(asyncio.sleep(0, "ran"), BOUND)) == "ran"


def test_to_async_calls_each_see_a_fresh_greenthread() -> None:
    import eventlet.corolocal

    green_local = eventlet.corolocal.local()
    seen: list[object] = []

    def first() -> str:
        green_local.request = "first call's"
        request_id.set("first call's")
        eventlet.greenthread.getcurrent().link(lambda gt: seen.append(("linked", gt.wait())))
        return "first done"

    def second() -> tuple[bool, str]:
        return hasattr(green_local, "request"), request_id.get()

    async def main() -> tuple[str, tuple[bool, str]]:
        request_id.set("caller's")
        a = await bridge.to_async(first)()
        b = await bridge.to_async(second)()  # very likely the same, reused greenthread
        return a, b

    assert asyncio.run(main()) == ("first done", (False, "caller's"))
    assert seen == [("linked", "first done")]


def test_to_async_after_a_cancelled_call_still_works() -> None:
    async def main() -> list[int]:
        task = asyncio.ensure_future(bridge.to_async(eventlet.sleep)(BOUND))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return [await bridge.to_async(lambda i=i: i)() for i in range(3)]

    assert asyncio.run(main()) == [0, 1, 2]


def test_cancelling_a_task_whose_call_already_finished_kills_nothing_else() -> None:
    # The call ends, its greenthread goes back to the pool and takes the next
    # task's call, and only then is the first task cancelled: that must not
    # reach the greenthread, which runs someone else's call by now.
    tasks: dict[str, asyncio.Task[Any]] = {}

    def other_call() -> str:
        eventlet.sleep(0.01)
        return "other call finished"

    async def takes_the_greenthread() -> str:
        return await bridge.to_async(other_call)()

    async def cancels_the_first() -> None:
        tasks["first"].cancel()

    def first_call() -> str:
        eventlet.sleep(0)
        loop = asyncio.get_running_loop()  # greenthreads see the loop running
        # Their first steps run before the first task resumes.
        tasks["second"] = loop.create_task(takes_the_greenthread())
        tasks["canceller"] = loop.create_task(cancels_the_first())
        return "first call finished"

    async def main() -> tuple[bool, str]:
        tasks["first"] = asyncio.ensure_future(bridge.to_async(first_call)())
        try:
            await tasks["first"]
        except asyncio.CancelledError:
            pass
        return tasks["first"].cancelled(), await asyncio.wait_for(tasks["second"], BOUND)

    assert asyncio.run(main()) == (True, "other call finished")


@pytest.mark.parametrize("blocks", [False, True], ids=["returns at once", "blocks first"])
def test_to_async_returns_even_when_a_link_of_the_callee_raises(
    hub_mode: RunInMode, blocks: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    # A raising link used to skip handing the outcome over: the await never
    # returned once the callee had blocked (found in the crossings split).
    def callee() -> int:
        greenlet.getcurrent().link(lambda gt: 1 / 0)
        if blocks:
            eventlet.sleep(0)
        return 5

    async def call() -> int:
        return await asyncio.wait_for(bridge.to_async(callee)(), BOUND)

    assert hub_mode(lambda: bridge.await_(call())) == 5
    assert "ZeroDivisionError" in capsys.readouterr().err


class _Payload:
    """An argument or result whose life a test can watch (weakref)."""


def test_to_async_keeps_nothing_of_a_call_alive_after_it(run_async: RunAsync) -> None:
    # Reported by the alternatives benchmark (issue 11): beyond the pool's size
    # a carrier parked for good, holding its last call's arguments (a whole
    # aiohttp request under bridge.wsgi), and pooled carriers held theirs in
    # their frame's locals until the next call. Rounds of more calls at once
    # than any pool holds: afterwards no argument or result may be alive, and
    # the greenlets alive must not grow from round to round.
    watched: list[weakref.ref[_Payload]] = []

    def green(payload: _Payload) -> _Payload:
        eventlet.sleep(0.001)
        result = _Payload()
        watched.append(weakref.ref(result))
        return result

    async def one_round() -> None:
        payloads = [_Payload() for _ in range(300)]
        watched.extend(weakref.ref(p) for p in payloads)
        results = await asyncio.gather(*(bridge.to_async(green)(p) for p in payloads))
        assert len(results) == len(payloads)

    def greenlets_alive() -> int:
        # In owner mode the loop's greenlet woke green main from inside a loop
        # callback, and holds that callback (on 3.12+ it refers to the last
        # gather) until the hub next runs: let it finish first.
        eventlet.sleep(0)
        gc.collect()
        return sum(isinstance(o, greenlet.greenlet) and not o.dead for o in gc.get_objects())

    counts = []
    for _ in range(4):
        run_async(one_round)
        counts.append(greenlets_alive())
    assert [w for w in watched if w() is not None] == []
    assert counts[-1] <= counts[1], counts
