"""bridge.testing.HubFixture, in a real testtools suite run by stestr."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SUITE = """
import eventlet
import testtools

import bridge.testing


class ConductorTest(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(bridge.testing.HubFixture(fresh_hub=True))

    def test_clean(self):
        self.assertEqual(eventlet.spawn(lambda: 42).wait(), 42)

    def test_leaks_a_greenthread(self):
        eventlet.spawn(eventlet.sleep, 60)


class WarnOnlyTest(testtools.TestCase):
    def test_leak_only_warns(self):
        self.useFixture(bridge.testing.HubFixture(leak_check="warn"))
        eventlet.spawn(eventlet.sleep, 60)
"""


def test_stestr_runs_a_testtools_suite_with_the_fixture(tmp_path: Path) -> None:
    package = tmp_path / "svc_tests"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "test_conductor.py").write_text(textwrap.dedent(SUITE))
    (tmp_path / ".stestr.conf").write_text("[DEFAULT]\ntest_path=./svc_tests\ntop_dir=./\n")
    env = dict(os.environ, EVENTLET_HUB="bridge.hub")
    result = subprocess.run(
        [sys.executable, "-m", "stestr", "run", "--serial"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out  # one test fails: the leak
    assert "Totals" in out and "Passed: 2" in out and "Failed: 1" in out, out
    assert "test_leaks_a_greenthread" in out
    assert "LeakError: the test left green work behind:" in out
    assert "test_conductor.py:" in out and "eventlet.spawn(eventlet.sleep, 60)" in out


def test_bad_leak_check_value() -> None:
    import pytest

    import bridge.testing

    with pytest.raises(ValueError, match="'fail', 'warn' or 'off'"):
        bridge.testing.HubFixture(leak_check="sometimes")
