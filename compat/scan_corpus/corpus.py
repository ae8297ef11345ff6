#!/usr/bin/env python3
"""How accurate is ``python -m bridge scan``? Measured on real trees from PyPI.

The corpus is OpenStack services and libraries of several eras, before and
after their move away from eventlet. The sdists are fetched with pip (not
committed) into ``compat/_work/scan_corpus``; the hand labels are checked in
(``labels.tsv``: tree, module, the kinds a person saw reading it, a note).
For each kind (direct, shim, implicit) the script compares the scanner with
the labels over the labelled modules and prints precision and recall, and
the scan's speed per tree::

    python compat/scan_corpus/corpus.py            # fetch, scan, compare
    python compat/scan_corpus/corpus.py --sample   # the modules to label

The sample is drawn from the files' text only, never from the scanner's
output, so labelling cannot lean on what is measured: per tree, 12 modules
at random among those outside tests, 4 among those whose text says
"eventlet", and 4 among those whose text says "spawn", "GreenPool" or
"greenthread" but not "eventlet" (where shims are used), with a fixed seed.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE.parent / "_work" / "scan_corpus"
LABELS = HERE / "labels.tsv"
KINDS = ("direct", "shim", "implicit")

# (project, version, era)
TREES = [
    ("nova", "30.0.0", "2024.2: eventlet, utils.spawn wrappers"),
    ("swift", "2.35.0", "2025: eventlet, hub chosen in code"),
    ("oslo.service", "2.8.0", "2022: the eventlet service library"),
    ("oslo.service", "4.8.0", "2025: threading backend beside eventlet's"),
    ("ironic", "21.0.0", "2022: eventlet"),
    ("ironic", "39.0.0", "2025: after eventlet's removal"),
]


def tree_name(project: str, version: str) -> str:
    return f"{project}-{version}"


def fetch(project: str, version: str) -> Path:
    """The extracted sdist (fetched with pip once)."""
    WORK.mkdir(parents=True, exist_ok=True)
    name = tree_name(project, version)
    target = WORK / name
    if target.is_dir():
        return target
    archives = WORK / "sdists"
    found = _archive(archives, project, version)
    if found is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "--quiet", "--dest", str(archives), f"{project}=={version}"],
            check=True, env=dict(os.environ, PBR_VERSION=version),  # pbr needs no git
        )  # fmt: skip
        found = _archive(archives, project, version)
    if found is None:
        raise SystemExit(f"pip fetched no sdist of {project}=={version} into {archives}")
    with tarfile.open(found) as archive:
        top = archive.getnames()[0].split("/")[0]
        extract = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(WORK, **extract)  # type: ignore[arg-type]
    (WORK / top).rename(target)
    return target


def _archive(folder: Path, project: str, version: str) -> Path | None:
    if not folder.is_dir():
        return None
    prefixes = {f"{project}-{version}.", f"{project.replace('.', '_')}-{version}."}
    for path in folder.iterdir():
        if any(path.name.startswith(p) for p in prefixes) and path.name.endswith(".tar.gz"):
            return path
    return None


def sample(root: Path, seed: str) -> list[str]:
    """The modules to label in one tree: drawn from their text, with a fixed seed."""
    from bridge._cli._scan._run import is_test, python_files

    rng = random.Random(seed)
    service = sorted(
        str(p.relative_to(root)).replace(os.sep, "/")
        for p in python_files(root)
        if not is_test(str(p.relative_to(root)))
    )
    text = {path: (root / path).read_text(encoding="utf-8", errors="replace") for path in service}
    eventlet = [p for p in service if "eventlet" in text[p]]
    wrapped = [
        p
        for p in service
        if "eventlet" not in text[p]
        and any(w in text[p] for w in ("spawn", "GreenPool", "greenthread"))
    ]
    chosen: list[str] = []
    for pool, count in ((service, 12), (eventlet, 4), (wrapped, 4)):
        left = [p for p in pool if p not in chosen]
        chosen += rng.sample(left, min(count, len(left)))
    return sorted(chosen)


def read_labels() -> dict[str, dict[str, set[str]]]:
    labels: dict[str, dict[str, set[str]]] = {}
    with LABELS.open(encoding="utf-8") as source:
        for row in csv.DictReader(
            (line for line in source if not line.startswith("#")), delimiter="\t"
        ):
            kinds = {k for k in row["kinds"].split(",") if k and k != "none"}
            unknown = kinds - set(KINDS)
            if unknown:
                raise SystemExit(f"labels.tsv: unknown kind {unknown} for {row['module']}")
            labels.setdefault(row["tree"], {})[row["module"]] = kinds
    return labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", action="store_true", help="print the modules to label")
    options = parser.parse_args()
    sys.path.insert(0, str(HERE.parent.parent))
    from bridge._cli._scan import scan

    labels = {} if options.sample else read_labels()
    counts = {kind: {"tp": 0, "fp": 0, "fn": 0} for kind in KINDS}
    print("| tree | era | files | lines | CPU s | lines/s | labelled |")
    print("|---|---|---|---|---|---|---|")
    misses: list[str] = []
    for project, version, era in TREES:
        name = tree_name(project, version)
        root = fetch(project, version)
        if options.sample:
            for module in sample(root, name):
                print(f"{name}\t{module}")
            continue
        started = time.process_time()
        report = scan(root)
        cpu = time.process_time() - started
        found = {m.path.replace(os.sep, "/"): set(m.kinds) for m in report.modules}
        mine = labels.get(name, {})
        for module, truth in sorted(mine.items()):
            seen = found.get(module, set())
            for kind in KINDS:
                if kind in truth and kind in seen:
                    counts[kind]["tp"] += 1
                elif kind in seen:
                    counts[kind]["fp"] += 1
                    misses.append(f"false {kind}: {name}/{module}")
                elif kind in truth:
                    counts[kind]["fn"] += 1
                    misses.append(f"missed {kind}: {name}/{module}")
        files = len(report.modules) + len(report.errors)
        print(
            f"| {name} | {era} | {files} | {report.lines} | {cpu:.2f} | "
            f"{report.lines / cpu:,.0f} | {len(mine)} |"
        )
    if options.sample:
        return 0
    print("\n| kind | precision | recall | TP | FP | FN |\n|---|---|---|---|---|---|")
    for kind, c in counts.items():
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        print(f"| {kind} | {precision:.2f} | {recall:.2f} | {c['tp']} | {c['fp']} | {c['fn']} |")
    if misses:
        print("\n" + "\n".join(misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
