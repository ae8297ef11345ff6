"""bridge's pytest plugin (registered through the ``pytest11`` entry point).

* ``@pytest.mark.green``: run a plain test function as a greenthread on the
  hub, and wait for it (async tests stay pytest-asyncio's).
* Fixtures: ``bridge_hub`` (this thread's bridge hub) and ``spawn_green``
  (``spawn_green(fn, *args)`` starts a greenthread that is killed at the
  end of the test if it is still running).
* A leak check: a test that leaves greenthreads, fd listeners or timers
  behind fails (``fail``), warns (``warn``) or passes (``off``), naming each
  leftover and, for greenthreads, where it was spawned. Set it with
  ``--bridge-leak-check`` or the ini key ``bridge_leak_check`` (default
  ``warn``); a test can opt out with ``@pytest.mark.bridge_allow_leaks``.

The plugin does nothing when the thread's eventlet hub is not bridge's.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

__all__ = ("BridgeLeakWarning",)

LEAK_CHECK_HELP = (
    "what to do when a test leaves greenthreads, fd listeners or timers behind: "
    "fail, warn or off (default: warn)"
)


class BridgeLeakWarning(UserWarning):
    """A test left green work running (see the ``bridge_leak_check`` setting)."""


class LeakCheck(enum.Enum):
    FAIL = "fail"
    WARN = "warn"
    OFF = "off"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bridge", "eventlet-asyncio-bridge")
    group.addoption("--bridge-leak-check", dest="bridge_leak_check", default=None,
                    metavar="MODE", help=LEAK_CHECK_HELP)  # fmt: skip
    parser.addini("bridge_leak_check", LEAK_CHECK_HELP, default="warn")


def _leak_check_mode(config: pytest.Config) -> LeakCheck:
    value = config.getoption("bridge_leak_check") or config.getini("bridge_leak_check")
    try:
        return LeakCheck(str(value).strip().lower())
    except ValueError:
        valid = ", ".join(mode.value for mode in LeakCheck)
        raise pytest.UsageError(
            f"bridge_leak_check={value!r} is not valid; use one of: {valid}"
        ) from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "green: run this (non-async) test function as a greenthread on the hub"
    )
    config.addinivalue_line("markers", "bridge_allow_leaks: skip bridge's leak check for this test")
    config.stash[_MODE] = _leak_check_mode(config)


_MODE = pytest.StashKey[LeakCheck]()


def pytest_report_header(config: pytest.Config) -> str:
    return f"bridge: leak check {config.stash[_MODE].value}"


def _bridge_hub(*, create: bool) -> Any:
    """This thread's hub if it is bridge's, else None.

    With ``create`` false, no hub is made (nor eventlet or bridge's hub
    imported) for the leak check's sake, unless EVENTLET_HUB selects
    bridge's: projects that install bridge but test code without it are left
    alone (tests/test_pytest_plugin.py pins that).
    """
    import os
    import sys

    if not create and os.environ.get("EVENTLET_HUB") != "bridge.hub":
        hubs = sys.modules.get("eventlet.hubs")
        if hubs is None or getattr(hubs._threadlocal, "hub", None) is None:
            return None
        if "bridge._core._hub" not in sys.modules:
            return None  # the hub is not bridge's; importing ours would hook asyncio
    import eventlet.hubs

    from bridge._core._hub import Hub

    hub = eventlet.hubs.get_hub()
    return hub if isinstance(hub, Hub) else None


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if pyfuncitem.get_closest_marker("green") is None:
        return None
    import inspect

    if inspect.iscoroutinefunction(pyfuncitem.obj):
        raise pytest.UsageError(
            f"{pyfuncitem.nodeid}: @pytest.mark.green is for plain test functions; an async "
            "test already runs on the loop (call green code in it with bridge.to_async)."
        )
    import eventlet

    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    eventlet.spawn(pyfuncitem.obj, **kwargs).wait()
    return True


@pytest.fixture
def bridge_hub() -> Any:
    """This thread's bridge hub (``bridge.hub.Hub``)."""
    hub = _bridge_hub(create=True)
    if hub is None:
        pytest.fail("the eventlet hub is not bridge's: set EVENTLET_HUB=bridge.hub")
    return hub


@pytest.fixture
def spawn_green() -> Iterator[Callable[..., Any]]:
    """``spawn_green(fn, *args, **kwargs)``: a greenthread killed at teardown if still running."""
    import eventlet

    started: list[Any] = []

    def spawn(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        gt = eventlet.spawn(fn, *args, **kwargs)
        started.append(gt)
        return gt

    yield spawn
    for gt in started:
        if not gt.dead:
            gt.kill()


# -- the leak check -------------------------------------------------------------------

_TRACKER = pytest.StashKey[Any]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    # From before the fixtures are set up to after they are torn down, so
    # that what a fixture starts and stops is not a leak.
    mode = item.config.stash[_MODE]
    hub = _bridge_hub(create=False) if mode is not LeakCheck.OFF else None
    if hub is not None and item.get_closest_marker("bridge_allow_leaks") is None:
        from bridge._leaks import LeakTracker

        item.stash[_TRACKER] = LeakTracker(hub).start()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    result = yield
    tracker = item.stash.get(_TRACKER, None)
    if tracker is None:
        return result
    del item.stash[_TRACKER]
    leaks = tracker.stop()
    if leaks:
        message = f"{item.nodeid} left green work behind:\n  " + "\n  ".join(leaks)
        if item.config.stash[_MODE] is LeakCheck.FAIL:
            pytest.fail(message, pytrace=False)
        warnings.warn(BridgeLeakWarning(message), stacklevel=1)
    return result
