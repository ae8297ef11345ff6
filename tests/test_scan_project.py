"""python -m bridge scan follows a project's own imports and calls (issue 12).

One made tree holds each pattern of the real services the issue names: a
shim module that re-exports eventlet, wrapper functions (``utils.spawn``),
stdlib calls green only under ``monkey_patch()``, blocking calls in async
code, the hub chosen in code, tests apart. Each test pins one of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bridge._cli import _patches, _scan
from bridge._cli._scan._report import ModuleReport, ScanReport

TREE = {
    "svc/__init__.py": "",
    "svc/common/__init__.py": "",
    # "all modules that need eventlet functionality should import from here"
    "svc/common/concurrency.py": """
        import eventlet
        from eventlet import GreenPool, Timeout, sleep

        spawn_later = eventlet.spawn_after

        def spawn(fn, *args):
            return eventlet.spawn(fn, *args)

        class Pool(eventlet.GreenPool):
            pass
    """,
    "svc/reaper.py": """
        from svc.common.concurrency import GreenPool, sleep
        from svc import db

        def reap():
            pool = GreenPool()
            sleep(1)
            db.purge()
    """,
    "svc/db.py": """
        import time

        def purge():
            time.sleep(1)
    """,
    "svc/worker.py": """
        from .common import concurrency

        def start(work):
            concurrency.spawn(work)
            concurrency.spawn_later(1, work)
    """,
    "svc/pools.py": """
        from svc.common.concurrency import *
        from svc.common import concurrency as c

        def pool():
            return c.Pool()
    """,
    "svc/utils.py": """
        import time
        import eventlet

        def spawn_n(fn):
            eventlet.spawn_n(fn)

        def wait_a_bit():
            time.sleep(1)

        def wait_longer():
            wait_a_bit()

        def get_hub():
            return "poll"
    """,
    "svc/manager.py": """
        import subprocess
        import threading
        from threading import Lock
        from svc import utils

        LOCK = Lock()

        def run():
            utils.spawn_n(work)
            threading.Thread(target=work).start()
            subprocess.run(["true"])

        def work():
            pass
    """,
    "svc/api.py": """
        import asyncio
        import time

        import bridge
        import eventlet
        from svc import utils

        async def handler(request):
            time.sleep(1)
            eventlet.sleep(0)
            utils.wait_longer()
            time.sleep(2)  # bridge: ok (a measured 2 s stall at start-up)
            utils.spawn_n(print)
            await asyncio.sleep(1)

            def later():
                time.sleep(3)

            return later

        @bridge.portal
        async def with_portal():
            eventlet.sleep(1)
    """,
    "svc/cmd/__init__.py": "",
    "svc/cmd/server.py": """
        import eventlet
        import eventlet.hubs
        from svc import utils

        def main():
            eventlet.hubs.use_hub(utils.get_hub())
            eventlet.hubs.use_hub()
    """,
    "svc/plain.py": "def add(a, b):\n    return a + b\n",
    "svc/tests/__init__.py": "",
    "svc/tests/test_reaper.py": """
        from svc.common.concurrency import sleep

        def test_reap():
            sleep(0)
    """,
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def report(tmp_path: Path) -> ScanReport:
    return _scan.scan(write_tree(tmp_path, TREE))


def by_path(report: ScanReport) -> dict[str, ModuleReport]:
    return {m.path.replace(os.sep, "/"): m for m in report.modules}


def test_a_shim_that_re_exports_eventlet_makes_its_users_green(report: ScanReport) -> None:
    modules = by_path(report)
    reaper = modules["svc/reaper.py"]
    assert reaper.status == "green" and reaper.kinds == ["shim"]
    chains = {use.name: use.chain for use in reaper.shim_uses}
    assert chains["GreenPool"] == [
        "svc/reaper.py",
        "svc/common/concurrency.py",
        "eventlet.GreenPool",
    ]
    shim = modules["svc/common/concurrency.py"]
    assert shim.role == "shim" and shim.kinds == ["direct"]
    assert shim.users == 4  # reaper, worker, pools; the test module counts too
    assert modules["svc/plain.py"].status == "other"


def test_wrapper_functions_aliases_subclasses_and_star_imports_are_followed(
    report: ScanReport,
) -> None:
    modules = by_path(report)
    worker = {use.name: use.chain for use in modules["svc/worker.py"].shim_uses}
    assert worker["spawn"] == ["svc/worker.py", "svc/common/concurrency.py:spawn", "eventlet.spawn"]
    assert worker["spawn_later"] == [
        "svc/worker.py",
        "svc/common/concurrency.py",
        "eventlet.spawn_after",
    ]
    pools = {use.name: use.chain for use in modules["svc/pools.py"].shim_uses}
    assert pools["Pool"] == ["svc/pools.py", "svc/common/concurrency.py:Pool", "eventlet.GreenPool"]
    assert "*" in pools  # from svc.common.concurrency import *
    manager = modules["svc/manager.py"]
    assert manager.shim_uses[0].chain == [
        "svc/manager.py",
        "svc/utils.py:spawn_n",
        "eventlet.spawn_n",
    ]


def test_stdlib_calls_green_by_monkey_patch_name_the_patch(report: ScanReport) -> None:
    manager = by_path(report)["svc/manager.py"]
    assert manager.kinds == ["shim", "implicit"]
    needs = {(use.call, use.patch) for use in manager.implicit}
    assert needs == {
        ("threading.Lock", "thread"),
        ("threading.Thread", "thread"),
        ("subprocess.run", "subprocess"),
    }
    every = {use.patch for m in report.modules for use in m.implicit}
    assert every <= set(_patches.PATCHES)  # the doctor's names


def test_implicit_calls_count_only_in_a_tree_that_uses_eventlet(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, {"job.py": "import time\n\ndef run():\n    time.sleep(1)\n"})
    plain = _scan.scan(tree)
    assert plain.modules[0].status == "other" and plain.modules[0].implicit
    assert not plain.patched
    forced = _scan.scan(tree, patched=True)
    assert forced.modules[0].status == "green" and forced.modules[0].kinds == ["implicit"]


def test_blocking_calls_in_async_code_each_with_its_fix(report: ScanReport) -> None:
    found = {(b.line, b.call, b.kind): b for b in report.blocking}
    assert sorted(found) == [
        (10, "time.sleep", "implicit"),
        (11, "eventlet.sleep", "eventlet"),
        (12, "utils.wait_longer", "project"),
    ]
    assert all(b.path == os.path.join("svc", "api.py") and b.function == "handler"
               for b in report.blocking)  # fmt: skip
    assert found[(10, "time.sleep", "implicit")].patch == "time"
    assert "await asyncio.sleep()" in found[(10, "time.sleep", "implicit")].fix
    project = found[(12, "utils.wait_longer", "project")]
    assert project.chain == ["svc/utils.py:wait_longer", "svc/utils.py:wait_a_bit", "time.sleep"]
    assert "await bridge.to_async(utils.wait_longer)(...)" in project.fix
    assert "@bridge.portal on handler" in project.fix


def test_hub_selected_in_code_names_the_line_and_the_helper(report: ScanReport) -> None:
    [hub] = report.hub
    assert (hub.path, hub.line) == (os.path.join("svc", "cmd", "server.py"), 7)
    assert hub.code == "eventlet.hubs.use_hub(utils.get_hub())"
    assert hub.helper == os.path.join("svc", "utils.py") + ":get_hub"
    assert "EVENTLET_HUB" in hub.fix


def test_the_plan_keeps_tests_apart_and_moves_shims_last(report: ScanReport) -> None:
    modules = by_path(report)
    assert modules["svc/tests/test_reaper.py"].role == "test"
    assert report.counts(tests=True)["green"] == 1
    assert report.totals()["tests"]["modules"] == 2
    order = [path.replace(os.sep, "/") for path in report.order]
    assert order[-1] == "svc/tests/test_reaper.py"
    shims = [p for p in order if modules[p].role == "shim"]
    assert order[-1 - len(shims) : -1] == shims  # shims after every service module
    assert order.index("svc/db.py") < order.index("svc/reaper.py")  # leaves first
    assert modules["svc/manager.py"].weight == {
        "lines": 16, "eventlet_sites": 1, "implicit_sites": 4,
    }  # fmt: skip
    assert modules["svc/manager.py"].deps == [os.path.join("svc", "utils.py")]


def run_scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "scan", *args], capture_output=True, text=True, timeout=60
    )


def test_check_fails_on_blocking_calls_and_a_baseline_shows_the_change(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", TREE)
    first = run_scan(str(tree), "--json", "--check")
    assert first.returncode == 1, first.stderr
    assert "3 blocking call(s) in async code" in first.stderr
    baseline = tmp_path / "baseline.json"
    baseline.write_text(first.stdout)
    # Same tree: nothing new, --check passes against the baseline.
    again = run_scan(str(tree), "--check", "--baseline", str(baseline))
    assert again.returncode == 0, again.stdout + again.stderr
    # The reaper moves to asyncio; a new coroutine blocks.
    write_tree(tree, {
        "svc/reaper.py": "import asyncio\n\nasync def reap():\n    await asyncio.sleep(1)\n",
        "svc/late.py": "import time\nimport eventlet\n\nasync def late():\n    time.sleep(1)\n",
    })  # fmt: skip
    moved = run_scan(str(tree), "--json", "--check", "--baseline", str(baseline))
    assert moved.returncode == 1
    since: dict[str, Any] = json.loads(moved.stdout)["since"]
    changes = {(c["path"].replace(os.sep, "/"), c["before"], c["now"]) for c in since["moved"]}
    assert ("svc/reaper.py", "green", "async") in changes
    assert ("svc/late.py", "other", "mixed") in changes
    assert since["new_blocking"] == [os.path.join("svc", "late.py") + "::late::time.sleep"]
    assert since["progress"]["now"] > since["progress"]["before"]
    text = run_scan(str(tree), "--baseline", str(baseline))
    assert "Since the baseline: progress 0% -> " in text.stdout
    assert "svc/reaper.py: green -> async".replace("/", os.sep) in text.stdout


def test_text_report_shows_chains_patches_lint_hub_and_order(tmp_path: Path) -> None:
    result = run_scan(str(write_tree(tmp_path, TREE)))
    assert result.returncode == 0, result.stderr  # without --check, findings do not fail
    out = result.stdout
    assert "via shim (line 2): GreenPool: svc/reaper.py -> svc/common/concurrency.py -> " \
        "eventlet.GreenPool".replace("svc/", f"svc{os.sep}") in out  # fmt: skip
    assert (
        "green via monkey_patch: " in out and "subprocess.run (line 12) needs 'subprocess'" in out
    )
    assert "Blocking calls in async code (3)" in out
    assert "Hub selected in code (1): EVENTLET_HUB=bridge.hub is ignored" in out
    assert "Migration order (" in out
    assert "tests apart: 2 modules: 1 green" in out


def test_bad_baseline_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a scan"}')
    result = run_scan(str(tmp_path), "--baseline", str(bad))
    assert result.returncode == 2
    assert "not the JSON of python -m bridge scan --json" in result.stderr
    missing = run_scan(str(tmp_path), "--baseline", str(tmp_path / "missing.json"))
    assert missing.returncode == 2 and "--baseline" in missing.stderr


def test_green_classes_decorators_and_mere_mentions(tmp_path: Path) -> None:
    # What the accuracy corpus taught: swift's RateLimitedIterator (a method
    # wraps eventlet.sleep), ironic's @periodics.node_periodic (the wrapper
    # inside a decorator sleeps), and isinstance() on a large class with one
    # green method (not a use).
    tree = write_tree(tmp_path, {
        "lib/__init__.py": "",
        "lib/limiter.py": """
            import eventlet

            class Limiter:
                def wait(self):
                    eventlet.sleep(1)

            class Fast(Limiter):
                pass

            class Big:
                def quiet(self):
                    pass

                def green(self):
                    eventlet.sleep(0)

            def periodic(spacing):
                def decorator(fn):
                    def wrapper(*args):
                        eventlet.sleep(0)
                        return fn(*args)
                    return wrapper
                return decorator
        """,
        "lib/made.py": "from lib.limiter import Fast\n\ndef run():\n    return Fast()\n",
        "lib/decorated.py": """
            from lib import limiter

            @limiter.periodic(5)
            def job():
                pass
        """,
        "lib/mentions.py": """
            from lib.limiter import Big

            def check(obj):
                return isinstance(obj, Big)
        """,
    })  # fmt: skip
    modules = by_path(_scan.scan(tree))
    made = modules["lib/made.py"].shim_uses[0].chain
    assert made[:3] == ["lib/made.py", "lib/limiter.py:Fast", "lib/limiter.py:Limiter"]
    assert made[-1] == "eventlet.sleep"
    decorated = modules["lib/decorated.py"].shim_uses[0].chain
    assert decorated == ["lib/decorated.py", "lib/limiter.py:periodic", "eventlet.sleep"]
    assert modules["lib/mentions.py"].status == "other"
