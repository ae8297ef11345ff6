"""The process-wide checks: hub, patching order, threads, asyncio, backdoors.

Each check returns findings (what, where, fix); :mod:`._main` runs them.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import types
from typing import Any

from bridge._cli._doctor._finding import Finding


def executor_thread_kind() -> str:
    """What asyncio's default executor would start: native or green threads."""
    import concurrent.futures.thread

    from eventlet import patcher

    threading = getattr(concurrent.futures.thread, "threading", None)
    green = patcher.is_monkey_patched("thread") and threading is sys.modules.get("threading")
    return "green (asyncio.to_thread would not run in parallel)" if green else "native"


def bridge_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eventlet-asyncio-bridge")
    except PackageNotFoundError:
        return "unknown"


def user_modules() -> list[tuple[str, Any]]:
    stdlib = set(sys.stdlib_module_names)
    # eventlet's own dependencies (dnspython, imported by eventlet before any
    # patch, keeps a native lock held for microseconds) and the test tools.
    skip = ("eventlet", "bridge", "greenlet", "dns", "_pytest", "pytest", "pluggy", "aiohttp")
    return [
        (name, module)
        for name, module in list(sys.modules.items())
        if module is not None
        and name.split(".")[0] not in stdlib
        and not name.startswith(skip)
        and not name.startswith(("__original_module_", "__patched_module_"))
        and not _in_stdlib(getattr(module, "__file__", None))
    ]


# Names that monkey_patch() replaces, as a module that imported them before
# the patch may still hold them.
_PATCHED_NAMES = (
    ("time", "sleep"),
    ("socket", "socket"),
    ("socket", "create_connection"),
    ("select", "select"),
    ("subprocess", "Popen"),
    ("subprocess", "check_output"),
    ("subprocess", "call"),
    ("threading", "Lock"),
    ("queue", "Queue"),
)


def _in_stdlib(file: str | None) -> bool:
    if not file:
        return False
    import sysconfig

    path = os.path.abspath(file)
    stdlib = sysconfig.get_paths()["stdlib"]
    return path.startswith(stdlib + os.sep) and "-packages" + os.sep not in path


def _signature(value: object) -> tuple[str, str]:
    return (str(getattr(value, "__module__", "")), str(getattr(value, "__name__", "")))


def late_patching() -> list[Finding]:
    """Service modules holding the blocking original of a name monkey_patch() replaced.

    The original is told by its ``(__module__, __name__)``, read from
    eventlet's unpatched copy of the module: ``threading.Lock`` is
    ``_thread.allocate_lock`` up to 3.12 and the ``_thread.lock`` class on
    3.13.
    """
    from eventlet import patcher

    # signature of a blocking original -> (module, attribute) it was taken from
    stale: dict[tuple[str, str], tuple[str, str]] = {}
    for module, attr in _PATCHED_NAMES:
        current = getattr(sys.modules.get(module), attr, None)
        try:
            original = getattr(patcher.original(module), attr)
        except (ImportError, AttributeError):
            continue
        if current is not None and _signature(current) != _signature(original):
            stale[_signature(original)] = (module, attr)  # patched: the original is stale
    findings = []
    for name, module in user_modules():
        for attr, value in list(vars(module).items()):
            patched = stale.get(_signature(value))
            if patched is None or not callable(value):
                continue
            if value is getattr(sys.modules[patched[0]], patched[1], None):
                continue
            findings.append(Finding(
                "warning",
                f"{name}.{attr} is the blocking {'.'.join(patched)}: the module imported it "
                "before eventlet.monkey_patch() ran",
                where=getattr(module, "__file__", name) or name,
                fix="call eventlet.monkey_patch() first thing in the entry point, before "
                "importing anything else",
            ))  # fmt: skip
    return findings


def threads(patched: list[str]) -> list[Finding]:
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
_NATIVE_BY_DESIGN = (
    "eventlet/tpool.py",
    "concurrent/futures/thread.py",
    "bridge/_core/_blocking.py",
)


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


def asyncio_native(imported: frozenset[str] | None = None) -> list[Finding]:
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


def backdoors() -> list[Finding]:
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
