"""The examples run as a user runs them: as programs, in a fresh process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_loses_nothing_it_accepted_when_stopped_under_load() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no accepted request or job was lost" in result.stdout
    assert re.search(r"requests begun=(\d+) answered=\1 dropped=0;", result.stdout), result.stdout
    assert "Eventlet is deprecated" not in result.stderr


def test_one_loop_serves_both_worlds_from_both_clients() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "one_loop.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "one loop" in out
    for client in ("async client", "green client"):
        for server in ("aiohttp answered /item/2", "eventlet.wsgi answered /item/2"):
            assert f"{client}: {server}" in out, out
    assert "Eventlet is deprecated" not in result.stderr
