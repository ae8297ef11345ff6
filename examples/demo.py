"""``make demo``: the example service under load, stopped with SIGTERM in the middle.

Starts ``examples/run_service.py`` (the mixed-mode service, see
``examples/service/__init__.py``) in a subprocess -- one process, with its
own nats-server child and a SQLite file in a temporary directory -- loads it
with ``examples/loadgen.py`` until it stops, sends SIGTERM while the load is
on (after the first thousand answers), and checks: every request the
service began was answered, and, from the store, every job it accepted
(every 202 the load generator got) took effect exactly once before it exited.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import loadgen
from cluster import audit

HERE = Path(__file__).resolve().parent
TIMEOUT = 60  # seconds: the bound on every wait, and on the load
CLIENTS = 32
SIGTERM_AFTER = 1000  # answers: the load is well on when the service is told to stop


async def main(state_dir: str) -> int:
    service = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "run_service.py"),
        "--port=0",
        f"--state-dir={state_dir}",
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert service.stdout is not None
    try:
        first = (await asyncio.wait_for(service.stdout.readline(), TIMEOUT)).decode()
        match = re.search(r"http://\S+", first)
        if match is None:
            print(f"the service did not start: {first!r}", file=sys.stderr)
            return 1
        url = match.group(0)
        print(f"service: {first.strip()}")
        print(f"load: {CLIENTS} clients; SIGTERM to the service after {SIGTERM_AFTER} answers")
        well_on = asyncio.Event()

        def progress(answered: int) -> None:
            if answered >= SIGTERM_AFTER:
                well_on.set()

        accepted: list[str] = []
        load = asyncio.create_task(loadgen.run(url, CLIENTS, TIMEOUT, progress, accepted=accepted))
        await asyncio.wait_for(well_on.wait(), TIMEOUT)
        service.send_signal(signal.SIGTERM)
        summary = await asyncio.wait_for(load, TIMEOUT)
        rest = (await asyncio.wait_for(service.stdout.read(), TIMEOUT)).decode()
        status = await asyncio.wait_for(service.wait(), TIMEOUT)
    finally:
        if service.returncode is None:
            service.kill()
            await service.wait()
    for line in rest.splitlines():
        print(f"service: {line}")
    print(f"load generator: {json.dumps(summary)}")
    counted = re.search(r"jobs accepted=(\d+)", rest)
    store = await asyncio.to_thread(audit, f"sqlite:///{state_dir}/service.db", accepted)
    print(f"store: {store.jobs} jobs {store.by_status}")
    for problem in store.problems[:10]:
        print(f"PROBLEM: {problem}")
    good = (
        status == 0
        and counted is not None
        and int(counted.group(1)) == summary["jobs accepted"] == len(accepted)
        and all(code.startswith("2") for code in summary["status"])
        and store.exactly_once
    )
    print(
        "no accepted request or job was lost; each job took effect exactly once"
        if good
        else "SOMETHING WAS LOST OR DONE TWICE"
    )
    return 0 if good else 1


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="service-demo-") as state:
        sys.exit(asyncio.run(main(state)))
