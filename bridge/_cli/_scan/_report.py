"""The scan's results as data: per module, per finding, totals, JSON, baseline.

The JSON (``--json``) is the text report's data, and the format a
``--baseline FILE`` reads back: keep keys stable, add rather than rename.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from bridge._cli._scan._tables import OTHER, REPLACEMENTS

STATUSES = ("green", "mixed", "async", "other")
KINDS = ("direct", "shim", "implicit")  # how a module is green, strongest first


@dataclasses.dataclass
class ShimUse:
    """A name taken from a project module that leads to eventlet."""

    line: int
    name: str
    chain: list[str]  # this module -> the shim (-> wrappers) -> eventlet.X


@dataclasses.dataclass
class ImplicitUse:
    """A stdlib call that is green only because of ``monkey_patch()``."""

    line: int
    call: str
    patch: str  # the monkey_patch() keyword it needs (bridge._cli._patches)
    fix: str


@dataclasses.dataclass
class BlockingCall:
    """A call inside ``async def`` that would block the loop."""

    path: str
    line: int
    function: str  # the coroutine function's qualname
    call: str
    kind: str  # "eventlet", "implicit" or "project" (a project function that reaches one)
    chain: list[str]
    fix: str
    patch: str = ""

    @property
    def key(self) -> str:
        """Stable across edits that move lines: what a baseline compares."""
        return f"{self.path}::{self.function}::{self.call}"


@dataclasses.dataclass
class HubSelection:
    """Code that selects eventlet's hub: ``EVENTLET_HUB=bridge.hub`` is then ignored."""

    path: str
    line: int
    code: str
    helper: str  # the project function that computes the hub name, if any
    fix: str


@dataclasses.dataclass
class ModuleReport:
    """One module's findings. ``uses``: eventlet API -> line numbers."""

    path: str
    lines: int
    status: str
    uses: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    name: str = ""
    kind: str = "none"  # the strongest of ``kinds``, or "none"
    kinds: list[str] = dataclasses.field(default_factory=list)
    role: str = ""  # "shim" (other modules take eventlet through it), "test" or ""
    shim_uses: list[ShimUse] = dataclasses.field(default_factory=list)
    implicit: list[ImplicitUse] = dataclasses.field(default_factory=list)
    deps: list[str] = dataclasses.field(default_factory=list)  # project modules imported (paths)
    users: int = 0  # modules that take eventlet names through this one (a shim's weight)
    weight: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def is_test(self) -> bool:
        return self.role == "test"


@dataclasses.dataclass
class ScanReport:
    root: str
    modules: list[ModuleReport]
    errors: list[tuple[str, str]]
    seconds: float
    cpu_seconds: float = 0.0
    blocking: list[BlockingCall] = dataclasses.field(default_factory=list)
    hub: list[HubSelection] = dataclasses.field(default_factory=list)
    order: list[str] = dataclasses.field(default_factory=list)  # paths, migrate in this order
    patched: bool = False  # the tree uses eventlet: implicit calls count as green
    since: dict[str, Any] | None = None  # the change since a baseline, if one was given

    @property
    def lines(self) -> int:
        return sum(m.lines for m in self.modules)

    def service(self) -> list[ModuleReport]:
        return [m for m in self.modules if m.role != "test"]

    def tests(self) -> list[ModuleReport]:
        return [m for m in self.modules if m.role == "test"]

    def counts(self, tests: bool = False) -> Counter[str]:
        """Statuses of the service's modules (of the test modules with ``tests=True``)."""
        return Counter(m.status for m in (self.tests() if tests else self.service()))

    def progress(self) -> float:
        """async / (green + mixed + async), over the service's modules (tests move last)."""
        c = self.counts()
        counted = c["green"] + c["mixed"] + c["async"]
        return c["async"] / counted if counted else 1.0

    def totals(self) -> dict[str, Any]:
        c = self.counts()
        t = self.counts(tests=True)
        kinds = Counter(k for m in self.service() for k in m.kinds)
        return {
            "modules": len(self.service()),
            "lines": self.lines,
            **{status: c[status] for status in STATUSES},
            "progress": round(self.progress(), 4),
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "tests": {"modules": len(self.tests()), **{s: t[s] for s in STATUSES}},
            "kinds": {kind: kinds[kind] for kind in KINDS},
            "shims": sum(1 for m in self.modules if m.role == "shim"),
            "blocking_calls": len(self.blocking),
            "hub_selections": len(self.hub),
            "patched": self.patched,
        }

    def apis(self) -> list[tuple[str, int, str, str]]:
        """(API, modules using it, asyncio replacement, meanwhile), most used first."""
        used = Counter(api for m in self.modules for api in m.uses)
        return [(api, n, *REPLACEMENTS.get(api, OTHER)) for api, n in used.most_common()]

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "totals": self.totals(),
            "apis": {
                api: {"modules": n, "asyncio": asyncio_way, "meanwhile": meanwhile}
                for api, n, asyncio_way, meanwhile in self.apis()
            },
            "modules": [dataclasses.asdict(m) for m in self.modules if m.status != "other"],
            "blocking": [{**dataclasses.asdict(b), "key": b.key} for b in self.blocking],
            "hub_selection": [dataclasses.asdict(h) for h in self.hub],
            "order": self.order,
            "graph": {m.path: m.deps for m in self.modules if m.deps and m.status != "other"},
            "errors": [{"path": p, "error": e} for p, e in self.errors],
            **({"since": self.since} if self.since is not None else {}),
        }


def compare(report: ScanReport, baseline: dict[str, Any]) -> dict[str, Any]:
    """What changed since ``baseline`` (an earlier ``--json`` output).

    :raises ValueError: ``baseline`` is not a scan's JSON.
    """
    try:
        before_totals = baseline["totals"]
        before_modules = {m["path"]: m["status"] for m in baseline["modules"]}
        before_blocking = {b["key"] for b in baseline.get("blocking", [])}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not the JSON of python -m bridge scan --json ({exc!r} missing)") from exc
    now_modules = {m.path: m.status for m in report.modules if m.status != "other"}
    moved = [
        {"path": path, "before": before_modules.get(path, "other"), "now": status}
        for path, status in sorted(now_modules.items())
        if before_modules.get(path, "other") != status
    ]
    moved += [
        {"path": path, "before": status, "now": "other" if path in _paths(report) else "gone"}
        for path, status in sorted(before_modules.items())
        if path not in now_modules
    ]
    now_keys = {b.key for b in report.blocking}
    return {
        "progress": {"before": before_totals.get("progress", 0.0), "now": report.progress()},
        "counts": {
            status: {"before": before_totals.get(status, 0), "now": report.counts()[status]}
            for status in ("green", "mixed", "async")
        },
        "moved": moved,
        "new_blocking": sorted(now_keys - before_blocking),
        "fixed_blocking": sorted(before_blocking - now_keys),
    }


def _paths(report: ScanReport) -> set[str]:
    return {m.path for m in report.modules}
