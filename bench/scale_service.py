"""The Metal3-style scale scenario on the example service: one process against the cluster.

Usage::

    python bench/scale_service.py                  # SQLite, 100 nodes, 1 run each
    python bench/scale_service.py --repeat 3 --store postgresql://postgres@127.0.0.1/db
    python bench/scale_service.py --markdown       # a table for docs/example-service.md

For each configuration -- ``single`` (``--role all``: API, conductor,
nats-server child, BMC simulator in one process) and ``cluster`` (one
nats-server, the BMC rack, 2 API processes on one port, 2 conductor
processes) -- it starts the service on a fresh store and runs
``examples/scale.py``: enroll 100 nodes, power each on and wait for its
job, delete each, while 4 clients keep provisioning the 32 seeded nodes.
It prints seconds per phase, p50/p99 per kind of request, how many
provisioning jobs ran meanwhile, and whether every job took effect exactly
once (from the store). With ``--repeat``, the median run (by total seconds)
of each configuration is shown. A PostgreSQL ``--store`` names a database
that the bench empties (drops the tables) before each run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import scale  # noqa: E402
from cluster import Cluster, ServiceProcess, audit  # noqa: E402


def fresh_store(store: str, workdir: Path) -> str:
    if not store:
        return f"sqlite:///{workdir / 'service.db'}"
    import sqlalchemy as sa
    from service import store as schema

    engine = sa.create_engine(schema.urls(store, workdir)[0])
    schema.metadata.drop_all(engine)
    engine.dispose()
    return store


async def one_run(config: str, store: str, nodes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"scale-{config}-") as tmp:
        workdir = Path(tmp)
        url_store = fresh_store(store, workdir)
        if config == "single":
            service = ServiceProcess(
                "all",
                "all",
                ["--port=0", f"--state-dir={workdir}", f"--store={url_store}"],
                workdir,
            )
            await service.start()
            try:
                summary = await scale.run(service.first_line.rsplit(" ", 1)[-1], nodes)
            finally:
                await service.stop()
        else:
            async with Cluster(workdir, store=url_store) as cluster:
                summary = await scale.run(cluster.url, nodes)
        result = await asyncio.to_thread(audit, url_store, summary["accepted"])
    summary["exactly once"] = result.exactly_once
    summary["jobs"] = result.jobs
    return summary


def table(results: dict[str, dict[str, Any]], markdown: bool) -> str:
    kinds = ["create", "power", "wait", "delete", "gone"]
    rows = [["", *results]]
    for label, key in [
        ("total s", "seconds"),
        ("enroll s", "enroll s"),
        ("power on s", "power on s"),
        ("delete s", "delete s"),
        ("provisioning jobs meanwhile", "provisioning jobs meanwhile"),
    ]:
        rows.append([label, *(str(r[key]) for r in results.values())])
    for kind in kinds:
        cells = []
        for r in results.values():
            q = r["requests"].get(kind)
            cells.append(f"{q['p50 ms']} / {q['p99 ms']}" if q else "-")
        rows.append([f"{kind} p50 / p99 ms", *cells])
    rows.append(["unexpected answers", *(str(len(r["unexpected"])) for r in results.values())])
    rows.append(["exactly once", *("yes" if r["exactly once"] else "NO" for r in results.values())])
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        return "\n".join(lines)
    width = max(len(row[0]) for row in rows)
    return "\n".join(
        row[0].ljust(width) + "  " + "  ".join(cell.rjust(16) for cell in row[1:]) for row in rows
    )


async def main(args: argparse.Namespace) -> int:
    results: dict[str, dict[str, Any]] = {}
    for config in args.configs.split(","):
        runs = []
        for repetition in range(args.repeat):
            run = await one_run(config, args.store, args.nodes)
            print(f"{config} #{repetition + 1}: {run['seconds']} s", file=sys.stderr)
            runs.append(run)
        median = statistics.median_low(r["seconds"] for r in runs)
        results[config] = next(r for r in runs if r["seconds"] == median)
    print(table(results, args.markdown))
    if args.json:
        for r in results.values():
            r.pop("accepted")
        Path(args.json).write_text(json.dumps(results, indent=2))
    bad = any(r["unexpected"] or not r["exactly once"] for r in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", default="", help="SQLAlchemy URL; default a fresh SQLite file")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--configs", default="single,cluster")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", default="", help="write the results to this file")
    sys.exit(asyncio.run(main(parser.parse_args())))
