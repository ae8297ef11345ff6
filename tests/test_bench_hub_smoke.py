"""``bench/hub.py``, ``bench/hub_trees.py`` and ``bench/crossing.py`` still run.

Tiny counts, so that CI notices when a benchmark breaks; no timing is asserted.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def test_hub_bench_runs_each_config_it_is_given() -> None:
    done = bench("hub.py", "--quick", "--only", "sleep0,tcp_echo", "--configs", "epolls,bridge")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("sleep0", "tcp_echo"))]
    assert len(rows) == 4, done.stdout
    assert "error" not in done.stdout.lower(), done.stdout


@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout"
)
def test_hub_trees_compares_commits_and_cleans_up() -> None:
    done = bench("hub_trees.py", "HEAD", "--rounds", "1", "--only", "sleep0")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| sleep0 | bridge-uvloop-guest |" in done.stdout, done.stdout
    worktrees = subprocess.run(
        ["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "hub-trees-" not in worktrees.stdout


def test_hub_trees_needs_epolls_to_divide_by() -> None:
    done = bench("hub_trees.py", "HEAD", "--configs", "bridge")
    assert done.returncode == 2
    assert "--configs must include epolls" in done.stderr


def test_crossing_bench_runs() -> None:
    done = bench("crossing.py", "--repeat", "1", "--count", "50")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "green->async" in done.stdout, done.stdout
