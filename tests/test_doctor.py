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
}


def doctor(tmp_path: Path, program: str, hub: str = "bridge.hub") -> tuple[int, dict[str, Any]]:
    (tmp_path / f"svc_{program}.py").write_text(textwrap.dedent(PROGRAMS[program]))
    env = dict(os.environ, EVENTLET_HUB=hub, PYTHONPATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "doctor", "--import", f"svc_{program}", "--json"],
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
