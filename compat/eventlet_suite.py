#!/usr/bin/env python3
"""The compatibility gate: eventlet's own test suite, run on ``bridge.hub``.

What it does
------------
1. Finds the version of the *installed* eventlet, downloads that version's sdist from PyPI
   with ``pip download`` into ``compat/_work/`` (kept there as a cache; git-ignored) and
   unpacks it into a fresh run directory ``compat/_work/run-<stamp>/eventlet-<version>/``.
2. Deletes the sdist's own ``eventlet/`` source package from the unpacked tree, so the tests
   (which import ``eventlet`` and their helper package ``tests``) get the eventlet installed
   in the venv, exactly the code the bridge runs with; a pre-flight check in the run's own
   interpreter confirms this, and that the hub can be imported and started at all.
3. Runs ``pytest tests`` there once per hub named on the command line, each hub in its own
   subprocess with ``EVENTLET_HUB=<hub>`` (eventlet tests that start subprocesses pass it on,
   which is intended). pytest gets the sdist's own configuration (``-c pyproject.toml``,
   which has no pytest section, as in eventlet's tox runs), not this project's, with plugin
   autoloading off and only pytest-timeout loaded (so pytest-asyncio cannot interfere),
   ``-p no:cacheprovider``, a per-test timeout, a timeout for the whole run and
   ``--junitxml`` for per-test outcomes. The full pytest output of each hub goes to
   ``<run dir>/<hub>.log``.
4. Prints a table (hub | passed | failed | errors | skipped | duration), the excluded tests
   with their reasons, and every test that fails on ``bridge.hub`` but passes on ``epolls``.
   When ``epolls`` is not run (the CI mode), "passes on epolls" is taken from the checked-in
   baseline ``compat/epolls_baseline.txt`` (made with ``--write-baseline``): its header
   lists the tests that fail on epolls on this machine, its body every test's epolls
   outcome, so that tests skipped on epolls (e.g. ``tests/asyncio_test.py``, which runs on
   asyncio-based hubs only) are not gated in CI either, exactly as in a side-by-side run.
   Tests that pass on epolls but are skipped on bridge.hub are listed, not gated; so are
   tests that fail on bridge.hub but pass on any other hub run (e.g. asyncio).

The bar: every test that passes on epolls must pass on bridge.hub.

Exit status: 0 when the bar is met; 1 when a test that passes on epolls fails on bridge.hub;
2 when a run itself broke (hub cannot be imported, download failed, crash, timeout, no junit
xml, no test collected). The last line printed is ``compat: N passed, N failed`` for
bridge.hub (for the first hub run if bridge.hub was not among them); errors count as failed.

How to run
----------
    make compat                                   # bridge.hub only, against the baseline
    make compat HUBS="bridge.hub epolls asyncio"  # side by side
    .venv/bin/python compat/eventlet_suite.py bridge.hub -k "greenio and timeout"
    .venv/bin/python compat/eventlet_suite.py bridge.hub epolls --json compat/_work/out.json
    .venv/bin/python compat/eventlet_suite.py epolls --write-baseline   # refresh the baseline

Options: ``-k/--only EXPR`` passes a pytest ``-k`` expression (debugging a subset);
``--keep-going`` runs the remaining hubs even after a hub's run broke (by default the script
stops there); ``--json PATH`` writes per-hub counts and the regressions; ``--test-timeout``
and ``--run-timeout`` set the two timeouts. Needs network access to PyPI only for the first
download of a given eventlet version. Standard library only; what it shares with the
libraries' gate (``compat/libs_suite.py``) is in ``compat/_gate.py``.

Notes: the tests of ``tests/zmq_test.py`` (24) skip unless pyzmq is installed, and the
database tests skip without their drivers and servers, as in a bare eventlet checkout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from _gate import (
    BRIDGE_HUB,
    COMPAT_DIR,
    FAILING,
    REFERENCE_HUB,
    Broken,
    CaseResult,
    HubRun,
    baseline_body,
    extract,
    fails_but_passes,
    fetch_sdist,
    installed_version,
    new_run_dir,
    outcomes_of,
    passes_but_not_run,
    print_table,
    print_tests,
    read_baseline,
    rel,
    run_with_timeout,
    tail,
    utc_now,
)

BASELINE_PATH = COMPAT_DIR / "epolls_baseline.txt"

_TEST_NET = (
    "Connects to 192.0.2.1:80, assuming that TEST-NET-1 address is unroutable. On this "
    "workplace 192.0.2.1 is the sandbox's default gateway, a real host, and tests may send "
    "traffic to loopback addresses only; the outcome depends on the machine's network, not "
    "on the hub."
)

# Tests deselected on every hub: pytest node id -> why. Keep this short and justified.
EXCLUDED: dict[str, str] = {
    "tests/greenio_test.py::TestGreenSocket::test_connect_timeout": (
        f"{_TEST_NET} Expects the connect to time out; fails on epolls and asyncio too."
    ),
    "tests/greenio_test.py::TestGreenSocket::test_connect_ex_timeout": (
        f"{_TEST_NET} Expects connect_ex() to time out; fails on epolls and asyncio too."
    ),
    "tests/socket_test.py::test_create_connection_error": (
        f"{_TEST_NET} Accepts any OSError, so it passes on every hub, but it still sends a "
        "connection attempt off the machine."
    ),
}

_ANCHOR = (
    "Asserts `hub.greenlet.parent is getcurrent()` from green main: the identity of eventlet's "
    "hub greenlet. bridge.hub's `hub.greenlet` is a finished 'anchor' greenlet whose parent is "
    "the current dispatcher (see bridge/_core/_hub.py), so that greenthreads follow the hub "
    "between owner and guest mode. The behaviour the test protects is pinned by bridge's own "
    "tests/test_hub.py::"
)

# Tests deselected on bridge.hub only (they still run on the other hubs): each asserts an
# implementation detail that bridge's hub does differently on purpose; the behaviour behind it
# is pinned by a test of bridge's own, named in the reason.
EXCLUDED_ON_BRIDGE: dict[str, str] = {
    "tests/hub_test.py::TestDeadRunLoop::test_kill": (
        _ANCHOR + "test_killing_a_greenthread_after_the_hub_died_does_not_wake_green_main."
    ),
    "tests/hub_test.py::TestDeadRunLoop::test_parent": (
        _ANCHOR + "test_a_greenthread_outliving_a_dead_hub_greenlet_returns_to_the_new_one."
    ),
    "tests/greenio_test.py::TestGreenIoLong::test_multiple_readers": (
        "On asyncio-based hubs it asserts that hub_prevent_multiple_readers(False) is refused, "
        "eventlet's asyncio hub's limitation; bridge.hub supports several readers on one fd by "
        "design. Pinned by tests/test_hub.py::test_several_readers_on_one_fd."
    ),
}

# Run in the sdist tree with the run's interpreter and environment before pytest: checks
# that the installed eventlet (not the sdist's) is imported, and that the hub starts.
_PREFLIGHT = """
import json, eventlet, eventlet.hubs, tests
hub = eventlet.hubs.get_hub()
print(json.dumps({"eventlet": eventlet.__file__, "tests": tests.__file__,
                  "hub": type(hub).__module__ + "." + type(hub).__qualname__}))
