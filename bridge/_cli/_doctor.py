"""``python -m bridge doctor``: is this process set up for a safe migration?

Run it in a service's environment, with ``--import MODULE`` to import the
service first (its monkey patching, threads and greenthreads then exist).
It reports the hub and its mode, versions, which modules eventlet patched,
and the pitfalls of eventlet's best practices, each with a severity and the
fix. Text by default, ``--json`` for the same as JSON. Exit status: 0 when
nothing is wrong, 1 when there is a warning or an error, 2 on a usage error
(including a module that fails to import).
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import json
import sys
import types
from typing import Any, TextIO

__all__ = ("Finding", "diagnose", "main")

_GREEN_CHECKED = ("os", "select", "socket", "thread", "time", "subprocess")
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One line of the diagnosis: what, where, and the fix."""

    severity: str  # "error", "warning" or "info"
    what: str
    where: str = ""
    fix: str = ""


def diagnose() -> tuple[dict[str, Any], list[Finding]]:
    """Inspect this process; returns (facts, findings)."""
    imported_by_service = frozenset(sys.modules)  # before the imports below add to it
    import eventlet
    import eventlet.hubs
    import greenlet
    from eventlet import patcher

    import bridge
    from bridge._core._hub import Hub

    eventlet.sleep(0)  # let the imported service's greenthreads start
    hub = eventlet.hubs.get_hub()
    patched = [name for name in _GREEN_CHECKED if patcher.is_monkey_patched(name)]
    facts: dict[str, Any] = {
        "python": sys.version.split()[0],
        "eventlet": eventlet.__version__,
        "greenlet": greenlet.__version__,
        "bridge": getattr(bridge, "__version__", _bridge_version()),
        "hub": f"{type(hub).__module__}.{type(hub).__qualname__}",
        "hub_mode": hub.mode if isinstance(hub, Hub) else None,
        "monkey_patched": patched,
        "not_patched": [name for name in _GREEN_CHECKED if name not in patched],
        "default_executor_threads": _executor_thread_kind(),
    }
    findings: list[Finding] = []
    if not isinstance(hub, Hub):
        findings.append(Finding(
            "warning", f"eventlet's hub is {facts['hub']}, not bridge's",
            fix="set EVENTLET_HUB=bridge.hub before the service starts",
        ))  # fmt: skip
    if patched:
        findings += _late_patching()
        findings += _threads(patched)
    findings += _asyncio_native(imported_by_service)
    findings += _backdoors()
    findings.sort(key=lambda f: _SEVERITY_ORDER[f.severity])
    return facts, findings


def _executor_thread_kind() -> str:
    """What asyncio's default executor would start: native or green threads."""
    import concurrent.futures.thread

    from eventlet import patcher

    threading = getattr(concurrent.futures.thread, "threading", None)
    green = patcher.is_monkey_patched("thread") and threading is sys.modules.get("threading")
    return "green (asyncio.to_thread would not run in parallel)" if green else "native"


def _bridge_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eventlet-asyncio-bridge")
    except PackageNotFoundError:
        return "unknown"


def _user_modules() -> list[tuple[str, Any]]:
    stdlib = set(sys.stdlib_module_names)
    skip = ("eventlet", "bridge", "greenlet", "_pytest", "pytest", "pluggy", "aiohttp")
    return [
        (name, module)
        for name, module in list(sys.modules.items())
        if module is not None
        and name.split(".")[0] not in stdlib
        and not name.startswith(skip)
        and not name.startswith("__original_module_")
    ]


def _late_patching() -> list[Finding]:
    """Modules that took a blocking sleep or socket class before monkey_patch()."""
    from eventlet.greenio import GreenSocket

    findings = []
    for name, module in _user_modules():
        for attr, value in list(vars(module).items()):
            is_blocking_sleep = (
                callable(value)
                and getattr(value, "__name__", "") == "sleep"
                and getattr(value, "__module__", "") == "time"
            )
            is_blocking_socket = (
                isinstance(value, type)
                and value.__module__ == "socket"
                and value.__name__ == "socket"
                and not issubclass(value, GreenSocket)
            )
            if is_blocking_sleep or is_blocking_socket:
                findings.append(Finding(
                    "warning",
                    f"{name}.{attr} is the blocking {value.__module__}.{value.__name__}: the "
                    "module imported it before eventlet.monkey_patch() ran",
                    where=getattr(module, "__file__", name) or name,
                    fix="call eventlet.monkey_patch() first thing in the entry point, before "
                    "importing anything else",
                ))  # fmt: skip
    return findings


