"""What the compatibility gates share: eventlet's own suite and the libraries' suites.

``compat/eventlet_suite.py`` (eventlet's tests under pytest) and ``compat/libs_suite.py``
(OpenStack libraries' tests under stestr) differ in how they install and run a suite and in
how they read its per-test outcomes. Everything after that is the same and lives here: the
result model (a test id -> outcome per hub run), downloading an sdist into the cache under
``compat/_work/``, running a command in a session of its own with a time limit, the epolls
baseline file, the comparison that makes the gate ("fails on bridge.hub, passes on epolls"),
and the table.

Test ids are whatever the runner calls a test: pytest node ids for eventlet's suite
(``tests/x_test.py::Class::test``, where a whole module can stand for its tests), dotted
unittest ids for stestr (``oslo_log.tests.unit.test_log.Case.test``). The comparison
helpers accept both.

Standard library only: the scripts run with the project's interpreter, before (and
independently of) anything they install.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

COMPAT_DIR = Path(__file__).resolve().parent
WORK_DIR = COMPAT_DIR / "_work"
BRIDGE_HUB = "bridge.hub"
REFERENCE_HUB = "epolls"
KEEP_RUN_DIRS = 5  # older run-* directories (per parent directory) are removed

OUTCOMES = ("passed", "failed", "error", "skipped")
FAILING = ("failed", "error")


class Broken(Exception):
    """The run could not produce a trustworthy result (not a test failure)."""


@dataclass
class CaseResult:
    outcome: str  # passed | failed | error | skipped
    message: str = ""


@dataclass
class HubRun:
    hub: str
    log: Path  # the runner's full output
    results: dict[str, CaseResult] = field(default_factory=dict)
    duration: float = 0.0
    broken: str = ""  # why the run is not trustworthy; empty when it is
    hub_class: str = ""  # the class eventlet made for `hub`, where the gate checked it

    def count(self, *outcomes: str) -> int:
        return sum(1 for r in self.results.values() if r.outcome in outcomes)

    def counts(self) -> dict[str, int]:
        return {o: self.count(o) for o in OUTCOMES}


# ---------------------------------------------------------------------------- sdists


def installed_version(distribution: str) -> str:
    """The version of `distribution` installed for this interpreter.

    :raises Broken: it is not installed.
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise Broken(f"{distribution} is not installed for {sys.executable}") from None


