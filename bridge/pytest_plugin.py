"""bridge's pytest plugin (registered through the ``pytest11`` entry point).

* ``@pytest.mark.green``: run a plain test function as a greenthread on the
  hub, and wait for it (async tests stay pytest-asyncio's).
* Fixtures: ``bridge_hub`` (this thread's bridge hub) and ``spawn_green``
  (``spawn_green(fn, *args)`` starts a greenthread that is killed at the
  end of the test if it is still running).
* A leak check: a test that leaves greenthreads, fd listeners or timers
  behind fails (``fail``) or warns (``warn``, a :class:`BridgeLeakWarning`),
  naming each leftover and, for greenthreads, where it was spawned.

The leak check is opt-in, because the plugin loads in every pytest session of
an environment where bridge is installed, and many eventlet suites leave
greenthreads behind on purpose or by habit: a suite that did not ask must not
get a warning per test. A test is checked when

* the project asks: ``--bridge-leak-check=fail|warn`` or the ini key
  ``bridge_leak_check`` (the same name; the CLI wins), for every test;
* the test asks: ``@pytest.mark.bridge_leak_check`` (in the project's mode,
  or ``warn``), ``@pytest.mark.bridge_leak_check("fail")`` (that mode; it
  wins over the project's);
* the test uses ``spawn_green`` or ``bridge_hub`` (directly or through
  another fixture, an autouse one included): only code written for bridge
  uses them, and it wants its green work accounted for.

Other tests are only counted, without a hub turn and without stack capture
(the suite's scheduling is left as it is), and one line at the end of the
session says how many left greenthreads behind and how to turn the check on.
``--bridge-leak-check=off`` checks and counts nothing, opted-in tests
included; ``@pytest.mark.bridge_allow_leaks`` exempts one test.

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
    "check every test for greenthreads, fd listeners or timers left behind: fail or warn; off "
    "checks nothing, not even tests that opt in (default: only tests marked bridge_leak_check "
    "or using the spawn_green or bridge_hub fixtures)"
)
MARKER_HELP = (
    "bridge_leak_check('fail' | 'warn'): check this test for greenthreads, fd listeners or "
    "timers left behind; without a mode, in the project's (--bridge-leak-check), else 'warn'"
)
UNREPORTED_LEAKS_LINE = (
    "bridge: {count} {tests} left greenthreads behind (not reported one by one: bridge's leak "
    "check is opt-in). To see each, run with --bridge-leak-check=warn (ini: bridge_leak_check "
    "= warn), or mark tests with @pytest.mark.bridge_leak_check."
)
BAD_MARKER_ADVICE = (
    "{nodeid}: @pytest.mark.bridge_leak_check takes one optional mode, 'warn' or 'fail', got "
    "args={args!r} kwargs={kwargs!r}. Use @pytest.mark.bridge_leak_check, "
    "@pytest.mark.bridge_leak_check('fail'), or @pytest.mark.bridge_allow_leaks to exempt a test."
)

# Using one of these fixtures opts a test in to the leak check.
OPT_IN_FIXTURES = frozenset({"bridge_hub", "spawn_green"})


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
    parser.addini("bridge_leak_check", LEAK_CHECK_HELP, default="")


def _leak_check_setting(config: pytest.Config) -> LeakCheck | None:
    """The project's setting: CLI, else ini; None when neither sets it."""
    value = config.getoption("bridge_leak_check") or config.getini("bridge_leak_check")
    if not str(value).strip():
        return None
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
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", "bridge_allow_leaks: skip bridge's leak check for this test")
    config.stash[_SETTING] = _leak_check_setting(config)
    config.stash[_UNREPORTED] = []


_SETTING = pytest.StashKey[LeakCheck | None]()
# Node ids of tests that were not checked but left greenthreads behind.
_UNREPORTED = pytest.StashKey[list[str]]()


def pytest_report_header(config: pytest.Config) -> str:
    setting = config.stash[_SETTING]
    if setting is None:
        return "bridge: leak check on tests that opt in (--bridge-leak-check=warn: every test)"
    return f"bridge: leak check {setting.value}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    unreported = config.stash.get(_UNREPORTED, [])
    if unreported:
        count = len(unreported)
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(UNREPORTED_LEAKS_LINE.format(count=count, tests=tests))


