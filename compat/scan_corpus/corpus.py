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
output, so labelling cannot lean on what is measured: per tree, modules at
random among those outside tests, among those whose text says "eventlet",
and among those whose text says "spawn", "GreenPool" or "greenthread" but
not "eventlet" (where shims are used), with a fixed seed. Round 1 (12, 4, 4
per tree) was compared while the scanner was being improved; round 2 (4, 2,
2 more per tree, ``--sample --round 2``) and the round-1 sample of a tree
added later (nova 15.1.5) were labelled afterwards, compared once, and are
reported apart (the ``set`` column): the held-out measure.
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
    ("nova", "15.1.5", "2017: eventlet, six.moves, Python 2 and 3"),
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


# Per round: (at random, saying "eventlet", saying "spawn"/"GreenPool"/"greenthread").
ROUNDS = {1: (12, 4, 4), 2: (4, 2, 2)}


def sample(root: Path, name: str, round_: int) -> list[str]:
    """The modules to label in one tree: drawn from their text, with a fixed seed.

    Round 2 draws again (another seed) among the modules round 1 left.
    """
    from bridge._cli._scan._run import is_test, python_files

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
    taken: set[str] = set()
    chosen: list[str] = []
    for number in range(1, round_ + 1):
        rng = random.Random(name if number == 1 else f"{name}#{number}")
        chosen = []
        for pool, count in zip((service, eventlet, wrapped), ROUNDS[number], strict=True):
            left = [p for p in pool if p not in taken and p not in chosen]
            chosen += rng.sample(left, min(count, len(left)))
        taken.update(chosen)
    return sorted(chosen)


SETS = ("tuning", "held-out")


def read_labels() -> dict[str, dict[str, tuple[str, set[str]]]]:
    """tree -> module -> (set, kinds)."""
    labels: dict[str, dict[str, tuple[str, set[str]]]] = {}
    with LABELS.open(encoding="utf-8") as source:
        rows = csv.DictReader((line for line in source if not line.startswith("#")), delimiter="\t")
        for row in rows:
            kinds = {k for k in row["kinds"].split(",") if k and k != "none"}
            unknown = kinds - set(KINDS)
            if unknown:
                raise SystemExit(f"labels.tsv: unknown kind {unknown} for {row['module']}")
            if row["set"] not in SETS:
                raise SystemExit(f"labels.tsv: set {row['set']!r} is not one of {SETS}")
            labels.setdefault(row["tree"], {})[row["module"]] = (row["set"], kinds)
    return labels


def _table(title: str, counts: dict[str, dict[str, int]]) -> None:
    print(f"\n{title}\n\n| kind | precision | recall | TP | FP | FN |\n|---|---|---|---|---|---|")
    for kind, c in counts.items():
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        print(f"| {kind} | {precision:.2f} | {recall:.2f} | {c['tp']} | {c['fp']} | {c['fn']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", action="store_true", help="print the modules to label")
    parser.add_argument("--round", type=int, default=1, choices=sorted(ROUNDS))
    options = parser.parse_args()
    sys.path.insert(0, str(HERE.parent.parent))
    from bridge._cli._scan import scan

    labels = {} if options.sample else read_labels()
    counts = {s: {kind: {"tp": 0, "fp": 0, "fn": 0} for kind in KINDS} for s in ("all", *SETS)}
    if not options.sample:
        print("| tree | era | files | lines | CPU s | lines/s | labelled |")
        print("|---|---|---|---|---|---|---|")
    misses: list[str] = []
    for project, version, era in TREES:
        name = tree_name(project, version)
        root = fetch(project, version)
        if options.sample:
            for module in sample(root, name, options.round):
                print(f"{name}\t{module}\t{options.round}")
            continue
        started = time.process_time()
        report = scan(root)
        cpu = time.process_time() - started
        found = {m.path.replace(os.sep, "/"): set(m.kinds) for m in report.modules}
        mine = labels.get(name, {})
        for module, (which, truth) in sorted(mine.items()):
            seen = found.get(module, set())
            for kind in KINDS:
                outcome = (
                    "tp" if kind in truth and kind in seen
                    else "fp" if kind in seen
                    else "fn" if kind in truth
                    else ""
                )  # fmt: skip
                if outcome:
                    counts[which][kind][outcome] += 1
                    counts["all"][kind][outcome] += 1
                if outcome in ("fp", "fn"):
                    what = "false" if outcome == "fp" else "missed"
                    misses.append(f"{what} {kind} ({which}): {name}/{module}")
        files = len(report.modules) + len(report.errors)
        print(
            f"| {name} | {era} | {files} | {report.lines} | {cpu:.2f} | "
            f"{report.lines / cpu:,.0f} | {len(mine)} |"
        )
    if options.sample:
        return 0
    _table("Tuning set (the scanner was improved after comparing with these):", counts["tuning"])
    _table("Held-out set (labelled, then compared once; nothing tuned after):", counts["held-out"])
    _table("All labelled modules:", counts["all"])
    if misses:
        print("\n" + "\n".join(misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
