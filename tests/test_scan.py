"""python -m bridge scan: a static report of eventlet use, on real code and on a made tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import eventlet
import pytest

from bridge._cli import _scan

MODULES = {
    "legacy/conductor.py": """
        import eventlet
        from eventlet import GreenPool
        from eventlet.green import socket

        def run():
            pool = GreenPool()
            eventlet.spawn(work)
            eventlet.sleep(1)
    """,
    "legacy/mixed.py": """
        import asyncio
        import eventlet.queue

        async def consume(q: eventlet.queue.Queue) -> None:
            await asyncio.sleep(0)
    """,
    "api/handlers.py": """
        import aiohttp

        async def handler(request):
            return None
    """,
    "util/helpers.py": "def add(a, b):\n    return a + b\n",
    "broken/syntax.py": "def oops(:\n",
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name, text in MODULES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    unreadable = tmp_path / "broken" / "latin1.py"
    unreadable.write_bytes(b"x = '\xff'\n")
    return tmp_path


def test_statuses_apis_and_replacements(tree: Path) -> None:
    report = _scan.scan(tree)
    by_path = {m.path: m for m in report.modules}
    conductor = by_path[os.path.join("legacy", "conductor.py")]
    assert conductor.status == "green"
    assert {"GreenPool", "green", "spawn", "sleep"} <= set(conductor.uses)
    assert by_path[os.path.join("legacy", "mixed.py")].status == "mixed"
    assert by_path[os.path.join("api", "handlers.py")].status == "async"
    assert by_path[os.path.join("util", "helpers.py")].status == "other"
    assert report.progress() == pytest.approx(1 / 3)
    assert sorted(path for path, _ in report.errors) == [
        os.path.join("broken", "latin1.py"),
        os.path.join("broken", "syntax.py"),
    ]
    assert any("syntax error, line 1" in error for _, error in report.errors)


def test_cli_text_json_and_html_agree(tree: Path, tmp_path: Path) -> None:
    page = tmp_path / "progress.html"
    run = [sys.executable, "-m", "bridge", "scan", str(tree)]
    text = subprocess.run([*run, "--html", str(page)], capture_output=True, text=True, timeout=60)
    data = subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and data.returncode == 0, text.stderr + data.stderr
    totals = json.loads(data.stdout)["totals"]
    assert totals["green"] == 1 and totals["mixed"] == 1 and totals["async"] == 1
    assert "1 green, 1 mixed, 1 async, 1 other; progress 33%" in text.stdout
    assert "GreenPool (line 3, 7): asyncio: asyncio.TaskGroup" in text.stdout  # import and use
    assert "[skipped] syntax error" in text.stdout
    html = page.read_text()
    assert "width:33.3%" in html and "conductor.py" in html
    assert "scanned" not in text.stderr  # progress goes to stderr on a terminal only


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    for args in (["scan", str(tmp_path / "missing")], ["frobnicate"], []):
        result = subprocess.run(
            [sys.executable, "-m", "bridge", *args], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, args


def test_scan_of_eventlets_own_tree() -> None:
    # Real eventlet-heavy code: the installed eventlet package itself.
    report = _scan.scan(Path(eventlet.__file__).parent)
    assert len(report.modules) > 50
    assert report.counts()["green"] > 50
    assert not report.errors
    apis = {api for api, *_ in report.apis()}
    assert {"hubs", "green", "monkey_patch", "Timeout"} <= apis


def test_progress_is_shown_on_a_terminal_only(tree: Path) -> None:
    import pty

    parent, child = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bridge", "scan", str(tree), "--json"],
            stdout=subprocess.PIPE,
            stderr=child,
            timeout=60,
        )
        os.close(child)
        shown = b""
        try:
            while chunk := os.read(parent, 4096):
                shown += chunk
        except OSError:
            pass  # the pty closed: all read
    finally:
        os.close(parent)
    assert result.returncode == 0
    assert b"scanned 6/6 files" in shown
    assert json.loads(result.stdout)["totals"]["green"] == 1  # stdout stays clean JSON
