"""bridge's pytest plugin, run with pytester in subprocesses (each a clean hub)."""

from __future__ import annotations

import pytest

LEAKY = """
import eventlet

def test_leaks():
    eventlet.spawn(eventlet.sleep, 60)  # nobody waits for it

def test_clean():
    eventlet.spawn(lambda: None).wait()
"""


@pytest.fixture(autouse=True)
def bridge_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTLET_HUB", "bridge.hub")


def test_leak_check_fail_names_the_spawn_site(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leak=LEAKY)
    result = pytester.runpytest_subprocess("--bridge-leak-check=fail")
    result.assert_outcomes(passed=2, errors=1)  # the leak fails the leaking test's teardown
    result.stdout.fnmatch_lines(
        [
            "*test_leak.py::test_leaks left green work behind:*",
            "*greenthread <GreenThread*spawned at *test_leak.py:4 (eventlet.spawn(eventlet.sleep*",
        ]
    )


def test_leak_check_warns_by_default_and_says_so_in_the_header(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leak=LEAKY)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["bridge: leak check warn", "*BridgeLeakWarning*test_leaks*"])


def test_leak_check_off_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leak=LEAKY)
    pytester.makeini("[pytest]\nbridge_leak_check = off\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    assert "BridgeLeakWarning" not in result.stdout.str()


def test_allow_leaks_marker_skips_the_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_leak="""
        import eventlet, pytest

        @pytest.mark.bridge_allow_leaks
        def test_leaks_on_purpose():
            eventlet.spawn(eventlet.sleep, 60)
        """
    )
    result = pytester.runpytest_subprocess("--bridge-leak-check=fail")
    result.assert_outcomes(passed=1)


def test_an_invalid_setting_is_a_usage_error_listing_the_choices(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess("--bridge-leak-check=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*bridge_leak_check='sometimes' is not valid; use one of: fail, warn, off*"]
    )


def test_green_marker_and_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_green="""
        import eventlet, pytest
        from eventlet import greenthread
        import bridge

        @pytest.mark.green
        def test_runs_as_a_greenthread(bridge_hub):
            assert isinstance(greenthread.getcurrent(), greenthread.GreenThread)
            assert isinstance(bridge_hub, bridge.hub.Hub)
            eventlet.sleep(0.001)

        def test_spawn_green_kills_leftovers(spawn_green):
            gt = spawn_green(eventlet.sleep, 60)
            eventlet.sleep(0)
            assert not gt.dead  # killed at teardown: no leak reported

        @pytest.mark.green
        async def test_async_with_green_marker():
            pass
        """
    )
    result = pytester.runpytest_subprocess("--bridge-leak-check=fail", "-p", "no:asyncio")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.green is for plain test functions*"])


def test_beside_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mixed="""
        import eventlet, pytest
        import bridge

        @pytest.mark.asyncio
        async def test_async_calls_green():
            assert await bridge.to_async(lambda: eventlet.sleep(0.001) or 42)() == 42
        """
    )
    result = pytester.runpytest_subprocess("--bridge-leak-check=fail", "-p", "asyncio")
    result.assert_outcomes(passed=1)


def test_projects_without_eventlet_are_left_alone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plugin loads in every pytest session of an environment where bridge
    # is installed: it must not import eventlet, nor hook bridge's hub into asyncio.
    monkeypatch.delenv("EVENTLET_HUB")
    pytester.makepyfile(
        test_plain="""
        import asyncio
        import sys

        def test_nothing_of_eventlet_or_the_hub_loaded():
            loaded = [m for m in sys.modules if m.startswith(("eventlet", "bridge._core"))]
            assert loaded == []
            assert not hasattr(asyncio.events._set_running_loop, "__bridge_wrapped__")
        """
    )
    result = pytester.runpytest_subprocess("-p", "bridge")
    result.assert_outcomes(passed=1)
