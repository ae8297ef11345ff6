"""python -m bridge doctor, on small real programs, one per pitfall (subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bridge._cli import _patches

PROGRAMS = {
    "healthy": """
        import eventlet
        eventlet.monkey_patch()
    """,
    "late_patching": """
        from time import sleep  # taken before the patch: stays blocking
        from socket import socket
        import eventlet
        eventlet.monkey_patch()
    """,
    "thread_false": """
        import eventlet
        eventlet.monkey_patch(thread=False)
    """,
    "native_thread": """
        import threading, time
        started = threading.Event()
        threading.Thread(target=lambda: (started.set(), time.sleep(60)), daemon=True,
                         name="early-worker").start()
        started.wait(10)
        import eventlet
        eventlet.monkey_patch()
    """,
    "public_backdoor": """
        import eventlet
        from eventlet import backdoor
        eventlet.spawn(backdoor.backdoor_server, eventlet.listen(("0.0.0.0", 0)))
    """,
    "local_backdoor": """
        import eventlet
        from eventlet import backdoor
        eventlet.spawn(backdoor.backdoor_server, eventlet.listen(("127.0.0.1", 0)))
    """,
    "asyncio_patched": """
        import asyncio
        import eventlet
        eventlet.monkey_patch()
    """,
    # Issue 12: what "patch first" protects from, planted one by one.
    "import_time_locks": """
        import queue
        import threading

        LOCK = threading.Lock()
        JOBS = queue.Queue()
        READY = threading.Event()

        class Registry:
            lock = threading.Lock()

        POOLS = {"default": threading.Lock()}

        import eventlet
        eventlet.monkey_patch()
    """,
    "unreachable_rlock": """
        import threading

        def make():
            lock = threading.RLock()  # in a closure: eventlet cannot green it
            return lambda: lock

        HOLD = make()

        import eventlet
        eventlet.monkey_patch()
    """,
    "c_drivers": """
        import eventlet
        eventlet.monkey_patch(psycopg=False)
        import MySQLdb
        import psycopg2
    """,
    "green_psycopg": """
        import eventlet
        eventlet.monkey_patch()  # installs psycopg2's green wait callback
        import psycopg2
    """,
    "subprocess_not_green": """
        import subprocess
        import eventlet
        eventlet.monkey_patch(subprocess=False)
    """,
    "popen_taken_early": """
        from subprocess import Popen
        from threading import Lock
        import eventlet
        eventlet.monkey_patch()
    """,
    "hub_in_code": """
        import eventlet.hubs

        def get_hub():
            return "poll"

        eventlet.hubs.use_hub(get_hub())
    """,
    # Everything above, done right: patch first, then make what you need.
    "clean_service": """
        import eventlet
        eventlet.monkey_patch()

        import queue
        import subprocess
        import threading
        from subprocess import Popen

        import psycopg2

        LOCK = threading.Lock()
        JOBS = queue.Queue()
        READY = threading.Event()
        eventlet.spawn(READY.wait)
    """,
}


# Stand-ins for the C database drivers (not installed here): the doctor
# tells them by module name, and psycopg2 by its wait callback.
FAKES = {
    "MySQLdb/__init__.py": "",
    "psycopg2/__init__.py": "from psycopg2 import extensions\n",
    "psycopg2/extensions.py": """
        _callback = None

        def set_wait_callback(callback):
            global _callback
            _callback = callback

        def get_wait_callback():
            return _callback
    """,
}


def doctor(
    tmp_path: Path, program: str, hub: str = "bridge.hub", *options: str
) -> tuple[int, dict[str, Any]]:
    (tmp_path / f"svc_{program}.py").write_text(textwrap.dedent(PROGRAMS[program]))
    for name, text in FAKES.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    env = dict(os.environ, EVENTLET_HUB=hub, PYTHONPATH=str(tmp_path))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge",
            "doctor",
            "--import",
            f"svc_{program}",
            "--json",
            *options,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def whats(report: dict[str, Any], severity: str) -> list[str]:
    return [f["what"] for f in report["findings"] if f["severity"] == severity]


def test_a_healthy_service(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "healthy")
    assert code == 0 and report["findings"] == []
    assert report["facts"]["hub"] == "bridge.hub.Hub"
    assert "thread" in report["facts"]["monkey_patched"]
    assert report["facts"]["default_executor_threads"] == "native"


def test_patching_late_names_the_module_and_the_fix(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "late_patching")
    assert code == 1
    warnings = whats(report, "warning")
    assert any("svc_late_patching.sleep is the blocking time.sleep" in w for w in warnings)
    assert any("svc_late_patching.socket is the blocking socket.socket" in w for w in warnings)
    assert all("first thing" in f["fix"] for f in report["findings"])


def test_thread_false(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "thread_false")
    assert code == 1
    assert any("thread=False" in w for w in whats(report, "warning"))


def test_native_threads_mixed_with_green(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "native_thread")
    assert code == 1
    assert any("'early-worker'" in w for w in whats(report, "warning"))


@pytest.mark.parametrize(("program", "found"), [("public_backdoor", 1), ("local_backdoor", 0)])
def test_backdoor_beyond_loopback_is_an_error(tmp_path: Path, program: str, found: int) -> None:
    code, report = doctor(tmp_path, program)
    errors = [w for w in whats(report, "error") if "backdoor listens on 0.0.0.0" in w]
    assert len(errors) == found
    assert code == found


def test_the_wrong_hub_is_named_and_the_green_asyncio_it_leaves(tmp_path: Path) -> None:
    # On another hub nothing of bridge runs (importing bridge hooks nothing
    # into asyncio until its hub is used), so monkey_patch() leaves asyncio,
    # which eventlet itself imported, holding the green socket module.
    code, report = doctor(tmp_path, "healthy", hub="epolls")
    assert code == 1
    assert any("eventlet.hubs.epolls.Hub, not bridge's" in w for w in whats(report, "warning"))
    assert whats(report, "error") == [
        "asyncio's socket module is eventlet's green socket: asyncio would block on itself"
    ]


def test_asyncio_patched_by_mistake_is_an_error() -> None:
    # Patched before bridge was imported, and no loop made since: the sweep
    # has not run, so asyncio still holds green modules.
    program = textwrap.dedent(
        """
        import asyncio, eventlet
        eventlet.monkey_patch()
        from bridge._cli import _doctor
        for finding in _doctor._asyncio_native():
            print(finding.severity, finding.what)
        """
    )
    env = dict(os.environ, EVENTLET_HUB="epolls")
    result = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert "error asyncio's socket module is eventlet's green socket" in result.stdout, (
        result.stdout + result.stderr
    )


def test_text_output_and_a_failing_import(tmp_path: Path) -> None:
    (tmp_path / "svc_text.py").write_text("import eventlet\neventlet.monkey_patch(thread=False)\n")
    env = dict(os.environ, EVENTLET_HUB="bridge.hub", PYTHONPATH=str(tmp_path))
    run = [sys.executable, "-m", "bridge", "doctor", "--import"]
    text = subprocess.run([*run, "svc_text"], env=env, capture_output=True, text=True, timeout=60)
    assert text.returncode == 1
    assert "WARNING: monkey_patch(thread=False)" in text.stdout
    assert "    fix: patch threads too" in text.stdout
    broken = subprocess.run(
        [*run, "no_such_module"], env=env, capture_output=True, text=True, timeout=60
    )
    assert broken.returncode == 2
    assert "--import no_such_module: ModuleNotFoundError" in broken.stderr


def test_locks_and_queues_made_before_the_patch_are_named(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "import_time_locks")
    assert code == 1
    warnings = whats(report, "warning")
    for held, kind in [
        ("svc_import_time_locks.LOCK", "threading.Lock"),
        ("svc_import_time_locks.JOBS", "queue.Queue"),
        ("svc_import_time_locks.READY", "threading.Event"),
        ("svc_import_time_locks.Registry.lock", "threading.Lock"),
        ("svc_import_time_locks.POOLS['default']", "threading.Lock"),
    ]:
        assert any(w.startswith(f"{held} is a native {kind} ") for w in warnings), (held, warnings)
    assert len(warnings) == 5  # one per object: a queue's own lock is the queue's
    assert all("create it after eventlet.monkey_patch()" in f["fix"] for f in report["findings"])


def test_trace_names_the_line_that_made_an_unreachable_lock(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "unreachable_rlock", "bridge.hub", "--trace")
    assert code == 1
    [finding] = report["findings"]
    assert finding["what"].startswith("a native threading.RLock made at ")
    assert finding["where"] == f"{tmp_path / 'svc_unreachable_rlock.py'}:5"
    # Without tracing, nothing holds it where the doctor looks: not reported.
    assert doctor(tmp_path, "unreachable_rlock")[0] == 0


def test_c_database_drivers_in_a_patched_process(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "c_drivers")
    assert code == 1
    warnings = whats(report, "warning")
    assert any(
        w.startswith("MySQLdb (mysqlclient), a C database driver, is imported") for w in warnings
    )
    assert (
        "psycopg2 is imported without a green wait callback: each query blocks the hub" in warnings
    )
    fixes = " ".join(f["fix"] for f in report["findings"])
    assert "PyMySQL" in fixes and "psycopg=True" in fixes
    code, report = doctor(tmp_path, "green_psycopg")
    assert (code, report["findings"]) == (0, [])


def test_subprocess_that_is_not_green(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "subprocess_not_green")
    assert code == 1
    assert report["facts"]["not_patched"] == ["subprocess"]
    [warning] = whats(report, "warning")
    assert warning.startswith("svc_subprocess_not_green uses the stdlib subprocess (subprocess)")
    assert "eventlet.green.subprocess" in report["findings"][0]["fix"]


def test_names_taken_before_the_patch_include_popen_and_lock(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "popen_taken_early")
    assert code == 1
    assert sorted(whats(report, "warning")) == [
        "svc_popen_taken_early.Lock is the blocking threading.Lock: the module imported it "
        "before eventlet.monkey_patch() ran",
        "svc_popen_taken_early.Popen is the blocking subprocess.Popen: the module imported it "
        "before eventlet.monkey_patch() ran",
    ]


def test_hub_chosen_in_code_over_eventlet_hub_names_the_call(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "hub_in_code")
    assert code == 1
    [error] = report["findings"]
    assert error["severity"] == "error"
    assert error["what"].startswith(
        "EVENTLET_HUB=bridge.hub is set, but eventlet's hub is eventlet.hubs.poll.Hub: the "
        "code chose another hub"
    )
    assert error["where"] == f"{tmp_path / 'svc_hub_in_code.py'}:7: use_hub('poll')"
    assert "use_hub() without an argument" in error["fix"]


def test_a_clean_service_has_nothing_to_fix(tmp_path: Path) -> None:
    code, report = doctor(tmp_path, "clean_service")
    assert (code, report["findings"]) == (0, [])
    assert report["facts"]["monkey_patched"] == list(_patches.PATCHES)
    text = subprocess.run(
        [sys.executable, "-m", "bridge", "doctor", "--import", "svc_clean_service"],
        env=dict(os.environ, EVENTLET_HUB="bridge.hub", PYTHONPATH=str(tmp_path)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert text.returncode == 0 and "ok: nothing to fix" in text.stdout, text.stdout