def _threads(patched: list[str]) -> list[Finding]:
    from eventlet import patcher

    native = _native_threads(patcher.original("threading").main_thread().ident)
    findings = []
    if "thread" not in patched:
        findings.append(Finding(
            "warning",
            "monkey_patch(thread=False): threading is not green, so native and green threads "
            "mix and threading locks block the hub",
            fix="patch threads too (monkey_patch() with thread=True), and move native thread "
            "work to eventlet.tpool or asyncio.to_thread",
        ))  # fmt: skip
    for name in native:
        findings.append(Finding(
            "warning",
            f"native OS thread {name!r} runs beside green code: started before "
            "monkey_patch() or with unpatched threading",
            fix="patch first; run blocking work through eventlet.tpool or asyncio.to_thread",
        ))  # fmt: skip
    return findings


# Threads that are meant to be native: tpool and executor workers, our watchdog.
_NATIVE_BY_DESIGN = ("eventlet/tpool.py", "concurrent/futures/thread.py", "bridge/_blocking.py")


def _native_threads(main_ident: int | None) -> list[str]:
    """Names of the OS threads other than main that are not native by design."""
    import gc

    # monkey_patch() may have swapped threading's registry: find the Thread
    # objects themselves for their names.
    names: dict[int, str | None] = {
        obj._ident: obj.name
        for obj in gc.get_objects()
        if type(obj).__module__ == "threading" and hasattr(obj, "_ident") and hasattr(obj, "name")
    }
    found: list[str] = []
    for ident, top in sys._current_frames().items():
        if ident == main_ident:
            continue
        files = []
        frame: types.FrameType | None = top
        while frame is not None:
            files.append(frame.f_code.co_filename)
            frame = frame.f_back
        if not any(part in name for name in files for part in _NATIVE_BY_DESIGN):
            found.append(names.get(ident) or f"thread {ident}")
    return found


def _asyncio_native(imported: frozenset[str] | None = None) -> list[Finding]:
    """asyncio modules holding green modules; only those in ``imported``, if given.

    The doctor imports asyncio itself: a module the service never imported
    is no pitfall of the service's.
    """
    import asyncio.selector_events
    import concurrent.futures.thread

    from eventlet import patcher

    checks = [
        ("asyncio's selector module", asyncio.selector_events, "selectors", "selectors"),
        ("asyncio's socket module", asyncio.selector_events, "socket", "socket"),
        ("the default executor's threading", concurrent.futures.thread, "threading", "thread"),
    ]
    findings = []
    for what, holder, name, patch_name in checks:
        if imported is not None and holder.__name__ not in imported:
            continue
        if patcher.is_monkey_patched(patch_name) and (
            getattr(holder, name, None) is sys.modules.get(name)
        ):
            findings.append(Finding(
                "error",
                f"{what} is eventlet's green {name}: asyncio would block on itself",
                fix="select bridge's hub (EVENTLET_HUB=bridge.hub), which keeps asyncio native",
            ))  # fmt: skip
    return findings


def _backdoors() -> list[Finding]:
    import gc

    import eventlet.backdoor
    import greenlet

    code = eventlet.backdoor.backdoor_server.__code__
    findings = []
    for obj in gc.get_objects():
        if not isinstance(obj, greenlet.greenlet) or obj.dead:
            continue
        frame = obj.gr_frame
        while frame is not None:
            if frame.f_code is code:
                address = frame.f_locals["sock"].getsockname()
                host = address[0] if isinstance(address, tuple) else str(address)
                if not _is_loopback(host):
                    findings.append(Finding(
                        "error",
                        f"an eventlet backdoor listens on {host}:{address[1]}: a Python shell "
                        "for anyone who reaches that port",
                        fix="bind the backdoor to 127.0.0.1 (or a unix socket), or remove it",
                    ))  # fmt: skip
                break
            frame = frame.f_back
    return findings


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a unix socket path


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

    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bridge doctor", description=summary)
    parser.add_argument("--import", dest="modules", action="append", default=[],
                        metavar="MODULE", help="import the service first (repeatable)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    options = parser.parse_args(args)
    import contextlib

    # What the service prints goes to stderr: stdout is the report (JSON).
    with contextlib.redirect_stdout(sys.stderr):
        for name in options.modules:
            try:
                importlib.import_module(name)
            except Exception as exc:
                parser.error(f"--import {name}: {type(exc).__name__}: {exc}")
        facts, findings = diagnose()
    if options.json:
        json.dump(
            {"facts": facts, "findings": [dataclasses.asdict(f) for f in findings]}, out, indent=2
        )
        out.write("\n")
    else:
        write_text(facts, findings, out)
    return 1 if any(f.severity in ("error", "warning") for f in findings) else 0
