"""Command line of the differential tests (run from the repository root).

    python -m tests.green_programs show SEED
        print the program of SEED as pseudo-code
    EVENTLET_HUB=epolls python -m tests.green_programs run --seeds 7
        run programs on this process's hub and print their traces (JSON lines);
        --guest runs them in a greenthread awaited from asyncio.run,
        --uvloop on uvloop, --shake N shifts object ids, --programs FILE runs
        programs saved as a JSON list
    python -m tests.green_programs check --seeds 0-499 [--targets ...]
        the differential check of tests/test_differential.py on any seeds
    python -m tests.green_programs trace SEED [--targets ...]
        epolls' trace and each target's, side by side
    python -m tests.green_programs shrink SEED --target bridge-owner
        the smallest program derived from SEED that still differs
    python -m tests.green_programs report --seeds 0-199
        a table of every target (eventlet's asyncio hub too) against epolls

A seed spec is ``N``, ``A-B`` (inclusive) or a comma-separated list of both.
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.green_programs._generate import Program, describe, generate


def parse_seeds(spec: str) -> list[int]:
    """``"3"``, ``"0-99"``, ``"1,5,10-12"`` -> the seeds, in order."""
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            seeds.extend(range(int(lo), int(hi) + 1))
        else:
            seeds.append(int(part))
    if not seeds:
        raise SystemExit(f"no seeds in {spec!r}: write N, A-B or a comma-separated list")
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.green_programs")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print a program")
    show.add_argument("seed", type=int)
    run = sub.add_parser("run", help="run programs on this process's hub (EVENTLET_HUB)")
    run.add_argument("--seeds", default=None)
    run.add_argument("--programs", default=None, help="a JSON file: a list of programs")
    run.add_argument("--guest", action="store_true")
    run.add_argument("--uvloop", action="store_true")
    run.add_argument("--shake", type=int, default=0)
    for name in ("check", "report"):
        p = sub.add_parser(name)
        p.add_argument("--seeds", default="0-99")
        p.add_argument("--targets", default=None, help="comma-separated target names")
        p.add_argument("--batch", type=int, default=25)
        p.add_argument("--sockets", choices=("with", "without"), default=None)
        p.add_argument("--confirm", type=int, default=5, help="suspects confirmed per target")
    trace = sub.add_parser("trace", help="epolls' trace and each target's")
    trace.add_argument("seed", type=int)
    trace.add_argument("--targets", default=None)
    shrink = sub.add_parser("shrink", help="shrink a differing program")
    shrink.add_argument("seed", type=int)
    shrink.add_argument("--target", default="bridge-owner")
    args = parser.parse_args(argv)

    if args.command == "show":
        print(describe(generate(args.seed)))
        return 0
    if args.command == "run":
        from tests.green_programs import _batch

        if args.programs:
            with open(args.programs) as f:
                programs = [Program(**d) for d in json.load(f)]
        else:
            programs = [generate(s) for s in parse_seeds(args.seeds or "0")]
        _batch.main(programs, guest=args.guest, use_uvloop=args.uvloop, shake=args.shake)
        return 0

    from tests.green_programs import _harness

    targets = _harness.parse_targets(getattr(args, "targets", None))
    if args.command in ("check", "report"):
        sockets = None if args.sockets is None else args.sockets == "with"
        verdict = _harness.check(
            parse_seeds(args.seeds),
            targets,
            batch=args.batch,
            confirm_limit=args.confirm,
            sockets=sockets,
        )
        print(verdict.report() if args.command == "check" else verdict.table())
        return 0 if verdict.ok or args.command == "report" else 1
    if args.command == "trace":
        print(_harness.side_by_side(args.seed, targets))
        return 0
    if args.command == "shrink":
        print(_harness.shrink(args.seed, _harness.TARGETS[args.target]))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