def fetch_sdist(name: str, version: str, cache_name: str | None = None) -> Path:
    """Return the cached sdist of name==version, downloading it from PyPI if needed.

    :param name: the distribution's name as pip knows it (``eventlet``, ``oslo.log``).
    :param cache_name: the file name in ``compat/_work/``; default ``<name>-<version>.tar.gz``.
    :raises Broken: pip could not download exactly one sdist.
    """
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    cached = WORK_DIR / (cache_name or f"{name}-{version}.tar.gz")
    if cached.is_file():
        return cached
    print(f"downloading the {name} {version} sdist from PyPI into {rel(WORK_DIR)}/ ...")
    with tempfile.TemporaryDirectory(dir=WORK_DIR, prefix="download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        cmd += ["--no-binary", ":all:", f"{name}=={version}", "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise Broken(f"pip download of the {name} sdist timed out") from None
        found = list(Path(tmp).glob("*.tar.gz"))
        if proc.returncode != 0 or len(found) != 1:
            raise Broken(f"pip download failed:\n{tail(proc.stdout + proc.stderr, 15)}")
        found[0].replace(cached)  # atomic: never leaves a half-written cache entry
    return cached


def extract(sdist: Path, into: Path) -> None:
    """Unpack an sdist from PyPI, refusing members that would land outside `into`."""
    import tarfile

    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # Python without extraction filters; the archive comes from PyPI
            tar.extractall(into)


def new_run_dir(parent: Path = WORK_DIR) -> Path:
    """A fresh ``run-<stamp>-*`` directory under `parent`; keeps the newest few older ones."""
    import shutil

    parent.mkdir(parents=True, exist_ok=True)
    old = sorted(parent.glob("run-*"))
    for stale in old[: max(0, len(old) - (KEEP_RUN_DIRS - 1))]:
        shutil.rmtree(stale, ignore_errors=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(tempfile.mkdtemp(prefix=f"run-{stamp}-", dir=parent))


# ---------------------------------------------------------------------------- processes


def run_with_timeout(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    log: Path,
    limit: float,
    stdout: Path | None = None,
) -> int:
    """Run `cmd`, its output to `log` (stdout to `stdout` if given), killed after `limit` s.

    :raises Broken: the command ran longer than `limit`; it and everything it started
        have been killed.
    """
    with (
        log.open("wb") as err,
        open(os.devnull, "wb") if stdout is None else stdout.open("wb") as out,
    ):
        # A session of its own, so a timeout kills the test processes the tests started too.
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=err if stdout is None else out,
            stderr=subprocess.STDOUT if stdout is None else err,
            start_new_session=True,
        )
        try:
            return proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            raise Broken(f"the whole run took longer than {limit:.0f} s and was killed") from None
        finally:  # also reaps what the tests left running
            kill_session(proc)


def kill_session(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the command and everything it started have exited
    proc.wait()


# ---------------------------------------------------------------------------- baseline


def read_baseline(path: Path, version_key: str) -> tuple[dict[str, str], str]:
    """Return (test id -> outcome on epolls, version) from a baseline file.

    :param version_key: the header line ``# <version_key>: <version> ...`` that names the
        version of the package the baseline was made with.
    :raises Broken: the file is missing or lists no test.
    """
    if not path.is_file():
        raise Broken(f"no baseline {rel(path)}: run epolls too, or --write-baseline")
    outcomes: dict[str, str] = {}
    version = ""
    for line in path.read_text().splitlines():
        if line.startswith(f"# {version_key}:"):
            version = line.split(":", 1)[1].split()[0]
        line = line.split("#", 1)[0].strip()
        if line:
            outcome, test_id = line.split(None, 1)
            outcomes[test_id] = outcome
    if not outcomes:
        raise Broken(f"the baseline {rel(path)} lists no test")
    return outcomes, version


def baseline_body(results: dict[str, CaseResult]) -> list[str]:
    """Every test's outcome, one ``<outcome> <test id>`` a line, failing ones first."""
    order = {"failed": 0, "error": 1, "skipped": 2, "passed": 3}
    entries = sorted((order[r.outcome], t, r.outcome) for t, r in results.items())
    return [f"{outcome} {test_id}" for _, test_id, outcome in entries]


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------------------- comparing


def outcomes_of(run: HubRun) -> dict[str, str]:
    return {t: r.outcome for t, r in run.results.items()}


def outcome_in(results: dict[str, str], test_id: str) -> str | None:
    """The outcome of test_id in a run's results, looking through module-level entries.

    pytest node ids only: a module skipped (or broken) at collection stands for its tests.
    A dotted unittest id is looked up as it is.
    """
    if test_id in results:
        return results[test_id]
    module, _, rest = test_id.partition("::")
    if rest and module in results:  # the whole module was skipped (or broke) at collection
        return results[module]
    if not rest:  # test_id is a whole module: it passed if any of its tests passed
        prefix = module + "::"
        if any(o == "passed" for t, o in results.items() if t.startswith(prefix)):
            return "passed"
    return None  # not run


def fails_but_passes(run: HubRun, reference: dict[str, str]) -> list[str]:
    """Tests that fail in `run` and passed in `reference`."""
    return sorted(
        test_id
        for test_id, r in run.results.items()
        if r.outcome in FAILING and outcome_in(reference, test_id) == "passed"
    )


def passes_but_not_run(run: HubRun, reference: dict[str, str], subset: bool) -> list[str]:
    """Tests that passed in `reference` but were skipped (or, in a full run, not run) in `run`."""
    own = outcomes_of(run)
    found = []
    for test_id, outcome in reference.items():
        own_outcome = outcome_in(own, test_id)
        not_run = own_outcome is None and not subset
        if outcome == "passed" and (own_outcome == "skipped" or not_run):
            found.append(test_id)
    return sorted(found)


# ---------------------------------------------------------------------------- report


def print_table(
    runs: Iterable[HubRun], first: str = "hub", label: Callable[[HubRun], str] | None = None
) -> None:
    """hub | passed | failed | errors | skipped | duration | status, one row per run."""
    runs = list(runs)
    name = label or (lambda run: run.hub)
    header = (first, "passed", "failed", "errors", "skipped", "duration", "status")
    rows = [
        (
            name(run),
            *(str(run.count(o)) for o in OUTCOMES),
            f"{run.duration:.1f}s",
            f"BROKEN: {run.broken}" if run.broken else "ok",
        )
        for run in runs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row[:-1], widths, strict=True))
        ]
        print("  ".join([*cells, row[-1]]))


def print_tests(title: str, test_ids: list[str], run: HubRun | None = None) -> None:
    print(f"\n{title}: {len(test_ids)}")
    for test_id in test_ids:
        result = run.results.get(test_id) if run else None
        detail = f"  [{result.outcome}] {result.message}" if result else ""
        print(f"  {test_id}{detail}")


def tail(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
