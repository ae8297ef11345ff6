"""bridge.hub before and after a change: ``bench/hub.py`` run on several commits, alternated.

Usage::

    python bench/hub_trees.py f7e223b c74b72b HEAD --rounds 9
    python bench/hub_trees.py HEAD~1 HEAD --only tcp_echo,wsgi --configs epolls,bridge

Each commit is checked out (``git worktree add --detach``) into a temporary directory;
then, round after round, every commit's own ``bench/hub.py`` runs once (``--repeat 1``),
in turn, so that a noisy neighbour on a shared machine hits every commit alike. Within a
run, each bridge configuration is divided by ``epolls`` of the same run, which moves with
the machine but not with the commit (eventlet's code is the same in every tree); the table
gives, per commit, the median of those ratios over the rounds. The commits' own
``bench/hub.py`` must take ``--only``, ``--configs`` and ``--json`` (it has since the first
release). The worktrees are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from reporting import render  # bench/reporting.py, beside this script

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = "sleep0,spawn,queue,tcp_echo,timers,wsgi"
CONFIGS = "epolls,bridge,bridge-guest,bridge-uvloop,bridge-uvloop-guest"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="+", help="git revisions, oldest first")
    parser.add_argument("--rounds", type=int, default=5, help="runs per commit (default 5)")
    parser.add_argument("--only", default=WORKLOADS, help=f"workloads (default {WORKLOADS})")
    parser.add_argument("--configs", default=CONFIGS, help=f"configs (default {CONFIGS})")
    args = parser.parse_args(argv)
    if "epolls" not in args.configs.split(","):
        parser.error("--configs must include epolls: every ratio is taken against it")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def run_once(tree: Path, args: argparse.Namespace, out: Path) -> dict[tuple[str, str], float]:
    """One ``bench/hub.py --repeat 1`` of ``tree``: ops/s by (workload, config)."""
    command = [sys.executable, str(tree / "bench" / "hub.py"), "--repeat", "1"]
    command += ["--only", args.only, "--configs", args.configs, "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    results = json.loads(out.read_text())["results"]
    return {(r["workload"], r["config"]): r["median_ops_per_second"] for r in results}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [(commit, git("rev-parse", "--short", commit)) for commit in args.commits]
    ratios: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="hub-trees-") as tmp:
        trees = {}
        for commit, short in names:
            trees[short] = Path(tmp, short)
            git("worktree", "add", "--detach", str(trees[short]), commit)
        try:
            for round_ in range(1, args.rounds + 1):
                for short, tree in trees.items():
                    print(f"round {round_}/{args.rounds}: {short}", file=sys.stderr, flush=True)
                    rates = run_once(tree, args, Path(tmp, f"{short}-{round_}.json"))
                    for (workload, config), rate in rates.items():
                        base = rates.get((workload, "epolls"))
                        if config != "epolls" and rate and base:
                            ratios[(short, workload, config)].append(rate / base)
        finally:
            for tree in trees.values():
                git("worktree", "remove", "--force", str(tree))
    shorts = [short for _, short in names]
    print(f"bridge.hub against epolls of the same run, median of {args.rounds} rounds")
    print()
    rows = []
    for workload in args.only.split(","):
        for config in args.configs.split(","):
            if config == "epolls":
                continue
            cells = [ratios.get((short, workload, config)) for short in shorts]
            text = [f"{statistics.median(c):.2f}x" if c else "-" for c in cells]
            rows.append([workload, config, *text])
    print(render(["workload", "config", *shorts], rows, markdown=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