"""

# ---------------------------------------------------------------------------- sdist


def installed_eventlet_version() -> str:
    return installed_version("eventlet")


def unpack(sdist: Path, version: str, run_dir: Path) -> Path:
    extract(sdist, run_dir)
    src = run_dir / f"eventlet-{version}"
    if not (src / "tests" / "__init__.py").is_file():
        raise Broken(f"unexpected sdist layout: no {rel(src)}/tests/__init__.py")
    # Without this the tests would import the sdist's copy of eventlet: pytest puts the
    # rootdir (the sdist tree) first on sys.path to import the `tests` package.
    shutil.rmtree(src / "eventlet")
    return src


# ---------------------------------------------------------------------------- running


def hub_env(hub: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS"):  # keep runs reproducible
        env.pop(var, None)
    env["EVENTLET_HUB"] = hub
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # as in eventlet's tox.ini
    return env


def preflight(hub: str, src: Path, env: dict[str, str]) -> str:
    """Import eventlet, the tests package and the hub the way the test run will."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PREFLIGHT],
            cwd=src,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        raise Broken("starting the hub timed out (pre-flight check)") from None
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise Broken(f"cannot start the hub: {last[0]}")
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise Broken(f"unexpected pre-flight output: {proc.stdout[-300:]!r}") from None
    if Path(info["eventlet"]).resolve().is_relative_to(src.resolve()):
        raise Broken(f"the sdist's eventlet is imported ({info['eventlet']}), not the venv's")
    if not Path(info["tests"]).resolve().is_relative_to(src.resolve()):
        raise Broken(f"the wrong `tests` package is imported: {info['tests']}")
    return str(info["hub"])


