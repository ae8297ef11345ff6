#!/usr/bin/env python3
"""The libraries' compatibility gate: OpenStack libraries' own unit tests on ``bridge.hub``.

Beside eventlet's own suite (``compat/eventlet_suite.py``), the suites of libraries that
drive the hub hard, the way real services do: oslo.log (monkey-patched, DEBUG logging
through handlers that take green locks), futurist (green executors), oslo.concurrency
(green locks, processutils), oslo.service (loopingcall, threadgroup, launchers) and
oslo.messaging (eventlet executor, fake and in-memory drivers). What each library is, why
that release, what its tox.ini sets, what is excluded and what is known to fail lives in
``compat/libraries.py``.

What it does, per library
-------------------------
1. Downloads the release's sdist (``pip download --no-deps --no-binary :all:``) into the
   cache ``compat/_work/`` (git-ignored) and makes (or reuses) a venv of its own,
   ``compat/_work/libs/venvs/<lib>-<version>/``, with the library from its sdist, its
   ``test-requirements.txt``, the eventlet version installed here, and this checkout
   (editable, so the venv always runs the checkout's ``bridge``). Versions of everything
   else come from the checked-in ``compat/libs-constraints.txt`` (the part of OpenStack's
   upper-constraints we need, which is not reachable from here), so runs are reproducible.
   The venv is remade when any of those inputs change.
2. Per hub, in a fresh copy of the sdist tree: a pre-flight in the venv imports the suite's
   tests package (which calls ``eventlet.monkey_patch()`` where the suite does) and reports
   the hub class eventlet made; then ``stestr run --subunit`` with the environment of the
   library's tox env plus ``EVENTLET_HUB=<hub>``. Every Python process of the run records
   the hub it really used (``compat/_probe/sitecustomize.py``); a process that used another
   hub than the pre-flight's breaks the run (a suite selecting a hub in code would silently
   ignore EVENTLET_HUB).
3. Per-test outcomes come from the subunit stream (read by ``compat/_subunit_results.py``
   in the library's venv). A run in which no test finishes for ``--stall-timeout`` seconds
   is killed: the tests in progress count as failed ("hung"), and the tests not run yet are
   run in a new stestr run (``--load-list``), so one hang costs one test, not the suite.
4. The gate: a test that passes on epolls and fails on bridge.hub is a regression, unless
   the library lists it as a known regression (``known`` in ``compat/libraries.py``, each
   with its cause); known ones are reported apart, and one that passes again is reported
   ("remove it from the list"). When epolls is not run (the CI mode), "passes on epolls"
   comes from the checked-in baseline ``compat/baselines/<lib>.epolls.txt``, made with
   ``--write-baseline``. Excluded tests (``excluded``) are deselected on every hub.

Exit status: 0 when the bar is met for every library; 1 when a test that passes on epolls
fails on bridge.hub and is not a known regression; 2 when a run itself broke (install
failed, the hub could not start, a process used another hub, the whole run timed out, no
test ran). The last line is ``compat-libs: N passed, N failed`` for bridge.hub over all the
libraries run (known regressions are among the failed).

How to run
----------
    make compat-libs                                  # every library, bridge.hub vs baselines
    make compat-libs LIBS=oslo.log HUBS="bridge.hub epolls"   # side by side
    .venv/bin/python compat/libs_suite.py --libs ci           # what .ci/run runs
    .venv/bin/python compat/libs_suite.py --libs oslo.log bridge.hub --filter test_log
    .venv/bin/python compat/libs_suite.py epolls --write-baseline      # refresh baselines
    .venv/bin/python compat/libs_suite.py --list                       # the libraries

Standard library only; the network is needed only for the first install of each venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from _gate import (
    BRIDGE_HUB,
    COMPAT_DIR,
    FAILING,
    REFERENCE_HUB,
    WORK_DIR,
    Broken,
    CaseResult,
    HubRun,
    baseline_body,
    extract,
    fails_but_passes,
    fetch_sdist,
    installed_version,
    kill_session,
    new_run_dir,
    outcomes_of,
    passes_but_not_run,
    print_table,
    print_tests,
    read_baseline,
    rel,
    tail,
    utc_now,
)
from libraries import CAUSES, LIBRARIES, Library

ROOT = COMPAT_DIR.parent
LIBS_WORK = WORK_DIR / "libs"
VENVS = LIBS_WORK / "venvs"
BASELINES = COMPAT_DIR / "baselines"
CONSTRAINTS = COMPAT_DIR / "libs-constraints.txt"
PROBE = COMPAT_DIR / "_probe"
SUBUNIT_READER = COMPAT_DIR / "_subunit_results.py"
MAX_RESUMES = 8  # hangs or dead workers tolerated per run before it counts as broken

# Run in the sdist tree with the venv's interpreter and the run's environment: imports the
# suite's tests package the way stestr's workers will, then asks eventlet for its hub.
_PREFLIGHT = """
import importlib, json, sys
pkg = importlib.import_module(sys.argv[1])
import eventlet, eventlet.hubs, eventlet.patcher
hub = eventlet.hubs.get_hub()
bridge = sys.modules.get("bridge")
print(json.dumps({
    "tests": pkg.__file__, "eventlet": eventlet.__version__,
    "hub": type(hub).__module__ + "." + type(hub).__qualname__,
    "patched": eventlet.patcher.is_monkey_patched("socket"),
    "bridge": getattr(bridge, "__file__", None),
}))
"""

# subunit status -> the gate's outcome
_STATUS = {
    "success": "passed",
    "fail": "failed",
    "uxsuccess": "failed",
    "skip": "skipped",
    "xfail": "skipped",
    "inprogress": "failed",
}


@dataclass
class LibRun:
    """One library: its setup and its runs on each hub."""

    lib: Library
    venv: Path | None = None
    install_s: float = 0.0
    broken: str = ""  # the setup broke: no hub ran
    runs: list[HubRun] = field(default_factory=list)
    reference: str = ""
    regressions: list[str] = field(default_factory=list)  # not known: these fail the gate
    known_failing: list[str] = field(default_factory=list)
    known_passing: list[str] = field(default_factory=list)  # "remove it from the list"
    not_run: list[str] = field(default_factory=list)  # pass on epolls, skipped on bridge.hub

    def run(self, hub: str) -> HubRun | None:
        return next((r for r in self.runs if r.hub == hub), None)


# ---------------------------------------------------------------------------- venvs


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def prepare_venv(lib: Library, src: Path, eventlet_version: str, log: Path) -> Path:
    """The library's test venv, made or reused; returns its directory.

    :raises Broken: pip could not install the library with its test requirements.
    """
    requirements = src / "test-requirements.txt"
    inputs = [
        lib.name,
        lib.version,
        platform.python_version(),
        eventlet_version,
        requirements.read_text() if requirements.is_file() else "",
        CONSTRAINTS.read_text() if CONSTRAINTS.is_file() else "",
        (ROOT / "pyproject.toml").read_text(),  # this checkout's own dependencies
        *lib.extra_requirements,
    ]
    key = hashlib.sha256("\0".join(inputs).encode()).hexdigest()
    venv = VENVS / f"{lib.name}-{lib.version}"
    stamp = venv / ".compat-stamp"
    if stamp.is_file() and stamp.read_text().strip() == key and venv_python(venv).exists():
        return venv
    print(f"[{lib.name}] making its venv {rel(venv)} ...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    VENVS.mkdir(parents=True, exist_ok=True)
    steps = [[sys.executable, "-m", "venv", str(venv)]]
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    install = [*pip, str(src), "-e", str(ROOT), f"eventlet=={eventlet_version}"]
    if requirements.is_file():
        install += ["-r", str(requirements)]
    if CONSTRAINTS.is_file():
        install += ["-c", str(CONSTRAINTS)]
    steps.append(install + list(lib.extra_requirements))
    with log.open("w") as out:
        for cmd, tries in ((steps[0], 1), (steps[1], 2)):  # a second try for a network hiccup
            for _ in range(tries):
                out.write(f"$ {shlex.join(cmd)}\n")
                out.flush()
                try:
                    proc = subprocess.run(
                        cmd, stdout=out, stderr=subprocess.STDOUT, timeout=1200, cwd=src
                    )
                except subprocess.TimeoutExpired:
                    raise Broken(f"installing the test venv timed out (log: {rel(log)})") from None
                if proc.returncode == 0:
                    break
            else:
                raise Broken(f"installing the test venv failed (log: {rel(log)})")
    stamp.write_text(key + "\n")
    return venv


def unpack_tree(sdist: Path, into: Path) -> Path:
    """Unpack an sdist into `into` and return its single top directory."""
    into.mkdir(parents=True)
    extract(sdist, into)
    tops = [p for p in into.iterdir() if p.is_dir()]
    if len(tops) != 1 or not (tops[0] / ".stestr.conf").is_file():
        raise Broken(f"unexpected sdist layout in {rel(into)}: no single tree with .stestr.conf")
    return tops[0]


# ---------------------------------------------------------------------------- running


def hub_env(lib: Library, hub: str, probe_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "OS_TEST_PATH", "EVENTLET_HUB"):
        env.pop(var, None)
    env.update(lib.setenv)
    env["EVENTLET_HUB"] = hub
    # tox picks a random hash seed per run; a fixed one makes stestr's split of the tests
    # between its workers, and so the order each worker runs its tests in, the same from
    # run to run: failures that depend on what ran before in the process then repeat.
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = str(PROBE)
    env["COMPAT_HUB_PROBE_DIR"] = str(probe_dir)
    return env


def preflight(lib: Library, venv: Path, src: Path, env: dict[str, str]) -> dict[str, object]:
    """Import the suite's tests package the way the run will, and report the hub."""
    cmd = [str(venv_python(venv)), "-c", _PREFLIGHT, lib.tests_package]
    clean = {k: v for k, v in env.items() if k != "COMPAT_HUB_PROBE_DIR"}
    try:
        proc = subprocess.run(cmd, cwd=src, env=clean, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise Broken("starting the hub timed out (pre-flight check)") from None
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise Broken(f"cannot import {lib.tests_package} or start the hub: {last[0]}")
    try:
        info: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise Broken(f"unexpected pre-flight output: {proc.stdout[-300:]!r}") from None
    if not Path(str(info["tests"])).resolve().is_relative_to(src.resolve()):
        raise Broken(f"{lib.tests_package} is imported from {info['tests']}, not the sdist tree")
    if info["eventlet"] != installed_version("eventlet"):
        raise Broken(f"the venv has eventlet {info['eventlet']}, not the one installed here")
    bridge = info.get("bridge")
    if bridge and not Path(str(bridge)).resolve().is_relative_to(ROOT):
        raise Broken(f"bridge is imported from {bridge}, not from this checkout")
    return info


def stestr(venv: Path) -> str:
    return str(venv / "bin" / "stestr")


def read_subunit(venv: Path, stream: Path) -> dict[str, list[str]]:
    """{test id: [subunit status, message]} from a (possibly cut) subunit v2 stream."""
    if not stream.is_file() or stream.stat().st_size == 0:
        return {}
    proc = subprocess.run(
        [str(venv_python(venv)), str(SUBUNIT_READER), str(stream)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise Broken(f"cannot read the subunit stream {rel(stream)}: {tail(proc.stderr, 3)}")
    found: dict[str, list[str]] = json.loads(proc.stdout)
    return found


def list_tests(venv: Path, src: Path, env: dict[str, str], argv: list[str]) -> list[str]:
    """The ids `stestr run` with these selection arguments would run."""
    proc = subprocess.run(
        [stestr(venv), "list", *argv],
        cwd=src,
        env={k: v for k, v in env.items() if k != "COMPAT_HUB_PROBE_DIR"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise Broken(f"stestr list failed: {tail(proc.stdout + proc.stderr, 5)}")
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def watch(
    cmd: list[str],
    src: Path,
    env: dict[str, str],
    log: Path,
    out: Path,
    stall_timeout: float,
    deadline: float,
) -> tuple[int | None, float]:
    """Run stestr; return (exit status, or None if it stalled and was killed; stall length).

    :raises Broken: the whole run passed `deadline` (time.monotonic()).
    """
    with log.open("ab") as err, out.open("wb") as stream:
        err.write(f"\n$ {shlex.join(cmd)}\n".encode())
        err.flush()
        proc = subprocess.Popen(
            cmd, cwd=src, env=env, stdout=stream, stderr=err, start_new_session=True
        )
        try:
            size, last_change = -1, time.monotonic()
            while True:
                try:
                    return proc.wait(timeout=1.0), 0.0
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if now > deadline:
                    raise Broken("the whole run took longer than --run-timeout")
                current = out.stat().st_size
                if current != size:
                    size, last_change = current, now
                elif now - last_change > stall_timeout:
                    return None, now - last_change
        finally:  # also reaps what the tests left running
            kill_session(proc)


def run_hub(
    lib: Library, venv: Path, sdist: Path, hub: str, run_dir: Path, args: argparse.Namespace
) -> HubRun:
    slug = hub.replace(":", "_")
    run = HubRun(hub, run_dir / f"{lib.slug}.{slug}.log")
    probe_dir = run_dir / f"{lib.slug}.{slug}.probe"
    probe_dir.mkdir()
    start = time.monotonic()
    deadline = start + args.run_timeout
    try:
        src = unpack_tree(sdist, run_dir / f"{lib.slug}.{slug}")
        env = hub_env(lib, hub, probe_dir)
        info = preflight(lib, venv, src, env)
        patched = "monkey-patched" if info["patched"] else "not monkey-patched"
        print(f"[{lib.name}] [{hub}] hub {info['hub']} ({patched}); running its tests ...")
        sys.stdout.flush()
        selection: list[str] = []
        if lib.excluded:
            excluded = run_dir / f"{lib.slug}.excluded.txt"
            excluded.write_text("".join(f"^{re.escape(t)}$\n" for t in lib.excluded))
            selection += ["--exclude-list", str(excluded)]
        if args.filter:
            selection.append(args.filter)
        load: list[str] = []
        for attempt in range(MAX_RESUMES + 1):
            out = run_dir / f"{lib.slug}.{slug}.{attempt}.subunit"
            cmd = [stestr(venv), "run", "--subunit", *(load or selection)]
            stall = args.stall_timeout or lib.stall_timeout
            code, stalled = watch(cmd, src, env, run.log, out, stall, deadline)
            cut_short = code is None
            for test_id, (status, message) in read_subunit(venv, out).items():
                if status == "inprogress":
                    cut_short = True
                    message = (
                        f"hung: no test finished for {stalled:.0f} s, killed"
                        if code is None
                        else "did not finish: its stestr worker process died"
                    )
                run.results[test_id] = CaseResult(_STATUS.get(status, "failed"), message)
            if code is not None and code not in (0, 1):
                raise Broken(f"stestr exited with status {code} (log: {rel(run.log)})")
            if not cut_short:
                break
            # A hung test (killed) or a dead worker left the rest of its worker's share of
            # the tests unrun: run those in a new stestr run.
            remaining = [t for t in list_tests(venv, src, env, selection) if t not in run.results]
            what = (
                f"no test finished for {stalled:.0f} s: killed"
                if code is None
                else ("a worker process died")
            )
            print(f"[{lib.name}] [{hub}] {what}; {len(remaining)} tests left to run", flush=True)
            if not remaining:
                break
            listing = run_dir / f"{lib.slug}.{slug}.{attempt + 1}.load"
            listing.write_text("".join(f"{t}\n" for t in remaining))
            load = ["--load-list", str(listing)]
        else:
            raise Broken(f"cut short more than {MAX_RESUMES} times (hangs, dead workers)")
        if not run.results:
            raise Broken("no test ran")
        run.hub_class = str(info["hub"])
        processes = check_probes(probe_dir, run.hub_class)
        print(f"[{lib.name}] [{hub}] hub check: {processes} test processes used {run.hub_class}")
    except Broken as exc:
        run.broken = str(exc)
    run.duration = time.monotonic() - start
    return run


def check_probes(probe_dir: Path, expected: str) -> int:
    """Every process of the run that made a hub made `expected`; returns how many did.

    :raises Broken: a process used another hub, or no process reported one.
    """
    used: dict[str, int] = {}
    for record in probe_dir.glob("*.txt"):
        for line in record.read_text().splitlines():
            _, _, hub = line.partition(" ")
            if hub and hub != "none":
                used[hub] = used.get(hub, 0) + 1
    if not used:
        raise Broken("no test process reported its hub (compat/_probe not loaded?)")
    others = {h: n for h, n in used.items() if h != expected}
    if others:
        found = ", ".join(f"{h} in {n} processes" for h, n in others.items())
        raise Broken(
            f"the pre-flight made {expected} for EVENTLET_HUB, but the run used {found}: "
            "something selects a hub in code"
        )
    return used[expected]


# Pinned by the gate itself (eventlet: the version installed here) or by this checkout.
_NOT_CONSTRAINED = {"eventlet", "greenlet", "eventlet-asyncio-bridge", "pip", "setuptools"}


def write_constraints(venvs: list[Path]) -> None:
    """Pin what the libraries' venvs resolved to, for reproducible installs in CI."""
    pins: dict[str, str] = {}
    for venv in venvs:
        proc = subprocess.run(
            [str(venv_python(venv)), "-m", "pip", "freeze", "--exclude-editable"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        for line in proc.stdout.splitlines():
            name, sep, version = line.partition("==")
            key = re.sub(r"[-_.]+", "-", name).lower()
            if sep and key not in _NOT_CONSTRAINED:
                pins.setdefault(key, f"{key}=={version}")
    lines = [
        "# Versions for the libraries' test venvs (compat/libs_suite.py), the part of OpenStack's",
        "# upper-constraints the gate needs (OpenStack's own file is not reachable from here).",
        "# Made by: .venv/bin/python compat/libs_suite.py --write-constraints ...: the union of",
        f"# `pip freeze` of the libraries' venvs, resolved from PyPI on {utc_now()}.",
        "# eventlet (the version installed for this checkout) and greenlet are pinned elsewhere.",
        *sorted(pins.values()),
    ]
    CONSTRAINTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {rel(CONSTRAINTS)} ({len(pins)} pins)")


# ---------------------------------------------------------------------------- baselines


def baseline_path(lib: Library) -> Path:
    return BASELINES / f"{lib.name}.epolls.txt"


def write_baseline(lib: Library, run: HubRun, eventlet_version: str, argv: list[str]) -> None:
    c = run.counts()
    failing = sorted(t for t, r in run.results.items() if r.outcome in FAILING)
    lines = [
        f"# epolls baseline of {lib.name}'s unit tests, for compat/libs_suite.py.",
        f"# Produced by: .venv/bin/python compat/libs_suite.py {shlex.join(argv)}",
        f"# library: {lib.version} ({lib.name}, its sdist's tests under stestr)",
        f"# eventlet: {eventlet_version}",
        f"# Python {platform.python_version()} on {platform.system()} {platform.machine()},"
        f" {os.cpu_count()} cores, {utc_now()}",
        f"# epolls: {c['passed']} passed, {c['failed']} failed, {c['error']} errors,"
        f" {c['skipped']} skipped; {len(lib.excluded)} excluded (compat/libraries.py)",
        "#",
        "# Tests that FAIL on epolls on this machine (bridge.hub may fail them too):",
        *([f"#   {t}" for t in failing] or ["#   none"]),
        "#",
        "# Then every test's outcome on epolls, one '<outcome> <test id>' a line, failing ones",
        "# first: the tests that passed must pass on bridge.hub; the others are not gated.",
    ]
    lines += baseline_body(run.results)
    BASELINES.mkdir(exist_ok=True)
    baseline_path(lib).write_text("\n".join(lines) + "\n")
    print(f"[{lib.name}] wrote {rel(baseline_path(lib))}")


# ---------------------------------------------------------------------------- the gate


def judge(result: LibRun, subset: bool) -> None:
    """Fill in the reference, the regressions and the known regressions' state."""
    lib = result.lib
    bridge = result.run(BRIDGE_HUB)
    epolls = result.run(REFERENCE_HUB)
    reference: dict[str, str] = {}
    if epolls is not None and not epolls.broken:
        reference = outcomes_of(epolls)
        result.reference = "epolls (this run)"
    elif bridge is not None and not bridge.broken:
        try:
            reference, version = read_baseline(baseline_path(lib), "library")
        except Broken as exc:
            bridge.broken = str(exc)
            return
        result.reference = f"epolls (baseline {rel(baseline_path(lib))})"
        if version != lib.version:
            print(
                f"WARNING: [{lib.name}] the baseline was made with {lib.name} {version}, the "
                f"gate runs {lib.version}: refresh it with --write-baseline"
            )
    if bridge is None or bridge.broken or not result.reference:
        return
    for test_id in fails_but_passes(bridge, reference):
        (result.known_failing if test_id in lib.known else result.regressions).append(test_id)
    for test_id in lib.known:
        own = bridge.results.get(test_id)
        if own is not None and own.outcome == "passed":
            result.known_passing.append(test_id)
    result.not_run = passes_but_not_run(bridge, reference, subset)


# ---------------------------------------------------------------------------- report


def print_library(result: LibRun) -> None:
    lib = result.lib
    print(f"\n=== {lib.name} {lib.version}: install {result.install_s:.0f}s")
    if result.broken:
        print(f"BROKEN: {result.broken}")
        return
    print_table(result.runs)
    for run in result.runs:
        if run.broken and run.log.is_file():
            print(f"\n[{run.hub}] last lines of {rel(run.log)}:")
            print(tail(run.log.read_text(errors="replace"), 15))
    if lib.excluded:
        print(f"\nexcluded on every hub (deselected): {len(lib.excluded)}")
        for test_id, reason in lib.excluded.items():
            print(f"  {test_id}")
            print(textwrap.fill(reason, 96, initial_indent=" " * 6, subsequent_indent=" " * 6))
    bridge = result.run(BRIDGE_HUB)
    if bridge is None or not result.reference:
        return
    title = f"REGRESSIONS: fail on {BRIDGE_HUB} but pass on {result.reference}"
    print_tests(title, result.regressions, bridge)
    if result.known_failing:
        print(
            f"\nknown regressions (compat/libraries.py), still failing: {len(result.known_failing)}"
        )
        by_cause: dict[str, list[str]] = {}
        for test_id in result.known_failing:
            by_cause.setdefault(lib.known[test_id], []).append(test_id)
        for cause, tests in sorted(by_cause.items()):
            print(f"  [{cause}] {CAUSES[cause].title if cause in CAUSES else '(unknown cause)'}")
            for test_id in tests:
                print(f"      {test_id}")
    if result.known_passing:
        title = "known regressions that PASS now: remove them from `known` in compat/libraries.py"
        print_tests(title, result.known_passing)
        for cause in sorted({lib.known[t] for t in result.known_passing}):
            listed = [t for t, c in lib.known.items() if c == cause]
            if all(t in result.known_passing for t in listed):
                print(f"  every test listed for [{cause}] passes: the cause looks fixed")
    if result.not_run:
        title = f"(info, not gated) pass on epolls, skipped or not run on {BRIDGE_HUB}"
        print_tests(title, result.not_run)


def print_summary(results: list[LibRun]) -> None:
    print("\n=== all libraries")
    runs: list[HubRun] = []
    names: dict[int, str] = {}
    for result in results:
        for run in result.runs:
            runs.append(run)
            names[id(run)] = f"{result.lib.name} {result.lib.version}"
    if runs:
        print_table(runs, first="library / hub", label=lambda r: f"{names[id(r)]} | {r.hub}")
    for result in results:
        if result.broken:
            print(f"{result.lib.name}: BROKEN: {result.broken}")
    total = sum(r.install_s for r in results) + sum(r.duration for r in runs)
    install = sum(r.install_s for r in results)
    print(f"time: {total:.0f} s in all ({install:.0f} s of it making or checking venvs)")


def write_json(path: Path, eventlet_version: str, results: list[LibRun], exit_code: int) -> None:
    data = {
        "eventlet_version": eventlet_version,
        "libraries": {
            r.lib.name: {
                "version": r.lib.version,
                "install_s": round(r.install_s, 1),
                "broken": r.broken or None,
                "reference": r.reference or None,
                "hubs": {
                    run.hub: {
                        **run.counts(),
                        "duration_s": round(run.duration, 1),
                        "hub_class": run.hub_class or None,
                        "broken": run.broken or None,
                        "log": str(run.log),
                    }
                    for run in r.runs
                },
                "regressions": r.regressions,
                "known_failing": {t: r.lib.known[t] for t in r.known_failing},
                "known_passing": r.known_passing,
                "excluded": r.lib.excluded,
            }
            for r in results
        },
        "exit_code": exit_code,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------------------- main


def choose(spec: str) -> list[Library]:
    names = [n for n in re.split(r"[,\s]+", spec.strip()) if n]
    if names in (["all"], []):
        return list(LIBRARIES.values())
    if names == ["ci"]:
        return [lib for lib in LIBRARIES.values() if lib.ci]
    unknown = [n for n in names if n not in LIBRARIES]
    if unknown:
        known = ", ".join(LIBRARIES)
        raise ValueError(f"unknown library {', '.join(unknown)}; known: {known}, all, ci")
    return [LIBRARIES[n] for n in names]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run OpenStack libraries' unit tests on one or more hubs; gate bridge.hub.",
        epilog="Exit status: 0 bar met, 1 new regressions on bridge.hub, 2 a run broke.",
    )
    parser.add_argument(
        "hubs", nargs="*", default=[BRIDGE_HUB], help="EVENTLET_HUB values (default: bridge.hub)"
    )
    parser.add_argument(
        "--libs",
        default="all",
        metavar="NAMES",
        help="libraries, comma- or space-separated; 'all' (default) or 'ci' (what CI runs)",
    )
    parser.add_argument("--list", action="store_true", help="list the libraries and exit")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument("--filter", metavar="REGEX", help="stestr filter (a subset)")
    parser.add_argument(
        "--keep-going", action="store_true", help="run the remaining hubs after a run broke"
    )
    parser.add_argument(
        "--write-baseline",
        action="store_true",
        help="write compat/baselines/<lib>.epolls.txt from this run's epolls results",
    )
    parser.add_argument(
        "--stall-timeout",
        type=int,
        default=0,
        metavar="S",
        help="kill a run in which no test finished for S seconds (its running tests fail); "
        "default: each library's own (compat/libraries.py)",
    )
    parser.add_argument(
        "--write-constraints",
        action="store_true",
        help=f"write {CONSTRAINTS.name} from the venvs of the libraries run",
    )
    parser.add_argument(
        "--run-timeout", type=int, default=1800, metavar="S", help="per library and hub"
    )
    args = parser.parse_args(argv)
    try:
        args.libraries = choose(args.libs)
    except ValueError as exc:
        parser.error(str(exc))
    if len(set(args.hubs)) != len(args.hubs):
        parser.error("a hub is named twice")
    if args.write_baseline and (REFERENCE_HUB not in args.hubs or args.filter):
        parser.error("--write-baseline needs epolls among the hubs and no --filter")
    return args


def run_library(lib: Library, eventlet_version: str, args: argparse.Namespace) -> LibRun:
    result = LibRun(lib)
    run_dir = new_run_dir(LIBS_WORK / lib.slug)
    start = time.monotonic()
    try:
        sdist = fetch_sdist(lib.name, lib.version)
        with_tree = unpack_tree(sdist, run_dir / "install")
        venv = result.venv = prepare_venv(lib, with_tree, eventlet_version, run_dir / "install.log")
    except Broken as exc:
        result.broken = str(exc)
        return result
    finally:
        result.install_s = time.monotonic() - start
    for hub in args.hubs:
        run = run_hub(lib, venv, sdist, hub, run_dir, args)
        result.runs.append(run)
        status = f"BROKEN: {run.broken}" if run.broken else "done"
        print(f"[{lib.name}] [{hub}] {status} in {run.duration:.1f}s (log: {rel(run.log)})")
        sys.stdout.flush()
        if run.broken and not args.keep_going and hub != args.hubs[-1]:
            print(f"[{lib.name}] stopping here (use --keep-going to run the remaining hubs)")
            break
    judge(result, subset=bool(args.filter))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    libs: list[Library] = args.libraries
    if args.list:
        for lib in LIBRARIES.values():
            ci = "CI" if lib.ci else "not in CI"
            print(f"{lib.name} {lib.version} ({ci})")
            for label, text in (("why", lib.why), ("how", lib.how)):
                print(
                    textwrap.fill(text, 96, initial_indent=f"  {label}: ", subsequent_indent="    ")
                )
            print(f"  excluded: {len(lib.excluded)}, known regressions: {len(lib.known)}")
        return 0
    try:
        eventlet_version = installed_version("eventlet")
    except Broken as exc:
        print(f"compat-libs: {exc}")
        print("compat-libs: 0 passed, 0 failed")
        return 2
    names = ", ".join(f"{lib.name} {lib.version}" for lib in libs)
    print(f"eventlet {eventlet_version}; libraries: {names}; hubs: {' '.join(args.hubs)}")
    results = []
    for lib in libs:
        result = run_library(lib, eventlet_version, args)
        results.append(result)
        print_library(result)
        if args.write_baseline:
            epolls = result.run(REFERENCE_HUB)
            if epolls is not None and not epolls.broken:
                write_baseline(
                    lib, epolls, eventlet_version, sys.argv[1:] if argv is None else argv
                )
            else:
                print(f"[{lib.name}] not writing its baseline: the epolls run did not complete")
    print_summary(results)
    if args.write_constraints:
        write_constraints([r.venv for r in results if r.venv is not None])

    broken = [r.lib.name for r in results if r.broken or any(run.broken for run in r.runs)]
    regressions = sum(len(r.regressions) for r in results)
    known = sum(len(r.known_failing) for r in results)
    exit_code = 2 if broken else 1 if regressions else 0
    if args.json:
        write_json(args.json, eventlet_version, results, exit_code)
    print()
    if broken:
        print(f"verdict: FAIL, run broken: {', '.join(broken)}")
    elif regressions:
        print(f"verdict: FAIL, {regressions} tests pass on epolls but fail on {BRIDGE_HUB}")
    elif not any(r.run(BRIDGE_HUB) for r in results):
        print(f"verdict: ok ({BRIDGE_HUB} was not run, nothing gated)")
    else:
        extra = f" ({known} known regressions still fail)" if known else ""
        print(f"verdict: ok, every test that passes on epolls passes on {BRIDGE_HUB}{extra}")
    bridge_runs = [run for r in results for run in r.runs if run.hub == BRIDGE_HUB]
    summary = bridge_runs or [run for r in results for run in r.runs[:1]]
    passed = sum(run.count("passed") for run in summary)
    failed = sum(run.count(*FAILING) for run in summary)
    print(f"compat-libs: {passed} passed, {failed} failed")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
