"""Bad input to every route of the example service: a 4xx with a JSON error, never a 500.

Hypothesis sends each route (v2 and the legacy v1) every method, path
parameters that exist, do not exist or are not names at all, query
parameters of every type, and bodies that are malformed JSON, JSON of the
wrong shape or types, objects with unknown fields, or larger than the
service reads. Every answer must be below 500, be JSON, and carry an
``error`` when it is an error; the service must log no traceback.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

pytest.importorskip("nats")
pytest.importorskip("sqlalchemy")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))
pytest.register_assert_rewrite("example_fixtures")  # imported here before pytest_plugins loads it

from example_fixtures import STORES, fresh_database, shared_postgres  # noqa: E402

BOUND = 30
MAX_BODY = 4096
EXAMPLES_PER_TEST = int(os.environ.get("EXAMPLE_FUZZ_EXAMPLES", "150"))  # more: a longer hunt


class Running:
    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process = process
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.log = log

    def request(self, method: str, target: str, body: bytes | None) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection(*self.address, timeout=BOUND)
        try:
            connection.request(method, target, body=body, headers={"Content-Type": "x/y"})
            response = connection.getresponse()
            kind = response.getheader("Content-Type", "")
            # A stream that opened (valid parameters) is left at its headers.
            data = b"" if "ndjson" in kind else response.read()
            return response.status, kind, data
        finally:
            connection.close()


@pytest.fixture(scope="module", params=STORES)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    workdir = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        store = f"sqlite:///{workdir / 'service.db'}"
    else:
        store = fresh_database(shared_postgres())
    log = workdir / "service.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "run_service.py"), "--port=0", f"--state-dir={workdir}",
             f"--store={store}", "--nodes=4", f"--max-body={MAX_BODY}", "--shutdown-timeout=5"],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()
    if "listening on" not in first:
        process.kill()
        pytest.fail(f"the service did not start: {first!r}\n{log.read_text()}")
    yield Running(process, first.split()[-1], log)
    process.terminate()
    process.communicate(timeout=BOUND)


# -- what to send -------------------------------------------------------------------------

NODES = st.one_of(
    st.sampled_from(["node-0", "node-1", "node-3", "zz-9", "stuck-x", ""]),
    st.text(min_size=1, max_size=80),
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,70}", fullmatch=True),
)
JOBS = st.one_of(
    st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    st.text(min_size=1, max_size=40),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


def objects(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects near the valid ones: the fields with any values, some missing, some extra."""
    values = {name: st.one_of(strategy, JSON) for name, strategy in fields.items()}
    return st.fixed_dictionaries({}, optional=values).flatmap(
        lambda known: st.dictionaries(st.text(max_size=8), JSON, max_size=2).map(
            lambda extra: {**extra, **known}
        )
    )


BODIES = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.binary(min_size=MAX_BODY + 1, max_size=MAX_BODY + 2048),
    JSON.map(lambda value: json.dumps(value).encode()),
    objects({"state": st.sampled_from(["on", "off", "On", ""])}).map(
        lambda value: json.dumps(value).encode()
    ),
    objects({"name": NODES}).map(lambda value: json.dumps(value).encode()),
)
QUERIES = st.dictionaries(
    st.sampled_from(["wait", "limit", "after", "node", "job", "x"]),
    st.one_of(
        st.text(max_size=12),
        st.floats(allow_nan=True).map(str),
        st.integers(-10, 2000).map(str),
        st.sampled_from(["0", "0.01", "1e400", "-inf", "nan", ""]),
    ),
    max_size=3,
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes | None]:
    node = quote(draw(NODES), safe="")
    job = quote(draw(JOBS), safe="")
    path = draw(
        st.sampled_from(
            [
                "/v2/nodes",
                f"/v2/nodes/{node}",
                f"/v2/nodes/{node}/power",
                f"/v2/jobs/{job}",
                "/v2/events",
                "/healthz",
                f"/v1/nodes/{node}",
                f"/v1/{node}",
                f"/v2/{node}",
            ]
        )
    )
    query = draw(QUERIES)
    if path == "/v2/events" and "limit" not in query:
        query["limit"] = "1"  # a stream that opens closes after one event
    if "wait" in query and not path.startswith("/v2/jobs"):
        pass
    elif "wait" in query:
        query["wait"] = query["wait"][:4]  # a valid wait stays short: at most 9999 -> 400
    target = path + ("?" + urlencode(query) if query else "")
    return draw(METHODS), target, draw(BODIES)


@settings(
    max_examples=EXAMPLES_PER_TEST,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
def test_every_route_answers_bad_input_with_a_4xx_json_error(
    service: Running, request: tuple[str, str, bytes | None]
) -> None:
    method, target, body = request
    status, kind, data = service.request(method, target, body)
    assert status < 500, (method, target, body, status, data[:300])
    if "ndjson" in kind:
        assert (method, status) == ("GET", 200)
        return
    if status == 204:  # a node deleted: no body
        assert (method, data) == ("DELETE", b"")
        return
    assert kind.startswith("application/json"), (method, target, status, kind, data[:300])
    answer = json.loads(data) if data else None
    if status >= 400:
        assert isinstance(answer, dict) and answer["error"] and answer["status"] == status


def test_the_fuzzed_service_logged_no_traceback_and_stops_cleanly(service: Running) -> None:
    service.process.terminate()
    out, _ = service.process.communicate(timeout=BOUND)
    log = service.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert service.process.returncode == 0, out + log[-2000:]