def run_hub(hub: str, src: Path, run_dir: Path, args: argparse.Namespace) -> HubRun:
    slug = hub.replace(":", "_")
    run = HubRun(hub, run_dir / f"{slug}.log")
    xml = run_dir / f"{slug}.xml"
    env = hub_env(hub)
    start = time.monotonic()
    try:
        hub_class = preflight(hub, src, env)
        print(f"[{hub}] hub class {hub_class}; running eventlet's tests ...", flush=True)
        cmd = [sys.executable, "-m", "pytest", "tests"]
        cmd += ["-c", "pyproject.toml", "--rootdir", "."]  # the sdist's config, not ours
        cmd += ["-p", "timeout", "-p", "no:cacheprovider"]
        cmd += ["--timeout", str(args.test_timeout), "-rfE", "--junitxml", str(xml)]
        for test_id in EXCLUDED | (EXCLUDED_ON_BRIDGE if hub == BRIDGE_HUB else {}):
            cmd += ["--deselect", test_id]
        if args.only:
            cmd += ["-k", args.only]
        code = run_with_timeout(cmd, src, env, run.log, args.run_timeout)
        run.results = parse_junit(xml, src)
        if code not in (0, 1):  # 1: tests failed; anything else: pytest could not finish
            raise Broken(f"pytest exited with status {code} ({pytest_exit_meaning(code)})")
        if not run.results:
            raise Broken("no test was collected")
    except Broken as exc:
        run.broken = str(exc)
    run.duration = time.monotonic() - start
    return run


def pytest_exit_meaning(code: int) -> str:
    meanings = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}
    return meanings.get(code, "killed by a signal" if code < 0 else "unknown")


def parse_junit(xml: Path, src: Path) -> dict[str, CaseResult]:
    if not xml.is_file():
        raise Broken("pytest wrote no junit xml (crashed?)")
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        raise Broken(f"unreadable junit xml: {exc}") from None
    rank = {"skipped": 0, "passed": 1, "failed": 2, "error": 3}
    results: dict[str, CaseResult] = {}
    for case in root.iter("testcase"):
        test_id = node_id(case.get("classname", ""), case.get("name", ""), src)
        children = {child.tag: child for child in case}
        result = CaseResult("passed")
        # A test that fails in its call and errors in its teardown counts as an error.
        for tag, outcome in (("error", "error"), ("failure", "failed"), ("skipped", "skipped")):
            if tag in children:
                message = (children[tag].get("message") or "").strip().splitlines()
                result = CaseResult(outcome, message[0][:200] if message else "")
                break
        previous = results.get(test_id)
        if previous is None or rank[result.outcome] > rank[previous.outcome]:
            results[test_id] = result
    return results


def node_id(classname: str, name: str, src: Path) -> str:
    """Turn junit's ("tests.greenio_test.TestGreenSocket", "test_x") into a pytest node id.

    A module that was skipped or broke at collection comes as ("", "tests.asyncio_test");
    it becomes "tests/asyncio_test.py".
    """
    if not classname:
        module = name.replace(".", "/") + ".py"
        return module if (src / module).is_file() else name
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        module = "/".join(parts[:cut]) + ".py"
        if (src / module).is_file():
            return "::".join([module, *parts[cut:], name])
    return f"{classname}::{name}"


# ---------------------------------------------------------------------------- baseline


def read_eventlet_baseline() -> tuple[dict[str, str], str]:
    """Return (test id -> outcome on epolls, eventlet version the baseline was made with)."""
    return read_baseline(BASELINE_PATH, "eventlet")


