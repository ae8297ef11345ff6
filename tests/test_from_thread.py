"""bridge.from_thread: a foreign OS thread hands work to the hub's thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import queue
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import eventlet
import eventlet.hubs
import pytest
from eventlet import tpool

import bridge

from .conftest import RunInMode

BOUND = 10


async def add(a: int, b: int) -> int:
    await asyncio.sleep(0.001)
    return a + b


def green_mul(a: int, b: int) -> int:
    eventlet.sleep(0.001)
    return a * b


async def failing() -> None:
    raise LookupError("from the hub's thread")


def in_real_thread() -> tuple[int, int, bool, str]:
    """Runs in a tpool worker: a real OS thread."""
    in_worker = threading.get_ident() != threading.main_thread().ident
    total = bridge.from_thread.run(add, 2, 3, timeout=BOUND)
    product = bridge.from_thread.run_green(green_mul, 4, 5, timeout=BOUND)
    try:
        bridge.from_thread.run(failing, timeout=BOUND)
    except LookupError as exc:
        error = str(exc)
    return total, product, in_worker, error


def test_from_a_tpool_thread_run_and_run_green(hub_mode: RunInMode) -> None:
    assert hub_mode(tpool.execute, in_real_thread) == (5, 20, True, "from the hub's thread")


def test_from_run_in_executor_under_asyncio_run() -> None:
    async def main() -> tuple[int, int, bool, str]:
        return await asyncio.wait_for(asyncio.to_thread(in_real_thread), BOUND)

    assert asyncio.run(main()) == (5, 20, True, "from the hub's thread")


def test_timeout_cancels_the_task_and_raises() -> None:
    cancelled = eventlet.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(BOUND)
        except asyncio.CancelledError:
            cancelled.send("cancelled")
            raise

    def in_thread() -> str:
        try:
            bridge.from_thread.run(slow, timeout=0.05)
        except TimeoutError:
            return "TimeoutError"
        return "no timeout"

    assert tpool.execute(in_thread) == "TimeoutError"
    with eventlet.Timeout(BOUND):
        assert cancelled.wait() == "cancelled"


def test_calling_from_the_hubs_own_thread_is_refused() -> None:
    eventlet.sleep(0)
    with pytest.raises(RuntimeError, match="hub's own thread"):
        bridge.from_thread.run(add, 1, 2)


def test_hub_thread_given_a_thread_object_says_to_pass_its_ident() -> None:
    with pytest.raises(TypeError, match=r"hub_thread= takes a thread id .*got <_MainThread"):
        in_thread_with_bound(
            functools.partial(bridge.from_thread.run, hub_thread=threading.main_thread()), add, 1, 2
        )


def test_an_unknown_hub_thread_is_refused() -> None:
    def in_thread() -> str:
        try:
            bridge.from_thread.run(add, 1, 2, hub_thread=1)
        except RuntimeError as exc:
            return str(exc)
        return "ran"

    assert "has no bridge hub" in tpool.execute(in_thread)


# -- every failure on the hub's side reaches the waiting thread (issue 8, item 4) --------
#
# Each call below is bounded (timeout=BOUND); on the code this fixes, the
# failing ones waited for it and raised TimeoutError, or never returned.


def in_thread_with_bound(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args, timeout=BOUND)`` in a tpool worker (a real OS thread); raises what it raises."""
    return tpool.execute(functools.partial(fn, timeout=BOUND), *args)


def raises_before_returning_a_coroutine(key: str) -> Awaitable[int]:
    raise LookupError(f"no {key}")


def test_run_fn_raising_before_it_returns_a_coroutine_raises_in_the_caller(
    hub_mode: RunInMode, capfd: pytest.CaptureFixture[str]
) -> None:
    def in_thread() -> BaseException | None:
        try:
            bridge.from_thread.run(raises_before_returning_a_coroutine, "key", timeout=BOUND)
        except BaseException as exc:  # caught here, so that no greenthread dies of it
            return exc
        return None

    error = hub_mode(tpool.execute, in_thread)
    assert isinstance(error, LookupError), repr(error)
    assert str(error) == "no key"
    assert error.__traceback__ is not None
    assert traceback.extract_tb(error.__traceback__)[-1].name == (
        "raises_before_returning_a_coroutine"
    )
    err = capfd.readouterr().err
    assert "Traceback" not in err, err  # the hub did not print it as well


