"""Libraries that stay blocking in a patched process: C database drivers, subprocess.

``monkey_patch()`` greens what is written in Python over the stdlib. A C
database driver waits inside C, where no patch reaches: every query stops
the hub (the "MySQLdb + eventlet = sad" of OpenStack's best practices).
psycopg2 can cooperate through a wait callback, which
``monkey_patch(psycopg=True)`` (the default) or psycogreen installs. And
``subprocess`` is green only when patched (``subprocess=True``, the default
of recent eventlets; old ones never patched it, hence the best practices'
"use the green subprocess module explicitly").
"""

from __future__ import annotations

import sys
from typing import Any

from bridge._cli._doctor._finding import Finding

# Import name -> what it is. These wait in C: eventlet cannot green them.
C_DRIVERS = {
    "MySQLdb": "MySQLdb (mysqlclient)",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
    "cx_Oracle": "cx_Oracle",
    "ibm_db": "ibm_db",
}
DRIVER_FIX = (
    "use a pure-Python driver that monkey_patch() makes green (PyMySQL for MySQL), or run "
    "the driver's calls in eventlet.tpool; migrated async code: an asyncio driver"
)


def database_drivers(patched: list[str]) -> list[Finding]:
    """C database drivers imported in a process whose green code would wait on them."""
    from eventlet import patcher

    if not patched:
        return []
    findings = []
    for module, shown in C_DRIVERS.items():
        if module not in sys.modules:
            continue
        if module == "MySQLdb" and patcher.is_monkey_patched("MySQLdb"):
            continue  # monkey_patch(MySQLdb=True) runs its calls in tpool
        findings.append(Finding(
            "warning",
            f"{shown}, a C database driver, is imported in a monkey-patched process: each "
            "query blocks the hub and every greenthread",
            where=getattr(sys.modules[module], "__file__", None) or module,
            fix=DRIVER_FIX,
        ))  # fmt: skip
    psycopg2 = sys.modules.get("psycopg2")
    if psycopg2 is not None:
        extensions = sys.modules.get("psycopg2.extensions") or getattr(psycopg2, "extensions", None)
        get_callback = getattr(extensions, "get_wait_callback", None)
        if get_callback is None or get_callback() is None:
            findings.append(Finding(
                "warning",
                "psycopg2 is imported without a green wait callback: each query blocks the hub",
                where=getattr(psycopg2, "__file__", None) or "psycopg2",
                fix="eventlet.monkey_patch(psycopg=True) (the default: patch before importing "
                "psycopg2), or psycogreen.eventlet.patch_psycopg()",
            ))  # fmt: skip
    return findings


_SUBPROCESS_NAMES = ("Popen", "call", "check_call", "check_output", "run")


def blocking_subprocess(patched: list[str], modules: list[tuple[str, Any]]) -> list[Finding]:
    """Service modules that use the stdlib ``subprocess`` where it is not the green one."""
    if not patched or "subprocess" in patched:
        return []
    stdlib = sys.modules.get("subprocess")
    if stdlib is None:
        return []
    names = [getattr(stdlib, name) for name in _SUBPROCESS_NAMES if hasattr(stdlib, name)]
    blocking = {id(stdlib), *map(id, names)}
    findings = []
    for name, module in modules:
        held = [attr for attr, value in list(vars(module).items()) if id(value) in blocking]
        if held:
            findings.append(Finding(
                "warning",
                f"{name} uses the stdlib subprocess ({', '.join(sorted(held))}), which is not "
                "green here (monkey_patch(subprocess=False)): waiting for a child blocks the hub",
                where=getattr(module, "__file__", None) or name,
                fix="import eventlet.green.subprocess (or use oslo.concurrency's processutils), "
                "or let monkey_patch() patch subprocess",
            ))  # fmt: skip
    return findings
