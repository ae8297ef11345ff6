"""Running the diagnosis, and the command line of ``python -m bridge doctor``."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import sys
import tracemalloc
from typing import Any, TextIO

from bridge._cli._doctor import _hubcall, _libraries, _locks, _process
from bridge._cli._doctor._finding import SEVERITY_ORDER, Finding
from bridge._cli._patches import PATCHES


def diagnose() -> tuple[dict[str, Any], list[Finding]]:
    """Inspect this process; returns (facts, findings)."""
    imported_by_service = frozenset(sys.modules)  # before the imports below add to it
    import eventlet
    import eventlet.hubs
    import greenlet
    from eventlet import patcher

    import bridge
    from bridge._core import Hub

    eventlet.sleep(0)  # let the imported service's greenthreads start
    hub = eventlet.hubs.get_hub()
    patched = [name for name in PATCHES if patcher.is_monkey_patched(name)]
    facts: dict[str, Any] = {
        "python": sys.version.split()[0],
        "eventlet": eventlet.__version__,
        "greenlet": greenlet.__version__,
        "bridge": getattr(bridge, "__version__", _process.bridge_version()),
        "hub": f"{type(hub).__module__}.{type(hub).__qualname__}",
        "hub_mode": hub.mode if isinstance(hub, Hub) else None,
        "EVENTLET_HUB": os.environ.get("EVENTLET_HUB"),
        "monkey_patched": patched,
        "not_patched": [name for name in PATCHES if name not in patched],
        "default_executor_threads": _process.executor_thread_kind(),
    }
    modules = _process.user_modules()
    findings: list[Finding] = []
    if not isinstance(hub, Hub):
        findings.append(_other_hub(facts, modules))
    if patched:
        findings += _process.late_patching()
        findings += _process.threads(patched)
        findings += _locks.native_locks(modules)
        findings += _libraries.database_drivers(patched)
        findings += _libraries.blocking_subprocess(patched, modules)
    findings += _process.asyncio_native(imported_by_service)
    findings += _process.backdoors()
    findings.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return facts, findings


def _other_hub(facts: dict[str, Any], modules: list[tuple[str, Any]]) -> Finding:
    """Another hub than bridge's: unset, or chosen in code over EVENTLET_HUB."""
    from bridge._cli._scan._findings import HUB_FIX

    sites = _hubcall.calls()
    if not sites:
        files = [file for _, module in modules if (file := getattr(module, "__file__", None))]
        sites = _hubcall.static_calls([f for f in files if f.endswith(".py")])
    chosen = "; ".join(f"{site}: use_hub({arg})" for site, arg in sites)
    env = facts["EVENTLET_HUB"] or ""
    if env.startswith("bridge.hub"):
        return Finding(
            "error",
            f"EVENTLET_HUB={env} is set, but eventlet's hub is {facts['hub']}: the code chose "
            f"another hub{' (' + chosen + ')' if chosen else ''}",
            where=chosen,
            fix=HUB_FIX,
        )
    return Finding(
        "warning",
        f"eventlet's hub is {facts['hub']}, not bridge's",
        where=chosen,
        fix="set EVENTLET_HUB=bridge.hub before the service starts"
        + (f"; and {HUB_FIX}" if chosen else ""),
    )


def write_text(facts: dict[str, Any], findings: list[Finding], out: TextIO) -> None:
    out.write("bridge doctor\n")
    for key, value in facts.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        out.write(f"  {key}: {shown if shown not in (None, '') else '-'}\n")
    out.write("\n")
    if not findings:
        out.write("ok: nothing to fix\n")
    for f in findings:
        out.write(f"{f.severity.upper()}: {f.what}\n")
        if f.where:
            out.write(f"    where: {f.where}\n")
        if f.fix:
            out.write(f"    fix: {f.fix}\n")


def main(args: list[str], out: TextIO = sys.stdout) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bridge doctor",
        description="Is this process set up for a safe migration? The hub, monkey patching "
        "and eventlet's pitfalls, each with its fix.",
        epilog="exit status: 0 when nothing is wrong, 1 on a warning or an error, 2 on a "
        "usage error (including a module that fails to import)",
    )
    parser.add_argument("--import", dest="modules", action="append", default=[],
                        metavar="MODULE", help="import the service first (repeatable)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="trace allocations while importing the service, so that each lock or queue made "
        "before the patch is named by the line that made it, wherever it is held (several "
        "times slower)",
    )
    options = parser.parse_args(args)
    _hubcall.install()
    if options.trace and options.modules and not tracemalloc.is_tracing():
        tracemalloc.start(4)
    # What the service prints goes to stderr: stdout is the report (JSON).
    with contextlib.redirect_stdout(sys.stderr):
        for name in options.modules:
            try:
                importlib.import_module(name)
            except Exception as exc:
                parser.error(f"--import {name}: {type(exc).__name__}: {exc}")
        facts, findings = diagnose()
    tracemalloc.stop()
    if options.json:
        json.dump(
            {"facts": facts, "findings": [dataclasses.asdict(f) for f in findings]}, out, indent=2
        )
        out.write("\n")
    else:
        write_text(facts, findings, out)
    return 1 if any(f.severity in ("error", "warning") for f in findings) else 0