def write_baseline(run: HubRun, version: str, argv: list[str]) -> None:
    c = run.counts()
    now = utc_now()
    failing = sorted(t for t, r in run.results.items() if r.outcome in FAILING)
    lines = [
        "# epolls baseline for compat/eventlet_suite.py, the eventlet compatibility gate.",
        f"# Produced by: .venv/bin/python compat/eventlet_suite.py {shlex.join(argv)}",
        f"# eventlet: {version} (the installed package, run with the tests of its sdist)",
        f"# Python {platform.python_version()} on {platform.system()} {platform.machine()},"
        f" {os.cpu_count()} cores, {now}",
        f"# epolls: {c['passed']} passed, {c['failed']} failed, {c['error']} errors,"
        f" {c['skipped']} skipped; {len(EXCLUDED)} excluded (see EXCLUDED in the script)",
        "#",
        "# Tests that FAIL on epolls on this machine (bridge.hub may fail them too):",
        *([f"#   {t}" for t in failing] or ["#   none"]),
        "#",
        "# Then every test's outcome on epolls, one '<outcome> <pytest node id>' a line, failing",
        "# ones first: the gate needs to know which tests passed (those must pass on bridge.hub)",
        "# and which were skipped or not run on epolls (those are not gated).",
    ]
    lines += baseline_body(run.results)
    BASELINE_PATH.write_text("\n".join(lines) + "\n")
    print(f"\nwrote {rel(BASELINE_PATH)}")


# ---------------------------------------------------------------------------- report


def print_exclusions(src: Path) -> None:
    print(f"\nexcluded on {BRIDGE_HUB} only (deselected): {len(EXCLUDED_ON_BRIDGE)}")
    for test_id, reason in EXCLUDED_ON_BRIDGE.items():
        print(f"  {test_id}")
        for line in textwrap.wrap(reason, 90):
            print(f"      {line}")
    print(f"\nexcluded on every hub (deselected): {len(EXCLUDED)}")
    for test_id, reason in EXCLUDED.items():
        print(f"  {test_id}")
        print(textwrap.fill(reason, 96, initial_indent=" " * 6, subsequent_indent=" " * 6))
        if not (src / test_id.split("::")[0]).is_file():
            print("      WARNING: this test file does not exist in this eventlet version")


