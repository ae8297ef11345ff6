"""Test helpers for testtools / stestr suites (OpenStack's), as the pytest plugin is for pytest.

::

    import testtools
    import bridge.testing

    class ConductorTest(testtools.TestCase):
        def setUp(self):
            super().setUp()
            self.useFixture(bridge.testing.HubFixture())

:class:`HubFixture` makes sure bridge's hub is the hub (a fresh one per test
with ``fresh_hub=True``), and fails the test at cleanup if it left greenthreads,
fd listeners or timers behind, naming each (``leak_check="warn"`` only
warns, ``"off"`` does not look). Requires the ``fixtures`` package.
"""

from __future__ import annotations

import warnings

import fixtures

from bridge import _leaks

__all__ = ("HubFixture", "LeakError")


class LeakError(AssertionError):
    """A test left green work behind (see :class:`HubFixture`)."""


class HubFixture(fixtures.Fixture):
    """bridge's hub for one test, with a leak check at cleanup.

    :param fresh_hub: give the test a fresh hub (``eventlet.hubs.use_hub``), as
        eventlet's own test suite does between tests.
    :param leak_check: ``"fail"`` (default), ``"warn"`` or ``"off"``.
    """

    def __init__(self, *, fresh_hub: bool = False, leak_check: str = "fail") -> None:
        super().__init__()
        if leak_check not in ("fail", "warn", "off"):
            raise ValueError(f"leak_check={leak_check!r}: use 'fail', 'warn' or 'off'")
        self.fresh_hub = fresh_hub
        self.leak_check = leak_check

    def _setUp(self) -> None:
        import eventlet.hubs

        from bridge._core import current_hub

        if self.fresh_hub:
            eventlet.hubs.use_hub("bridge.hub")
        self.hub = current_hub()
        if self.leak_check != "off":
            tracker = _leaks.LeakTracker(self.hub).start()
            self.addCleanup(self._check, tracker)

    def _check(self, tracker: _leaks.LeakTracker) -> None:
        leaks = tracker.stop()
        if not leaks:
            return
        message = "the test left green work behind:\n  " + "\n  ".join(leaks)
        if self.leak_check == "fail":
            raise LeakError(message)
        warnings.warn(message, stacklevel=1)
