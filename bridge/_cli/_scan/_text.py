"""The scan as text: per module, then the lint, the hub, the plan, the change."""

from __future__ import annotations

from typing import Any, TextIO

from bridge._cli._scan._report import ModuleReport, ScanReport
from bridge._cli._scan._tables import OTHER, REPLACEMENTS


def _lines(lines: list[int], most: int = 8) -> str:
    return ", ".join(map(str, lines[:most])) + (", ..." if len(lines) > most else "")


def _module(m: ModuleReport, out: TextIO) -> None:
    notes = [f"green {kind}" if kind != "shim" else "green via shim" for kind in m.kinds]
    if m.role == "shim":
        modules = f"{m.users} modules take" if m.users != 1 else "1 module takes"
        notes.append(f"shim: {modules} eventlet through it")
    if m.role == "test":
        notes.append("test")
    out.write(f"{m.path}  [{m.status}]{'  ' + '; '.join(notes) if notes else ''}\n")
    for api, lines in m.uses.items():
        asyncio_way, meanwhile = REPLACEMENTS.get(api, OTHER)
        out.write(
            f"    {api} (line {_lines(lines)}): asyncio: {asyncio_way}; meanwhile: {meanwhile}\n"
        )
    for use in m.shim_uses[:8]:
        out.write(f"    via shim (line {use.line}): {use.name}: {' -> '.join(use.chain)}\n")
    if len(m.shim_uses) > 8:
        out.write(f"    via shim: {len(m.shim_uses) - 8} more uses\n")
    by_call: dict[tuple[str, str], list[int]] = {}
    for implicit in m.implicit:
        by_call.setdefault((implicit.call, implicit.patch), []).append(implicit.line)
    if by_call:
        shown = "; ".join(
            f"{call} (line {_lines(lines, 4)}) needs {patch!r}"
            for (call, patch), lines in by_call.items()
        )
        out.write(f"    green via monkey_patch: {shown}\n")


def write_text(report: ScanReport, out: TextIO) -> None:
    totals = report.totals()
    out.write(f"eventlet migration scan of {report.root}\n\n")
    for m in report.modules:
        if m.status != "other":
            _module(m, out)
    for path, error in report.errors:
        out.write(f"{path}  [skipped] {error}\n")
    if report.blocking:
        out.write(
            f"\nBlocking calls in async code ({len(report.blocking)}): each blocks the loop\n"
        )
        for b in report.blocking:
            why = {"eventlet": "eventlet", "implicit": f"needs monkey_patch {b.patch!r}"}.get(
                b.kind, " -> ".join(b.chain)
            )
            out.write(f"  {b.path}:{b.line} in {b.function}: {b.call}() [{why}]\n")
            out.write(f"      fix: {b.fix}\n")
    if report.hub:
        out.write(
            f"\nHub selected in code ({len(report.hub)}): EVENTLET_HUB=bridge.hub is ignored\n"
        )
        for h in report.hub:
            helper = f" (hub name from {h.helper})" if h.helper else ""
            out.write(f"  {h.path}:{h.line}: {h.code}{helper}\n      fix: {h.fix}\n")
    if report.order:
        by_path = {m.path: m for m in report.modules}
        out.write(
            f"\nMigration order ({len(report.order)} modules; leaves first, shims last, "
            "tests with the pytest plugin):\n"
        )
        for number, path in enumerate(report.order, 1):
            m = by_path[path]
            w = m.weight
            role = f", {m.role}" if m.role else ""
            out.write(
                f"  {number:>4}. {path} ({w['lines']} lines, {w['eventlet_sites']} eventlet "
                f"sites, {w['implicit_sites']} implicit{role})\n"
            )
    if report.since is not None:
        _since(report.since, out)
    c = report.counts()
    out.write(
        f"\n{totals['modules']} modules, {totals['lines']} lines: {c['green']} green, "
        f"{c['mixed']} mixed, {c['async']} async, {c['other']} other; "
        f"progress {report.progress():.0%} ({report.seconds:.2f} s)\n"
    )
    t = report.counts(tests=True)
    if report.tests():
        out.write(
            f"tests apart: {len(report.tests())} modules: {t['green']} green, {t['mixed']} "
            f"mixed, {t['async']} async, {t['other']} other\n"
        )


def _since(since: dict[str, Any], out: TextIO) -> None:
    progress = since["progress"]
    out.write(f"\nSince the baseline: progress {progress['before']:.0%} -> {progress['now']:.0%}\n")
    for change in since["moved"]:
        out.write(f"  {change['path']}: {change['before']} -> {change['now']}\n")
    for key, label in (("new_blocking", "new blocking call"), ("fixed_blocking", "fixed")):
        for item in since[key]:
            out.write(f"  {label}: {item}\n")