def _bridge_hub(*, create: bool) -> Any:
    """This thread's hub if it is bridge's, else None.

    With ``create`` false, no hub is made (nor eventlet or bridge's hub
    imported) for the leak check's sake, unless EVENTLET_HUB selects
    bridge's: projects that install bridge but test code without it are left
    alone (tests/test_pytest_plugin.py pins that).
    """
    import os

    if not create and os.environ.get("EVENTLET_HUB") != "bridge.hub":
        return _existing_bridge_hub()
    import eventlet.hubs

    from bridge._core import Hub

    hub = eventlet.hubs.get_hub()
    return hub if isinstance(hub, Hub) else None


def _existing_bridge_hub() -> Any:
    """This thread's hub if there is one and it is bridge's; makes and imports nothing."""
    import sys

    core = sys.modules.get("bridge._core")
    if core is None:
        return None  # then no hub is bridge's; importing ours would hook asyncio
    hub = core.thread_hub()
    return hub if isinstance(hub, core.Hub) else None


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
    """This thread's bridge hub (``bridge.hub.Hub``); opts the test in to the leak check."""
    hub = _bridge_hub(create=True)
    if hub is None:
        pytest.fail("the eventlet hub is not bridge's: set EVENTLET_HUB=bridge.hub")
    return hub


@pytest.fixture
def spawn_green() -> Iterator[Callable[..., Any]]:
    """``spawn_green(fn, *args, **kwargs)``: a greenthread killed at teardown if still running.

    Opts the test in to the leak check.
    """
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
# The mode a tracked test is checked in; None: only counted (see the module docstring).
_TEST_MODE = pytest.StashKey[LeakCheck | None]()


def _mode_for(item: pytest.Item) -> LeakCheck | None:
    """How ``item`` is checked: FAIL or WARN, OFF (not at all), or None (only counted)."""
    setting = item.config.stash[_SETTING]
    if setting is LeakCheck.OFF or item.get_closest_marker("bridge_allow_leaks") is not None:
        return LeakCheck.OFF
    marker = item.get_closest_marker("bridge_leak_check")
    if marker is not None and (marker.args or marker.kwargs):
        mode = marker.args[0] if len(marker.args) == 1 and not marker.kwargs else None
        if mode not in (LeakCheck.FAIL.value, LeakCheck.WARN.value):
            advice = BAD_MARKER_ADVICE.format(
                nodeid=item.nodeid, args=marker.args, kwargs=marker.kwargs
            )
            pytest.fail(advice, pytrace=False)
        return LeakCheck(mode)
    if setting is not None:
        return setting  # the project opted in: every test
    fixtures = getattr(item, "fixturenames", ())
    if marker is not None or not OPT_IN_FIXTURES.isdisjoint(fixtures):
        return LeakCheck.WARN
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    # From before the fixtures are set up to after they are torn down, so
    # that what a fixture starts and stops is not a leak.
    mode = _mode_for(item)
    tracker = None
    if mode is None:
        if _may_count():
            from bridge._leaks import LeakTracker

            tracker = LeakTracker(None, describe=False).start()
    elif mode is not LeakCheck.OFF:
        hub = _bridge_hub(create=False)
        if hub is not None:
            from bridge._leaks import LeakTracker

            tracker = LeakTracker(hub).start()
    if tracker is not None:
        item.stash[_TEST_MODE] = mode
        item.stash[_TRACKER] = tracker
    return (yield)


def _may_count() -> bool:
    """Whether to count an unchecked test's greenthreads: bridge's hub is, or may become, in use.

    Imports and makes nothing, and patches nothing where the hub is another's:
    suites that did not opt in are left as they run.
    """
    import os
    import sys

    if "eventlet.greenthread" not in sys.modules:
        return False
    return os.environ.get("EVENTLET_HUB") == "bridge.hub" or _existing_bridge_hub() is not None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        result = yield
    except BaseException:
        tracker = _take_tracker(item)
        if tracker is not None:
            tracker.stop_counting()  # only to stop tracking: the teardown's error comes first
        raise
    tracker = _take_tracker(item)
    if tracker is None:
        return result
    mode = item.stash[_TEST_MODE]
    if mode is None:
        # Counted only where the hub turned out to be bridge's.
        if tracker.stop_counting() and _existing_bridge_hub() is not None:
            item.config.stash[_UNREPORTED].append(item.nodeid)
        return result
    leaks = tracker.stop()
    if leaks:
        message = f"{item.nodeid} left green work behind:\n  " + "\n  ".join(leaks)
        if mode is LeakCheck.FAIL:
            pytest.fail(message, pytrace=False)
        warnings.warn(BridgeLeakWarning(message), stacklevel=1)
    return result


def _take_tracker(item: pytest.Item) -> Any:
    tracker = item.stash.get(_TRACKER, None)
    if tracker is not None:
        del item.stash[_TRACKER]
    return tracker