def write_json(
    path: Path,
    version: str,
    runs: list[HubRun],
    reference: str,
    regressions: list[str],
    exit_code: int,
) -> None:
    bridge = next((run for run in runs if run.hub == BRIDGE_HUB), None)
    data = {
        "eventlet_version": version,
        "hubs": {
            run.hub: {
                **run.counts(),
                "duration_s": round(run.duration, 1),
                "broken": run.broken or None,
                "log": str(run.log),
            }
            for run in runs
        },
        "reference": reference or None,
        "regressions": [
            {"test": t, "outcome": bridge.results[t].outcome, "message": bridge.results[t].message}
            for t in regressions
            if bridge is not None
        ],
        "excluded": EXCLUDED,
        "excluded_on_bridge": EXCLUDED_ON_BRIDGE,
        "exit_code": exit_code,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run eventlet's own test suite on one or more hubs and gate bridge.hub.",
        epilog="Exit status: 0 bar met, 1 regressions on bridge.hub, 2 a run broke.",
    )
    parser.add_argument(
        "hubs", nargs="*", default=[BRIDGE_HUB], help="EVENTLET_HUB values (default: bridge.hub)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument("-k", "--only", metavar="EXPR", help="pytest -k expression (a subset)")
    parser.add_argument(
        "--keep-going", action="store_true", help="run the remaining hubs after a run broke"
    )
    parser.add_argument(
        "--write-baseline",
        action="store_true",
        help=f"write {rel(BASELINE_PATH)} from this run's epolls results",
    )
    parser.add_argument("--test-timeout", type=int, default=60, metavar="S", help="per test")
    parser.add_argument(
        "--run-timeout", type=int, default=900, metavar="S", help="per hub, for the whole run"
    )
    args = parser.parse_args(argv)
    if len(set(args.hubs)) != len(args.hubs):
        parser.error("a hub is named twice")
    if args.write_baseline and (REFERENCE_HUB not in args.hubs or args.only):
        parser.error("--write-baseline needs epolls among the hubs and no -k/--only")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        version = installed_eventlet_version()
        sdist = fetch_sdist("eventlet", version)
        run_dir = new_run_dir()
        src = unpack(sdist, version, run_dir)
    except Broken as exc:
        print(f"compat: cannot set up eventlet's test suite: {exc}")
        print("verdict: FAIL, run broken")
        print("compat: 0 passed, 0 failed")
        return 2
    print(f"eventlet {version} (installed); tests of {sdist.name} in {rel(src)}")
    if importlib.util.find_spec("zmq") is None:
        print("note: pyzmq is not installed, so the tests of tests/zmq_test.py skip")

    runs: list[HubRun] = []
    for hub in args.hubs:
        run = run_hub(hub, src, run_dir, args)
        runs.append(run)
        status = f"BROKEN: {run.broken}" if run.broken else "done"
        print(f"[{hub}] {status} in {run.duration:.1f}s (pytest output: {rel(run.log)})")
        if run.broken and run.log.is_file():
            print(tail(run.log.read_text(errors="replace"), 25))
        if run.broken and not args.keep_going and hub != args.hubs[-1]:
            print("stopping here (use --keep-going to run the remaining hubs)")
            break
    by_hub = {run.hub: run for run in runs}
    bridge = by_hub.get(BRIDGE_HUB)
    epolls = by_hub.get(REFERENCE_HUB)

    print()
    print_table(runs)
    print_exclusions(src)

    # The reference for the bar: this run's epolls results, else the checked-in baseline.
    reference: dict[str, str] = {}
    reference_name = ""
    if epolls is not None and not epolls.broken:
        reference = outcomes_of(epolls)
        reference_name = "epolls (this run)"
    elif bridge is not None:
        try:
            reference, baseline_version = read_eventlet_baseline()
            reference_name = f"epolls (baseline {rel(BASELINE_PATH)})"
            if baseline_version != version:
                print(
                    f"\nWARNING: the baseline was made with eventlet {baseline_version}, "
                    f"installed is {version}: refresh it with --write-baseline"
                )
        except Broken as exc:
            bridge.broken = bridge.broken or str(exc)
            print(f"\n{exc}")

    regressions: list[str] = []
    if bridge is not None and bridge.results and reference_name:
        regressions = fails_but_passes(bridge, reference)
        print_tests(f"fail on {BRIDGE_HUB} but pass on {reference_name}", regressions, bridge)
        skipped = passes_but_not_run(bridge, reference, subset=bool(args.only))
        print_tests(f"(info, not gated) pass on epolls, skipped on {BRIDGE_HUB}", skipped)
        for other in runs:
            if other.hub not in (BRIDGE_HUB, REFERENCE_HUB) and not other.broken:
                own = outcomes_of(other)
                extra = fails_but_passes(bridge, own)
                title = f"(info, not gated) fail on {BRIDGE_HUB} but pass on {other.hub}"
                print_tests(title, extra, bridge)

    if args.write_baseline:
        if epolls is not None and not epolls.broken:
            write_baseline(epolls, version, sys.argv[1:] if argv is None else argv)
        else:
            print(f"\nnot writing {rel(BASELINE_PATH)}: the epolls run did not complete")

    broken = [run.hub for run in runs if run.broken]
    exit_code = 2 if broken else 1 if regressions else 0
    if args.json:
        write_json(args.json, version, runs, reference_name, regressions, exit_code)

    print()
    if broken:
        print(f"verdict: FAIL, run broken: {', '.join(broken)}")
    elif regressions:
        print(f"verdict: FAIL, {len(regressions)} tests pass on epolls but fail on {BRIDGE_HUB}")
    elif bridge is None:
        print(f"verdict: ok ({BRIDGE_HUB} was not run, nothing gated)")
    else:
        print(f"verdict: ok, every test that passes on epolls passes on {BRIDGE_HUB}")
    summary = bridge or runs[0]
    print(f"compat: {summary.count('passed')} passed, {summary.count(*FAILING)} failed")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
