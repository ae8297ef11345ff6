"""pytest fixtures for the example's tests (tests/test_example_*.py import them).

* ``database_url`` -- parametrized: a fresh SQLite file, and a fresh database
  on a throwaway PostgreSQL server (started once per test session, on
  127.0.0.1, when Debian's ``postgresql`` is installed; those tests skip
  otherwise). The same tests run on both.
* ``postgres`` -- that server, for tests that stop and start it.

They live here, beside the harness (``cluster.py``) they use, rather than in
tests/conftest.py, which the project's other tests share.

``EXAMPLE_TESTS=quick`` (``make test-versions`` sets it, for the CPythons
other than the main run's) keeps to SQLite and skips the cluster tests
(faults, scale): the main run has them all.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import Postgres

QUICK = os.environ.get("EXAMPLE_TESTS") == "quick"
STORES = ["sqlite"] if QUICK else ["sqlite", "postgresql"]
skip_if_quick = pytest.mark.skipif(QUICK, reason="EXAMPLE_TESTS=quick: the main CI run has these")

_server: Postgres | None = None
_databases = itertools.count()


def shared_postgres() -> Postgres:
    """The session's PostgreSQL server, started on first use; skips if not installed."""
    global _server
    if not Postgres.available():
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql)")
    if _server is None:
        root = Path(tempfile.mkdtemp(prefix="example-pg-"))
        server = Postgres(root)
        server.init()
        atexit.register(_stop, server, root)
        _server = server
    return _server


def _stop(server: Postgres, root: Path) -> None:
    try:
        server.stop()
    except (subprocess.SubprocessError, OSError):
        pass
    shutil.rmtree(root, ignore_errors=True)


def fresh_database(server: Postgres) -> str:
    name = f"test_{next(_databases)}"
    assert server.bindir is not None
    subprocess.run(
        [str(server.bindir / "psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U",
         "postgres", "-q", "-c", f"CREATE DATABASE {name}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return f"postgresql://postgres@127.0.0.1:{server.port}/{name}"


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'service.db'}"
    return fresh_database(shared_postgres())


@pytest.fixture
def postgres() -> Postgres:
    return shared_postgres()