def plain_add(a: int, b: int) -> int:
    return a + b


def test_run_with_a_plain_function_is_a_type_error_naming_run_green(hub_mode: RunInMode) -> None:
    with pytest.raises(TypeError) as caught:
        hub_mode(in_thread_with_bound, bridge.from_thread.run, plain_add, 2, 3)
    message = str(caught.value)
    assert "returned 5 (int), not an awaitable" in message
    assert "bridge.from_thread.run_green(plain_add, *args)" in message


def test_run_awaits_any_awaitable_the_function_returns(hub_mode: RunInMode) -> None:
    def returns_a_future(value: int) -> asyncio.Future[int]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(value)
        return future

    assert hub_mode(in_thread_with_bound, bridge.from_thread.run, returns_a_future, 7) == 7


def test_run_given_a_coroutine_object_says_to_pass_the_function() -> None:
    coroutine = add(1, 2)
    with pytest.raises(TypeError, match=r"got a coroutine object .*run\(afn, \*args\)"):
        in_thread_with_bound(bridge.from_thread.run, coroutine)
    assert coroutine.cr_frame is None  # closed: no "never awaited" warning later


@pytest.mark.parametrize("name", ["run", "run_green"])
def test_a_non_callable_is_a_type_error_in_the_calling_thread(name: str) -> None:
    with pytest.raises(TypeError, match=r"got 42 \(int\), which is not callable"):
        in_thread_with_bound(getattr(bridge.from_thread, name), 42)


def test_run_green_with_a_coroutine_function_names_run() -> None:
    with pytest.raises(TypeError, match=r"is a coroutine function; use bridge\.from_thread\.run"):
        in_thread_with_bound(bridge.from_thread.run_green, add, 1, 2)


def test_run_green_whose_function_returns_a_coroutine_names_run(hub_mode: RunInMode) -> None:
    made: list[Any] = []

    def makes_a_coroutine() -> Any:
        made.append(add(1, 2))
        return made[0]

    with pytest.raises(TypeError, match=r"returned a coroutine.*bridge\.from_thread\.run\("):
        hub_mode(in_thread_with_bound, bridge.from_thread.run_green, makes_a_coroutine)
    assert made[0].cr_frame is None  # closed on the hub's side


def test_run_green_fn_raising_raises_in_the_caller(hub_mode: RunInMode) -> None:
    def fails() -> None:
        eventlet.sleep(0)
        raise LookupError("from a greenthread")

    with pytest.raises(LookupError, match="from a greenthread"):
        hub_mode(in_thread_with_bound, bridge.from_thread.run_green, fails)


@pytest.mark.parametrize("name", ["run", "run_green"])
def test_a_timeout_error_of_the_callee_is_its_own(hub_mode: RunInMode, name: str) -> None:
    async def times_out() -> None:
        raise TimeoutError("the callee's own")

    def green_times_out() -> None:
        raise TimeoutError("the callee's own")

    fn = times_out if name == "run" else green_times_out

    def call() -> Any:  # no timeout= of ours: the callee's TimeoutError must come through
        return getattr(bridge.from_thread, name)(fn)

    with pytest.raises(TimeoutError, match="the callee's own"):
        hub_mode(tpool.execute, call)


def test_run_task_cancelled_on_the_hubs_side_raises_cancelled_error(hub_mode: RunInMode) -> None:
    async def cancelled_by_someone() -> None:
        asyncio.current_task().cancel()  # type: ignore[union-attr]
        await asyncio.sleep(BOUND)

    with pytest.raises(concurrent.futures.CancelledError, match="task was cancelled"):
        hub_mode(in_thread_with_bound, bridge.from_thread.run, cancelled_by_someone)


def test_run_green_greenthread_killed_on_the_hubs_side_raises_cancelled_error(
    hub_mode: RunInMode,
) -> None:
    def killed_by_another_greenthread() -> None:
        eventlet.spawn(eventlet.getcurrent().kill)
        eventlet.sleep(BOUND)

    with pytest.raises(concurrent.futures.CancelledError, match=r"greenthread .* was killed"):
        hub_mode(in_thread_with_bound, bridge.from_thread.run_green, killed_by_another_greenthread)


