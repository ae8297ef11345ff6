"""The libraries in the libraries' compatibility gate, and what the gate knows about each.

One :class:`Library` per suite run by ``compat/libs_suite.py``: which release, why that one,
how its tox.ini runs its unit tests (the environment it sets), what is excluded on every hub
and why, and the tests that fail on ``bridge.hub`` today for a known hub bug (with the
cause), so that CI stays green while the hub is fixed and says when one starts passing.

Test ids are stestr's (dotted unittest ids). Data only; standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Cause:
    """Why tests fail on bridge.hub but pass on epolls: one hub bug."""

    title: str
    detail: str
    repro: str  # a script under compat/repro/ that shows it without the library


@dataclass(frozen=True)
class Library:
    name: str  # the distribution on PyPI, as pip spells it
    version: str  # the release whose sdist is tested
    why: str  # why this release
    # What tox.ini (or the project's CI job) sets for the unit tests; EVENTLET_HUB is ours.
    setenv: dict[str, str]
    # The package whose import runs the suite's eventlet set-up (usually its tests package,
    # whose __init__ calls monkey_patch()); the pre-flight imports it, then asks for the hub.
    tests_package: str
    how: str  # how the tox env runs the suite, and what of it we run
    # Tests deselected on every hub: stestr id -> why (never hub bugs).
    excluded: dict[str, str] = field(default_factory=dict)
    # Tests that fail on bridge.hub and pass on epolls because of a hub bug: id -> cause key.
    known: dict[str, str] = field(default_factory=dict)
    ci: bool = True  # run by .ci/run (make compat-libs CI=1)
    extra_requirements: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return self.name.replace(".", "_")


_ROOT = (
    "Runs as root here (CI and developers' machines): the test makes a file unreadable with "
    "chmod and expects opening it to fail, but root reads it anyway. Fails on every hub."
)

CAUSES: dict[str, Cause] = {}

LIBRARIES: dict[str, Library] = {
    lib.name: lib
    for lib in (
        Library(
            name="oslo.log",
            version="8.3.2",
            why="The newest release; it still has its eventlet support (oslo_log.pipe_mutex "
            "picks an eventlet- or asyncio-hub-aware handler lock) and its CI still runs the "
            "unit tests monkey-patched on epolls and on eventlet's asyncio hub.",
            setenv={"OSLO_LOG_TEST_EVENTLET": "1", "PYTHONDONTWRITEBYTECODE": "1"},
            tests_package="oslo_log.tests",
            how="tox.ini's py3 env runs `stestr run` (test_path ./oslo_log/tests/unit); the "
            "project's CI jobs oslo.log-tox-py312-eventlet-patched(-asyncio) set "
            "OSLO_LOG_TEST_EVENTLET=1 (tests/__init__ calls eventlet.monkey_patch()) and "
            "EVENTLET_HUB=epolls or asyncio. We run that job's configuration.",
            excluded={
                "oslo_log.tests.unit.test_log.LogConfigTestCase"
                ".test_log_config_append_unreadable": _ROOT,
            },
        ),
        Library(
            name="futurist",
            version="3.5.0",
            why="The newest release; GreenThreadPoolExecutor and the green waiters are still "
            "there and tested.",
            setenv={"PYTHONDONTWRITEBYTECODE": "1"},
            tests_package="futurist.tests",
            how="tox.ini's py3 env runs `stestr run` (test_path ./futurist/tests). The suite "
            "does not monkey-patch; its green executor tests run greenthreads on the hub.",
        ),
        Library(
            name="oslo.concurrency",
            version="7.6.1",
            why="The newest release; lockutils and processutils still support eventlet, "
            "and tox runs the whole suite a second time monkey-patched.",
            setenv={"TEST_EVENTLET": "1", "PYTHONDONTWRITEBYTECODE": "1"},
            tests_package="oslo_concurrency.tests",
            how="tox.ini's py3 env runs `lockutils-wrapper stestr run` twice, with "
            "TEST_EVENTLET=0 and TEST_EVENTLET=1 (tests/__init__ calls eventlet.monkey_patch()); "
            "we run the TEST_EVENTLET=1 pass, the one that uses a hub.",
        ),
        Library(
            name="oslo.service",
            version="4.8.0",
            why="The newest release; the eventlet backend is still the default one and its "
            "tests run monkey-patched.",
            setenv={"PYTHONDONTWRITEBYTECODE": "1"},
            tests_package="oslo_service.tests",
            how="tox.ini's py3 env runs `stestr run` (test_path ./oslo_service/tests, the "
            "functional tests included); tests/__init__ calls eventlet.monkey_patch() unless "
            "OSLO_SERVICE_SKIP_EVENTLET is set.",
        ),
        Library(
            name="oslo.messaging",
            version="18.3.1",
            why="The newest release; the eventlet executor is still there, and "
            "tests/__init__ monkey-patches unconditionally.",
            setenv={"PYTHONDONTWRITEBYTECODE": "1"},
            tests_package="oslo_messaging.tests",
            how="tox.ini's py3 env runs `stestr run --slowest` (test_path ./oslo_messaging/tests; "
            "the functional tests skip without a broker URL in the environment).",
        ),
    )
}
