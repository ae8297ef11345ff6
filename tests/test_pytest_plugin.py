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


SUMMARY = (
    "bridge: {count} left greenthreads behind (not reported one by one: bridge's leak check "
    "is opt-in). To see each, run with --bridge-leak-check=warn (ini: bridge_leak_check = warn), "
    "or mark tests with @pytest.mark.bridge_leak_check."
)


def test_without_opt_in_no_warning_per_test_and_one_summary_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_leak=LEAKY
        + """
def test_leaks_too():
    eventlet.spawn(eventlet.sleep, 60)
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)
    output = result.stdout.str()
    assert "BridgeLeakWarning" not in output
    assert "left green work behind" not in output
    lines = [line for line in result.stdout.lines if "left greenthreads behind" in line]
    assert lines == [SUMMARY.format(count="2 tests")]
    result.stdout.fnmatch_lines(["bridge: leak check on tests that opt in*"])  # the header


def test_without_opt_in_a_clean_suite_gets_no_summary_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_clean="""
        import eventlet

        def test_clean():
            eventlet.spawn(lambda: None).wait()
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert "left greenthreads behind" not in result.stdout.str()


def test_leak_check_warn_from_the_command_line_warns_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leak=LEAKY)
    result = pytester.runpytest_subprocess("--bridge-leak-check=warn")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["bridge: leak check warn", "*BridgeLeakWarning*test_leaks*"])
    assert "left greenthreads behind" not in result.stdout.str()  # reported: no summary


def test_leak_check_warn_from_the_ini_file_warns_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leak=LEAKY)
    pytester.makeini("[pytest]\nbridge_leak_check = warn\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["bridge: leak check warn", "*BridgeLeakWarning*test_leaks*"])


def test_the_command_line_wins_over_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leak=LEAKY)
    pytester.makeini("[pytest]\nbridge_leak_check = warn\n")
    result = pytester.runpytest_subprocess("--bridge-leak-check=fail")
    result.assert_outcomes(passed=2, errors=1)


def test_the_marker_opts_one_test_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_leak="""
        import eventlet, pytest

        @pytest.mark.bridge_leak_check
        def test_checked():
            eventlet.spawn(eventlet.sleep, 60)

        @pytest.mark.bridge_leak_check("fail")
        def test_checked_strictly():
            eventlet.spawn(eventlet.sleep, 60)

        def test_not_checked():
            eventlet.spawn(eventlet.sleep, 60)
        """
    )
    result = pytester.runpytest_subprocess("-W", "error::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_checked_strictly*",
            "*test_leak.py::test_checked_strictly left green work behind:*",
            "*BridgeLeakWarning: test_leak.py::test_checked left green work behind:*",
            SUMMARY.format(count="1 test"),
        ]
    )
    assert "test_not_checked left green work behind" not in result.stdout.str()


def test_the_marker_on_a_module_and_its_mode_wins_over_the_projects(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_leak="""
        import eventlet, pytest

        pytestmark = pytest.mark.bridge_leak_check("warn")

        def test_leaks():
            eventlet.spawn(eventlet.sleep, 60)
        """
    )
    result = pytester.runpytest_subprocess("--bridge-leak-check=fail")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*BridgeLeakWarning*test_leaks left green work behind*"])


def test_a_bad_marker_argument_fails_that_test_naming_the_modes(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_leak="""
        import pytest

        @pytest.mark.bridge_leak_check("strict")
        def test_x():
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.bridge_leak_check takes one optional mode, 'warn' or 'fail'*"]
    )


def test_the_plugins_fixtures_opt_a_test_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_leak="""
        import eventlet, pytest

        def test_with_spawn_green(spawn_green):
            eventlet.spawn(eventlet.sleep, 60)  # not through spawn_green: left behind

        def test_with_bridge_hub(bridge_hub):
            eventlet.spawn(eventlet.sleep, 60)

        @pytest.fixture
        def service(bridge_hub):
            return bridge_hub

        def test_through_another_fixture(service):
            eventlet.spawn(eventlet.sleep, 60)
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*BridgeLeakWarning: test_leak.py::test_with_spawn_green left green work behind*",
            "*BridgeLeakWarning: test_leak.py::test_with_bridge_hub left green work behind*",
            "*BridgeLeakWarning: test_leak.py::test_through_another_fixture left green work*",
        ]
    )
    assert "left greenthreads behind" not in result.stdout.str()


def test_leak_check_off_checks_and_counts_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_leak=LEAKY
        + """
import pytest

@pytest.mark.bridge_leak_check("fail")
def test_marked(spawn_green):
    eventlet.spawn(eventlet.sleep, 60)
"""
    )
    pytester.makeini("[pytest]\nbridge_leak_check = off\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["bridge: leak check off"])
    assert "BridgeLeakWarning" not in result.stdout.str()
    assert "left greenthreads behind" not in result.stdout.str()


def test_a_suite_on_another_hub_gets_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVENTLET_HUB")
    pytester.makepyfile(
        test_leak=LEAKY
        + """
import bridge  # installed and imported, but the hub is eventlet's default

def test_the_hub_is_not_bridges():
    assert not isinstance(eventlet.hubs.get_hub(), bridge.hub.Hub)
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)
    assert "BridgeLeakWarning" not in result.stdout.str()
    assert "left greenthreads behind" not in result.stdout.str()
    result = pytester.runpytest_subprocess("--bridge-leak-check=fail")  # opted in: still nothing
    result.assert_outcomes(passed=3)


def test_a_failing_fixture_teardown_still_ends_the_tracking(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_teardown="""
        import pytest
        from eventlet import greenthread

        ORIGINAL = greenthread.GreenThread.__init__

        @pytest.fixture
        def broken():
            yield
            raise RuntimeError("teardown breaks")

        def test_a(broken):
            pass

        @pytest.mark.bridge_allow_leaks
        def test_b():
            assert greenthread.GreenThread.__init__ is ORIGINAL
        """
    )
    result = pytester.runpytest_subprocess("--bridge-leak-check=warn")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: teardown breaks*"])


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