def call_in_a_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, queue.SimpleQueue[Any]]:
    """Start ``fn()`` in a new OS thread; its result or exception goes to the queue."""
    outcome: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def target() -> None:
        try:
            outcome.put(fn())
        except BaseException as exc:
            outcome.put(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def test_asyncio_run_returning_under_a_waiting_call_raises_cancelled_error() -> None:
    started = threading.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(BOUND * 2)

    async def main() -> tuple[threading.Thread, queue.SimpleQueue[Any]]:
        await eventlet.spawn(lambda: None)  # this thread's hub joins the loop
        waiting = call_in_a_thread(lambda: bridge.from_thread.run(forever, timeout=BOUND))
        assert await asyncio.to_thread(started.wait, BOUND)
        return waiting  # asyncio.run cancels the task left running

    thread, outcome = asyncio.run(main())
    error = outcome.get(timeout=BOUND)
    thread.join(BOUND)
    assert isinstance(error, concurrent.futures.CancelledError), repr(error)
    assert "asyncio.run() cancels" in str(error)


def test_a_loop_closed_under_a_waiting_call_raises_runtime_error() -> None:
    started = threading.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(BOUND * 2)

    async def main() -> tuple[threading.Thread, queue.SimpleQueue[Any]]:
        await eventlet.spawn(lambda: None)
        waiting = call_in_a_thread(lambda: bridge.from_thread.run(forever, timeout=BOUND))
        assert await asyncio.to_thread(started.wait, BOUND)
        return waiting

    loop = asyncio.new_event_loop()
    try:
        thread, outcome = loop.run_until_complete(main())
    finally:
        loop.close()  # without cancelling the task first: it can never finish
    error = outcome.get(timeout=BOUND)
    thread.join(BOUND)
    assert isinstance(error, RuntimeError), repr(error)
    assert "was closed before the task finished" in str(error)


def test_a_hub_left_on_a_closed_loop_runs_the_call_when_its_thread_runs_green_code() -> None:
    # The hub's thread has returned from asyncio.run(); the call waits in the
    # hub's inbox (it used to get "Event loop is closed", and run later anyway).
    ready, go, submitted = threading.Event(), threading.Event(), threading.Event()
    ran = eventlet.Event()  # sent on the hub's thread, waited for there
    errors: list[BaseException] = []

    def hub_thread() -> None:
        try:

            async def async_main() -> None:
                await eventlet.spawn(lambda: None)  # the hub of this thread joins the loop

            asyncio.run(async_main())  # ...which is closed when this returns
            hub = eventlet.hubs.get_hub()
            submit = hub.submit_threadsafe

            def submit_and_tell(work: Callable[[], object]) -> None:
                try:
                    submit(work)
                finally:
                    submitted.set()

            hub.submit_threadsafe = submit_and_tell
            ready.set()
            assert go.wait(BOUND)
            with eventlet.Timeout(BOUND):
                ran.wait()  # green code again: the hub runs a loop, and its inbox
        except BaseException as exc:
            errors.append(exc)

    async def job() -> str:
        ran.send()
        return "ran"

    thread = threading.Thread(target=hub_thread, daemon=True)
    thread.start()
    assert ready.wait(BOUND)
    caller, outcome = call_in_a_thread(
        lambda: bridge.from_thread.run(job, hub_thread=thread.ident, timeout=BOUND)
    )
    assert submitted.wait(BOUND)
    go.set()
    assert outcome.get(timeout=BOUND) == "ran"
    thread.join(BOUND)
    caller.join(BOUND)
    assert errors == []


def test_a_hub_whose_thread_has_ended_is_refused() -> None:
    hubs: list[Any] = []  # keeps that thread's hub alive after the thread ends

    def hub_thread() -> None:
        eventlet.sleep(0)
        hubs.append(eventlet.hubs.get_hub())

    thread = threading.Thread(target=hub_thread, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert hubs
    with pytest.raises(RuntimeError, match="has ended"):
        bridge.from_thread.run(add, 1, 2, hub_thread=thread.ident, timeout=BOUND)
