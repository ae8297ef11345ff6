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
    # A run in which no test finishes for this long is killed and resumed without the tests
    # in progress (they count as hung): about six times the suite's longest test on epolls.
    stall_timeout: int = 60
    ci: bool = True  # run by .ci/run (make compat-libs LIBS=ci)
    extra_requirements: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return self.name.replace(".", "_")


_ROOT = (
    "Runs as root here (CI and developers' machines): the test makes a file unreadable with "
    "chmod and expects opening it to fail, but root reads it anyway. Fails on every hub."
)

CAUSES: dict[str, Cause] = {
    "logging-reenters-hub": Cause(
        title="A logging handler that makes a green call re-enters the hub while it makes its "
        "loop: RecursionError",
        detail="The first green call in a process (or after the hub's loop closed) makes the "
        "owner loop with asyncio.new_event_loop(); the selector loop's constructor logs "
        "'Using selector: EpollSelector' on the asyncio logger at DEBUG. oslo.log's handler "
        "lock (pipe_mutex, the asyncio-hub flavour, since bridge.hub subclasses eventlet's "
        "asyncio hub) spawns a greenthread to take it, which asks the hub for its loop again "
        "while the first is still being made: another new loop, another log record, until "
        "RecursionError. Every oslo.log test that logs at DEBUG through its handlers before "
        "anything else made the hub's loop in that stestr worker fails this way (issue 8, "
        "report 2).",
        repro="compat/repro/logging_reenters_hub.py",
    ),
    "stuck-drain-after-failed-loop": Cause(
        title="After making the hub's loop failed once, no green work runs again: the test hangs",
        detail="Hub._make_ready sets _drain_pending before asking _registration_loop() for "
        "the loop to call_soon(_drain) on; when that raises (here the RecursionError above, "
        "in general any failure to make a loop), the flag stays set, no drain is scheduled "
        "ever again, and every later spawn, switch or sleep in that process waits forever. "
        "In oslo.log's suite the tests that run after a RecursionError in the same stestr "
        "worker hang until the gate kills the run (and resumes the remaining tests); a worker "
        "whose tests all finished hangs at exit too, when logging.shutdown() takes the "
        "handlers' green locks.",
        repro="compat/repro/failed_loop_start_stalls_hub.py",
    ),
}


def _known(prefix: str, block: str) -> dict[str, str]:
    """Parse a known-regressions block: ``[cause]`` lines, then test ids under `prefix`."""
    known: dict[str, str] = {}
    cause = ""
    for line in block.split():
        if line.startswith("["):
            cause = line.strip("[]")
            if cause not in CAUSES:
                raise ValueError(f"compat/libraries.py: unknown cause {cause!r}")
        else:
            known[prefix + line] = cause
    return known


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
            stall_timeout=30,  # its longest test takes 1 s on epolls
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
            excluded={
                "oslo_service.tests.backend.threading.test_launcher.LauncherTestCase"
                ".test_explicit_spawn_rejects_unpicklable_conf": (
                    "Version skew, not the hub: it expects AttributeError or PicklingError, "
                    "and oslo.config 10.7.0 (the newest, in compat/libs-constraints.txt) "
                    "raises its own ConfigOptsSerializationError. Fails on every hub."
                ),
                "oslo_service.tests.backend.threading.test_signal_handler.SignalHandlerTestCase"
                ".test_signal_handler": (
                    "Depends on test order, not on the hub: it sends SIGTERM to its own "
                    "process and expects the threading backend's handler to catch it; after "
                    "other tests of that backend ran in the same stestr worker, no handler is "
                    "installed and SIGTERM kills the worker (and with it the rest of the "
                    "worker's tests). Reproduced on epolls and on bridge.hub with the same "
                    "test order; whether it happens depends on stestr's split of the tests."
                ),
            },
        ),
        Library(
            name="oslo.messaging",
            version="18.3.1",
            why="The newest release; the eventlet executor is still there, and "
            "tests/__init__ monkey-patches unconditionally.",
            setenv={"PYTHONDONTWRITEBYTECODE": "1"},
            tests_package="oslo_messaging.tests",
            how="tox.ini's py3 env runs `stestr run --slowest` (test_path ./oslo_messaging/tests; "
            "the functional tests skip without a broker URL in the environment). Servers "
            "default to the eventlet executor when thread is monkey-patched, as here.",
        ),
    )
}
