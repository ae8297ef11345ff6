"""``bench/alternatives.py`` still runs: every path, in a tiny configuration.

A few seconds of load per path, so that CI notices when a server, the load generator,
the conductor workload or the report breaks. No timing is asserted: only that every
measurement produced a result with answered requests (or finished jobs) and no errors.
The threads paths need the ``[bench]`` extra (cheroot, futurist); without it they are
left out of the run and reported as skipped, and the usage error is checked instead.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "alternatives.py"
TINY = ["--clients", "3", "--jobs", "4", "--calls", "2", "--repeat", "1"]
TINY += ["--warmup", "0.1", "--duration", "0.4", "--delay", "0.005"]

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="the benchmark reads /proc (Linux only)"
)


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def run_bench(*args: str, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


SERVERS = ["eventlet-epolls", "eventlet-bridge", "bridge-aiohttp", "aiohttp-native"]
SERVERS += ["cheroot-10"] if _installed("cheroot") else []
CONDUCTORS = ["green-epolls", "green-bridge", "asyncio"]
CONDUCTORS += ["threads-300"] if _installed("futurist") else []


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One tiny run of every available path: (its JSON file, its markdown report)."""
    out = tmp_path_factory.mktemp("bench") / "results.json"
    done = run_bench(
        *TINY,
        *("--servers", ",".join(SERVERS), "--conductors", ",".join(CONDUCTORS)),
        *("--json", str(out), "--markdown"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done.stdout


def test_every_path_serves_without_errors(tiny_run: tuple[Path, str]) -> None:
    data = json.loads(tiny_run[0].read_text())
    assert sorted(cell["config"] for cell in data["http"]) == sorted(SERVERS)
    for cell in data["http"]:
        assert cell["errors"] == [], (cell["config"], cell["errors"])
        (sample,) = cell["samples"]
        assert sample["requests"] > 0, cell["config"]
        assert sample["errors"] == {}, (cell["config"], sample["errors"])
        assert sample["rss_peak"] > 0
        # cheroot: 10 workers and the acceptor at least; the others serve from one thread.
        assert sample["threads_peak"] >= (11 if cell["config"] == "cheroot-10" else 1)


def test_every_conductor_finishes_its_jobs(tiny_run: tuple[Path, str]) -> None:
    data = json.loads(tiny_run[0].read_text())
    assert sorted(cell["config"] for cell in data["conductor"]) == sorted(CONDUCTORS)
    for cell in data["conductor"]:
        assert cell["errors"] == [], (cell["config"], cell["errors"])
        (sample,) = cell["samples"]
        assert sample["failed"] == 0, (cell["config"], sample["first_failure"])
        assert sample["jobs"] == 4 and sample["rate"] > 0


def test_the_report_names_every_configuration_and_judges_the_goal(
    tiny_run: tuple[Path, str],
) -> None:
    out, report = tiny_run
    for name in SERVERS + CONDUCTORS:
        assert f"| {name} |" in report or f") {name} |" in report, name
    assert "| path | clients | goal |" in report
    # The same report again from the JSON, without measuring.
    again = run_bench("--from-json", str(out), "--markdown", timeout=20)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout == report.replace(f"raw samples written to {out}\n", "")


def test_plots_from_json(tiny_run: tuple[Path, str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plotted = run_bench("--from-json", str(tiny_run[0]), "--plots", str(tmp_path), timeout=40)
    assert plotted.returncode == 0, plotted.stderr[-2000:]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["alternatives-conductor.png", "alternatives-http.png", "alternatives-rss.png"]
    for png in tmp_path.iterdir():
        assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clients", "0"], "--clients needs at least one number, each at least 1"),
        (["--clients", "ten"], "--clients takes comma-separated whole numbers"),
        (["--servers", "gunicorn"], "unknown server: gunicorn (known: eventlet-epolls,"),
        (["--conductors", "celery"], "unknown conductor: celery (known: green-epolls,"),
        (["--repeat", "0"], "--repeat must be at least 1"),
    ],
)
def test_bad_arguments_say_what_to_do(args: list[str], message: str) -> None:
    done = run_bench(*args, timeout=20)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.skipif(_installed("cheroot"), reason="cheroot is installed here")
def test_a_missing_dependency_names_the_extra() -> None:
    done = run_bench("--servers", "cheroot-10", "--conductors", "none", timeout=20)
    assert done.returncode == 2
    assert "cheroot-10 needs cheroot" in done.stderr
    assert "pip install -e '.[bench]'" in done.stderr
