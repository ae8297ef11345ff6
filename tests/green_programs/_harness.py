"""The parent side: run programs on epolls and on each target hub, decide what is stable, compare.

Stability. Each program runs ``BASELINE_RUNS`` times on epolls, in separate
processes with different ``PYTHONHASHSEED``\\s and heap layouts (``--shake``:
eventlet wakes waiters and serves fds in ``id``-hash order, and a shifted
heap gives other ids). What is compared is what every baseline run agrees
on: the steps all of them recorded, and the order of every two such steps
that all of them recorded in the same order. A program whose baseline runs
all agree (the generator aims for that) is compared step for step.

Confirmation. A target run that breaks that order is not yet a failure: the
program reruns ``CONFIRM_RUNS`` more times on epolls (what flips there was
never stable and is dropped) and twice on the target. It is a failure if
an order still stable on epolls is broken again; a mismatch that does not
come back is reported, not failed.

Runs that are *disturbed* (the machine stalled across a phase, see
``_generate``'s "Real time") are rerun, up to ``RETRIES`` times, and never
compared. How many programs needed a rerun is reported per target: far more
than epolls needs means the target's timers fire late.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from tests.green_programs._generate import Program, describe, generate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASELINE_RUNS = 3
CONFIRM_RUNS = 5
RETRIES = 3
BATCH_TIMEOUT = 8.0  # seconds for one subprocess (a batch takes 1-3 s)
BUDGET = 20.0  # seconds for one run_jobs call once a batch hung (pytest gives a test 60 s)
PARALLEL = 2  # subprocesses at a time: the machine has 2 cores (4 at a time: 7x the stalls)


@dataclasses.dataclass(frozen=True)
class Target:
    """One way of running programs: a hub (EVENTLET_HUB) and a mode."""

    name: str
    hub: str
    guest: bool = False
    uvloop: bool = False

    def command(self, shake: int = 0) -> list[str]:
        cmd = [sys.executable, "-m", "tests.green_programs", "run"]
        if self.guest:
            cmd.append("--guest")
        if self.uvloop:
            cmd.append("--uvloop")
        if shake:
            cmd += ["--shake", str(shake)]
        return cmd

    def env(self, hashseed: int = 0) -> dict[str, str]:
        env = dict(os.environ)
        env["EVENTLET_HUB"] = self.hub
        env["PYTHONHASHSEED"] = str(hashseed)
        env["PYTHONWARNINGS"] = "ignore"
        env.pop("PYTEST_CURRENT_TEST", None)
        return env

    def repro(self, seed: int) -> str:
        """The shell command that runs one program on this target."""
        flags = " --guest" if self.guest else ""
        flags += " --uvloop" if self.uvloop else ""
        return f"EVENTLET_HUB={self.hub} python -m tests.green_programs run{flags} --seeds {seed}"


BASELINE = Target("epolls", "epolls")
TARGETS = {
    t.name: t
    for t in (
        Target("bridge-owner", "bridge.hub"),
        Target("bridge-guest", "bridge.hub", guest=True),
        Target("bridge-uvloop", "bridge.hub", uvloop=True),
        Target("poll", "poll"),
        Target("selects", "selects"),
        Target("asyncio", "asyncio"),
    )
}


def parse_targets(spec: str | None) -> list[Target]:
    if not spec:
        return [TARGETS[n] for n in TARGETS]
    unknown = [n for n in spec.split(",") if n not in TARGETS]
    if unknown:
        raise SystemExit(f"unknown target(s) {unknown}: choose from {', '.join(TARGETS)}")
    return [TARGETS[n] for n in spec.split(",")]


# -- running ---------------------------------------------------------------------


class BatchRun:
    """One subprocess running a batch of programs; a thread reads it as it runs.

    When the subprocess has ended (or was killed after ``BATCH_TIMEOUT``),
    ``found`` holds seed -> result line and the run is put on ``done``.
    """

    def __init__(
        self,
        target: Target,
        programs: Sequence[Program],
        done: queue.Queue[BatchRun],
        *,
        shake: int = 0,
        hashseed: int = 0,
        tag: Any = None,
    ) -> None:
        self.target = target
        self.programs = list(programs)
        self.tag = tag  # the caller's: which job, which attempt
        self.cmd = target.command(shake)
        self.hung = False
        self.found: dict[int, dict[str, Any]] = {}
        self._file = None
        if all(p == generate(p.seed) for p in self.programs):
            self.cmd += ["--seeds", ",".join(str(p.seed) for p in self.programs)]
        else:  # edited programs (the shrinker's): as JSON, in a file
            fd, path = tempfile.mkstemp(suffix=".json", prefix="green_programs_")
            with os.fdopen(fd, "w") as f:
                json.dump([dataclasses.asdict(p) for p in self.programs], f)
            self._file = path
            self.cmd += ["--programs", path]
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=target.env(hashseed),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._done = done
        threading.Thread(target=self._wait, daemon=True).start()

    def _wait(self) -> None:
        try:
            self.found = self._collect()
        finally:
            self._done.put(self)

    def _collect(self) -> dict[int, dict[str, Any]]:
        """seed -> result line; a program the batch never finished gets a "crash"."""
        try:
            out, err = self.proc.communicate(timeout=BATCH_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            self.hung = True
        finally:
            if self._file:
                os.unlink(self._file)
        found: dict[int, dict[str, Any]] = {}
        for line in out.splitlines():
            if line.startswith("{"):
                d = json.loads(line)
                found[d["seed"]] = d
        for p in self.programs:
            if p.seed not in found:
                why = f"hung (killed after {BATCH_TIMEOUT:g}s)" if self.hung else "never ran"
                found[p.seed] = {
                    "seed": p.seed,
                    "crash": f"{why}; exit status {self.proc.returncode}; stderr:\n{err[-3000:]}",
                }
                if self.hung or found.keys() - {p.seed}:
                    break  # the ones after it never ran either: run them again
                # It exited before its first program: it cannot start; no use retrying.
        return found


@dataclasses.dataclass
class Job:
    """Programs to run on one target with one heap layout and hash seed."""

    target: Target
    programs: list[Program]
    shake: int = 0
    hashseed: int = 0


def run_jobs(
    jobs: Sequence[Job],
    *,
    batch: int = 25,
    parallel: int = PARALLEL,
    budget: float | None = BUDGET,
) -> list[dict]:
    """Run every job (``parallel`` subprocesses at a time); per job, seed -> result.

    A disturbed run is run again at once (another heap layout), up to
    ``RETRIES`` times; the last result is kept either way. Once a batch has
    hung (a hub that hangs costs ``BATCH_TIMEOUT`` per batch), no batch starts
    after ``budget`` seconds: its programs get a "crash" saying so.
    """
    start = time.monotonic()
    hung = False
    results: list[dict[int, dict[str, Any]]] = [{} for _ in jobs]
    done: queue.Queue[BatchRun] = queue.Queue()
    pending = collections.deque(
        (j, 0, job.programs[i : i + batch])
        for j, job in enumerate(jobs)
        for i in range(0, len(job.programs), batch)
    )
    running = 0
    while pending or running:
        while pending and running < parallel:
            j, attempt, chunk = pending.popleft()
            job = jobs[j]
            if hung and budget is not None and time.monotonic() - start > budget:
                why = f"not run: a batch hung, and {budget:g} s are spent"
                results[j].update({p.seed: {"seed": p.seed, "crash": why} for p in chunk})
                continue
            shake = job.shake + attempt
            BatchRun(job.target, chunk, done, shake=shake, hashseed=job.hashseed, tag=(j, attempt))
            running += 1
        if not running:
            break
        run = done.get()
        running -= 1
        hung = hung or run.hung
        j, attempt = run.tag
        again = []
        for p in run.programs:
            d = run.found.get(p.seed)
            if d is None:  # after a hung program in its batch: it never ran
                if attempt < RETRIES:
                    again.append(p)
                else:
                    results[j][p.seed] = {"seed": p.seed, "crash": "never ran (after a hang)"}
                continue
            d["attempts"] = attempt + 1
            results[j][p.seed] = d
            if d.get("disturbed") and attempt < RETRIES:
                again.append(p)
        if again:
            pending.append((j, attempt + 1, again))
    return results


def run_many(target: Target, programs: Sequence[Program], **kw: Any) -> dict[int, dict[str, Any]]:
    """Run ``programs`` on ``target``; seed -> result."""
    shake = kw.pop("shake", 0)
    hashseed = kw.pop("hashseed", 0)
    return run_jobs([Job(target, list(programs), shake, hashseed)], **kw)[0]


# -- comparing ---------------------------------------------------------------------


@dataclasses.dataclass
class Stable:
    """What every baseline run of one program agrees on."""

    runs: list[list[str]]

    @property
    def identical(self) -> bool:
        return all(r == self.runs[0] for r in self.runs)

    def common(self) -> set[str]:
        sets = [set(r) for r in self.runs]
        return set.intersection(*sets) if sets else set()

    def seen(self) -> set[str]:
        return set().union(*(set(r) for r in self.runs))

    def violations(self, trace: Sequence[str], limit: int = 5) -> list[str]:
        """What ``trace`` does that no baseline run did, on what they all agree."""
        if self.identical and list(trace) == self.runs[0]:
            return []
        common = self.common()
        problems = []
        missing = [s for s in self.runs[0] if s in common and s not in trace]
        if missing:
            problems.append(f"missing steps every epolls run has: {missing[:limit]}")
        extra = [s for s in trace if s not in self.seen()]
        if extra:
            problems.append(f"steps no epolls run has: {extra[:limit]}")
        positions = [{s: i for i, s in enumerate(r)} for r in self.runs]
        mine = [s for s in trace if s in common]
        flips = []
        for i, x in enumerate(mine):
            for y in mine[i + 1 :]:
                # The target has x before y; does every baseline have y before x?
                if all(pos[y] < pos[x] for pos in positions):
                    flips.append(f"{x!r} before {y!r}")
                    if len(flips) >= limit:
                        break
            if len(flips) >= limit:
                break
        if flips:
            problems.append("order every epolls run has the other way: " + "; ".join(flips))
        return problems


def first_divergence(
    reference: Sequence[str],
    trace: Sequence[str],
    context: int = 4,
    times: Sequence[float] | None = None,
) -> str:
    """The two traces side by side from a little before where they first differ
    (with ``times``, the target's steps show their time after T0 in ms)."""
    n = 0
    while n < min(len(reference), len(trace)) and reference[n] == trace[n]:
        n += 1
    lo = max(0, n - context)
    width = max([len(s) for s in reference[lo:]] + [6])
    rows = [f"      {'epolls':<{width}}   target"]
    for i in range(lo, max(len(reference), len(trace))):
        a = reference[i] if i < len(reference) else ""
        b = trace[i] if i < len(trace) else ""
        mark = "  " if a == b else "!="
        when = f"  ({times[i]:.3f} ms)" if times is not None and i < len(times) else ""
        rows.append(f"{i:4d}  {a:<{width}} {mark} {b}{when}")
        if i > n + 3 * context + 8:
            rows.append("      ...")
            break
    return "\n".join(rows)


@dataclasses.dataclass
class Finding:
    """A program whose target trace breaks epolls' stable order."""

    target: str
    program: Program
    problems: list[str]
    reference: list[str]
    got: dict[str, Any]  # the target's result: "trace", "times" (ms after T0)
    confirmed: bool
    reruns: str = ""

    def render(self) -> str:
        t = TARGETS.get(self.target, BASELINE)
        state = "CONFIRMED" if self.confirmed else "not reproduced"
        return "\n".join(
            [
                f"--- seed {self.program.seed} on {self.target}: {state} ({self.reruns})",
                *self.problems,
                first_divergence(self.reference, self.got["trace"], times=self.got["times"]),
                f"reproduce: {t.repro(self.program.seed)}",
                f"   and:    {BASELINE.repro(self.program.seed)}",
                f"   or:     python -m tests.green_programs trace {self.program.seed} "
                f"--targets {self.target}",
                describe(self.program),
            ]
        )


def _trace_ok(d: dict[str, Any] | None) -> bool:
    return d is not None and "trace" in d and not d.get("disturbed")


@dataclasses.dataclass
class Baseline:
    """epolls' runs of some programs, and what they agree on.

    :ivar programs: seed -> program.
    :ivar stable: seed -> what its undisturbed runs agree on (programs whose
        every run was disturbed are left out).
    :ivar unstable: seeds whose runs disagree somewhere (compared on the rest).
    :ivar errors: a run that crashed or hung on epolls: a bug in the programs.
    :ivar skipped: "seed: why" for programs left out.
    """

    programs: dict[int, Program]
    stable: dict[int, Stable]
    unstable: list[int]
    errors: list[str]
    skipped: list[str]

    def __repr__(self) -> str:
        return (
            f"<epolls baseline: {len(self.programs)} programs, {len(self.stable)} compared, "
            f"{len(self.unstable)} partly unstable, {len(self.errors)} errors>"
        )

    @classmethod
    def merged(cls, parts: Sequence[Baseline]) -> Baseline:
        """One baseline of the programs of ``parts`` (made separately, e.g. in chunks)."""
        base = cls({}, {}, [], [], [])
        for part in parts:
            base.programs.update(part.programs)
            base.stable.update(part.stable)
            base.unstable += part.unstable
            base.errors += part.errors
            base.skipped += part.skipped
        return base

    @classmethod
    def from_results(cls, programs: Sequence[Program], runs: Sequence[dict]) -> Baseline:
        base = cls({p.seed: p for p in programs}, {}, [], [], [])
        for p in programs:
            results = [r[p.seed] for r in runs if p.seed in r]
            crashed = [d for d in results if "crash" in d]
            if crashed:
                base.errors.append(f"seed {p.seed}: {crashed[0]['crash']}")
                continue
            good = [d["trace"] for d in results if _trace_ok(d)]
            if len(good) < 2:
                base.skipped.append(f"{p.seed}: disturbed in all but {len(good)} runs")
                continue
            base.stable[p.seed] = Stable(good)
            if not base.stable[p.seed].identical:
                base.unstable.append(p.seed)
        return base


def _baseline_jobs(programs: list[Program], runs: int, first: int = 0) -> list[Job]:
    return [Job(BASELINE, programs, shake=k * 10, hashseed=k) for k in range(first, first + runs)]


def collect_baseline(programs: Sequence[Program], *, batch: int = 25) -> Baseline:
    """Run ``programs`` ``BASELINE_RUNS`` times on epolls (see "Stability")."""
    runs = run_jobs(_baseline_jobs(list(programs), BASELINE_RUNS), batch=batch)
    return Baseline.from_results(programs, runs)


@dataclasses.dataclass
class Verdict:
    """The outcome of comparing targets with a baseline.

    :ivar compared: target -> programs compared (undisturbed on both sides).
    :ivar matched: target -> programs whose trace kept epolls' stable order.
    :ivar findings: programs that broke it (confirmed or not).
    :ivar skipped: target -> "seed: why" for programs not compared.
    :ivar retried: target -> programs that needed more than one run for an
        undisturbed one (a hub whose timers fire late shows here).
    """

    baseline: Baseline
    targets: list[str]
    compared: dict[str, int]
    matched: dict[str, int]
    findings: list[Finding]
    skipped: dict[str, list[str]]
    retried: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.baseline.errors and not self.failures()

    def failures(self, targets: Iterable[str] | None = None) -> list[Finding]:
        """Confirmed findings, and findings not rerun (beyond the confirmation limit)."""
        names = set(self.targets if targets is None else targets)
        return [
            f
            for f in self.findings
            if f.target in names and (f.confirmed or f.reruns == "not rerun")
        ]

    def table(self) -> str:
        b = self.baseline
        rows = [
            f"{len(b.programs)} programs; epolls x{BASELINE_RUNS} per program: "
            f"{len(b.unstable)} partly unstable (compared on the stable part), "
            f"{len(b.skipped)} disturbed too often",
            f"{'target':<15}{'compared':>9}{'same':>7}{'differ':>8}{'not rep.':>9}"
            f"{'skipped':>9}{'retried':>9}",
        ]
        for name in self.targets:
            differ = len(self.failures([name]))
            loose = sum(1 for f in self.findings if f.target == name) - differ
            rows.append(
                f"{name:<15}{self.compared.get(name, 0):>9}{self.matched.get(name, 0):>7}"
                f"{differ:>8}{loose:>9}{len(self.skipped.get(name, [])):>9}"
                f"{self.retried.get(name, 0):>9}"
            )
        return "\n".join(rows)

    def report(self, targets: Iterable[str] | None = None, limit: int = 3) -> str:
        names = set(self.targets if targets is None else targets)
        parts = [self.table()]
        parts += [f"epolls baseline problem: {e}" for e in self.baseline.errors]
        shown = [f for f in self.findings if f.target in names]
        shown.sort(key=lambda f: (not f.confirmed, f.program.size()))  # smallest first
        for f in shown[:limit]:
            parts.append(f.render())
        if len(shown) > limit:
            more = ", ".join(f"{f.program.seed}@{f.target}" for f in shown[limit : limit + 30])
            etc = ", ..." if len(shown) > limit + 30 else ""
            parts.append(f"... and {len(shown) - limit} more: {more}{etc}")
        for name, why in self.skipped.items():
            if name in names:
                parts += [f"skipped on {name}: {_clip(w)}" for w in why[:3]]
        return "\n\n".join(parts)


def _clip(text: str, keep: int = 800) -> str:
    """The first line and the end of a long message (a traceback's end says most)."""
    if len(text) <= keep:
        return text
    return text.split("\n", 1)[0] + "\n  [...]\n" + text[-keep:]


def compare(
    baseline: Baseline,
    targets: Sequence[Target],
    results: Sequence[dict[int, dict[str, Any]]],
    *,
    confirm_limit: int = 5,
    batch: int = 25,
    budget: float | None = 15.0,
) -> Verdict:
    """Compare each target's ``results`` (seed -> result) with ``baseline``.

    At most ``confirm_limit`` suspects per target are confirmed (see
    "Confirmation"), within ``budget`` seconds; the others are reported as
    findings not rerun.
    """
    verdict = Verdict(baseline, [t.name for t in targets], {}, {}, [], {}, {})
    suspects: dict[str, list[tuple[Program, dict[str, Any]]]] = {}
    for target, found in zip(targets, results, strict=True):
        compared = matched = 0
        verdict.retried[target.name] = sum(1 for d in found.values() if d.get("attempts", 1) > 1)
        for seed, st in baseline.stable.items():
            d = found.get(seed)
            if d is None:
                continue  # not run on this target
            if not _trace_ok(d):
                why = d.get("crash") or d.get("disturbed")
                verdict.skipped.setdefault(target.name, []).append(f"{seed}: {why}")
                continue
            compared += 1
            if st.violations(d["trace"]):
                suspects.setdefault(target.name, []).append((baseline.programs[seed], d))
            else:
                matched += 1
        verdict.compared[target.name] = compared
        verdict.matched[target.name] = matched
    verdict.findings = _confirm(targets, suspects, baseline.stable, confirm_limit, batch, budget)
    return verdict


def check(
    seeds: Sequence[int],
    targets: Sequence[Target],
    *,
    batch: int = 25,
    confirm_limit: int = 5,
    sockets: bool | None = None,
) -> Verdict:
    """Run ``seeds`` on epolls and on each of ``targets``; compare (see the module docstring).

    :param sockets: True: only the programs that use sockets; False: only
        those that do not; None: all.
    """
    programs = [generate(s) for s in seeds]
    if sockets is not None:
        programs = [p for p in programs if bool(p.conns) == sockets]
    jobs = _baseline_jobs(programs, BASELINE_RUNS) + [Job(t, programs) for t in targets]
    results = run_jobs(jobs, batch=batch, budget=None)
    baseline = Baseline.from_results(programs, results[:BASELINE_RUNS])
    return compare(
        baseline,
        targets,
        results[BASELINE_RUNS:],
        confirm_limit=confirm_limit,
        batch=batch,
        budget=None,
    )


def _confirm(
    targets: Sequence[Target],
    suspects: dict[str, list[tuple[Program, dict[str, Any]]]],
    stable: dict[int, Stable],
    limit: int,
    batch: int,
    budget: float | None,
) -> list[Finding]:
    """Rerun suspects on epolls and on their target (see "Confirmation")."""
    findings: list[Finding] = []
    suspects = {
        name: sorted(found, key=lambda pd: pd[0].size()) for name, found in suspects.items()
    }
    chosen = {name: found[:limit] for name, found in suspects.items()}
    for name, found in suspects.items():  # beyond the limit: reported as they are
        for program, d in found[limit:]:
            st = stable[program.seed]
            problems = st.violations(d["trace"])
            findings.append(Finding(name, program, problems, st.runs[0], d, False, "not rerun"))
    programs = {p.seed: p for found in chosen.values() for p, _ in found}
    if not programs:
        return findings
    by_name = {t.name: t for t in targets}
    jobs = _baseline_jobs(list(programs.values()), CONFIRM_RUNS, first=BASELINE_RUNS)
    keys = []
    for name, found in chosen.items():
        for k in range(2):
            keys.append(name)
            jobs.append(Job(by_name[name], [p for p, _ in found], shake=100 + k, hashseed=100 + k))
    results = run_jobs(jobs, batch=batch, budget=budget)
    more, again = results[:CONFIRM_RUNS], results[CONFIRM_RUNS:]
    for name, found in chosen.items():
        reruns = [r for key, r in zip(keys, again, strict=True) if key == name]
        for program, d in found:
            seed = program.seed
            extra = [r[seed]["trace"] for r in more if _trace_ok(r.get(seed))]
            st = Stable(stable[seed].runs + extra)
            problems = st.violations(d["trace"])
            if not problems:
                continue  # what differed was never stable on epolls
            repeats = [r[seed]["trace"] for r in reruns if _trace_ok(r.get(seed))]
            reproduced = sum(1 for r in repeats if st.violations(r))
            findings.append(
                Finding(
                    target=name,
                    program=program,
                    problems=problems,
                    reference=st.runs[0],
                    got=d,
                    confirmed=reproduced > 0,
                    reruns=f"epolls x{len(st.runs)} agree; differs again in "
                    f"{reproduced} of {len(repeats)} target reruns",
                )
            )
    findings.sort(key=lambda f: (f.target, f.program.seed))
    return findings


def side_by_side(seed: int, targets: Sequence[Target]) -> str:
    program = generate(seed)
    base = run_many(BASELINE, [program])[seed]
    parts = [describe(program)]
    ref = base.get("trace", [])
    for target in targets:
        d = run_many(target, [program])[seed]
        if "trace" not in d:
            parts.append(f"--- {target.name}: {d.get('crash')}")
            continue
        same = "same as epolls" if d["trace"] == ref else "DIFFERS"
        parts.append(f"--- {target.name} ({same})\n" + first_divergence(ref, d["trace"], 1000))
    return "\n\n".join(parts)


# -- shrinking ---------------------------------------------------------------------


def _without_actor(program: Program, name: str) -> Program:
    p = copy.deepcopy(program)
    p.main = [m for m in p.main if m[0] != name]
    for ops in p.actors.values():
        ops[:] = [op for op in ops if not (op[0] in ("spawn", "kill", "join") and op[1] == name)]
    del p.actors[name]
    p.killable = [k for k in p.killable if k != name]
    return p


def _without_op(program: Program, name: str, i: int) -> Program:
    p = copy.deepcopy(program)
    op = p.actors[name].pop(i)
    if op[0] == "spawn":  # its child is never spawned: drop it too
        p = _without_actor(p, op[1])
    return p


def _tidy(program: Program) -> Program:
    """Drop connections no op uses (their servers add steps), renumbering the others."""
    used = sorted(
        {op[1] for ops in program.actors.values() for op in ops if op[0] in ("req", "close")}
    )
    if len(used) == len(program.conns):
        return program
    p = copy.deepcopy(program)
    new = {old: k for k, old in enumerate(used)}
    p.conns = [program.conns[old] for old in used]
    for ops in p.actors.values():
        for op in ops:
            if op[0] in ("req", "close"):
                op[1] = new[op[1]]
    if not p.conns and "io" in p.actors and not p.actors["io"]:
        p = _without_actor(p, "io")
    return p


def _candidates(program: Program) -> Iterable[Program]:
    for name in list(program.actors):
        yield _tidy(_without_actor(program, name))
    for name, ops in program.actors.items():
        for i in reversed(range(len(ops))):
            yield _tidy(_without_op(program, name, i))


def _still_differs(programs: list[Program], target: Target) -> list[bool]:
    jobs = [Job(BASELINE, programs, 0, 0), Job(BASELINE, programs, 10, 1), Job(target, programs)]
    a, b, t = run_jobs(jobs)
    out = []
    for p in programs:
        ra, rb, rt = a.get(p.seed), b.get(p.seed), t.get(p.seed)
        if not (_trace_ok(ra) and _trace_ok(rb) and _trace_ok(rt)):
            out.append(False)
            continue
        assert ra and rb and rt
        if ra["trace"] != rb["trace"]:
            out.append(False)  # not stable on epolls: no use as a minimal program
            continue
        out.append(bool(Stable([ra["trace"], rb["trace"]]).violations(rt["trace"])))
    return out


def shrink(seed: int, target: Target, chunk: int = 40) -> str:
    """Remove actors and ops from the program of ``seed`` while ``target`` still
    breaks epolls' order with it; return the smallest program found and its traces."""
    program = generate(seed)
    if not _still_differs([program], target)[0]:
        return f"seed {seed}: {target.name} does not differ from epolls (or epolls is unstable)"
    while True:
        cands = []
        for k, cand in enumerate(_candidates(program)):
            cand.seed = -(k + 1)  # unique within the batch; restored below
            cands.append(cand)
        smaller = None
        for i in range(0, len(cands), chunk):
            part = cands[i : i + chunk]
            hits = [c for c, hit in zip(part, _still_differs(part, target), strict=True) if hit]
            if hits:
                smaller = min(hits, key=Program.size)
                break
        if smaller is None:
            break
        smaller.seed = seed
        program = smaller
    base = run_many(BASELINE, [program])[seed]
    got = run_many(target, [program])[seed]
    return "\n\n".join(
        [
            f"smallest program derived from seed {seed} that still differs on {target.name}:",
            describe(program),
            "JSON: " + program.to_json(),
            first_divergence(base.get("trace", []), got.get("trace", []), 1000),
        ]
    )
