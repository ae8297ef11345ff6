"""``python -m bridge scan PATH``: which modules still use which eventlet APIs.

A static scan: every ``*.py`` file under PATH is parsed (``ast``), nothing is
imported or run. For each module it lists the eventlet APIs used (through
``import eventlet``, ``from eventlet import ...``, ``eventlet.green.*``...),
each with its asyncio replacement and the bridge adapter to use meanwhile,
and gives the module a status:

* ``green``: uses eventlet and has no async code;
* ``mixed``: uses eventlet and has async code (``async def``, asyncio);
* ``async``: has async code and no eventlet;
* ``other``: neither (not counted in the progress).

Progress = async / (green + mixed + async). Files that cannot be read or
parsed are reported and skipped, never fatal.
"""

from __future__ import annotations

import ast
import dataclasses
import html
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

__all__ = ("REPLACEMENTS", "ModuleReport", "ScanReport", "scan", "write_html", "write_text")

# API -> (asyncio replacement, what to use during the migration)
REPLACEMENTS: dict[str, tuple[str, str]] = {
    "spawn": ("asyncio.create_task / TaskGroup.create_task", "bridge.spawn_async (green side)"),
    "spawn_n": ("asyncio.create_task", "bridge.spawn_async (green side)"),
    "spawn_after": ("loop.call_later + create_task", "keep; hub timers run on the loop"),
    "sleep": ("await asyncio.sleep()", "bridge.to_async / @bridge.portal"),
    "GreenPool": ("asyncio.TaskGroup + asyncio.Semaphore", "bridge.to_async per call"),
    "GreenPile": ("asyncio.gather / TaskGroup", "bridge.to_async per call"),
    "Event": ("asyncio.Event / Future", "bridge.Event (.green face for legacy code)"),
    "Queue": ("asyncio.Queue", "bridge.Queue (.green face for legacy code)"),
    "LightQueue": ("asyncio.Queue", "bridge.Queue"),
    "LifoQueue": ("asyncio.LifoQueue", "bridge.Queue"),
    "PriorityQueue": ("asyncio.PriorityQueue", "bridge.Queue"),
    "Semaphore": ("asyncio.Semaphore", "bridge.Semaphore (.green face)"),
    "BoundedSemaphore": ("asyncio.BoundedSemaphore", "bridge.Semaphore"),
    "Lock": ("asyncio.Lock", "bridge.Lock (.green face)"),
    "Timeout": ("asyncio.timeout()", "eventlet.Timeout works around bridge.await_"),
    "with_timeout": ("asyncio.wait_for()", "eventlet.Timeout works around bridge.await_"),
    "tpool": ("asyncio.to_thread / loop.run_in_executor", "bridge.from_thread for callbacks"),
    "wsgi": ("an asyncio HTTP server (aiohttp, an ASGI server)", "eventlet.wsgi on bridge.hub"),
    "monkey_patch": (
        "nothing: drop it when no module needs green stdlib",
        "keep it; bridge keeps asyncio native",
    ),
    "green": ("asyncio streams, aiohttp, asyncio subprocess", "keep; runs on the same loop"),
    "getcurrent": ("asyncio.current_task()", "green code: unchanged"),
    "corolocal": ("contextvars.ContextVar", "contextvars cross bridge's adapters"),
    "backdoor": ("python -m asyncio, aiomonitor", "bind it to 127.0.0.1 only"),
    "listen": ("asyncio.start_server", "unchanged on bridge.hub"),
    "connect": ("asyncio.open_connection", "unchanged on bridge.hub"),
    "serve": ("asyncio.start_server", "unchanged on bridge.hub"),
    "wrap_ssl": ("asyncio streams with ssl=", "unchanged on bridge.hub"),
    "hubs": ("the asyncio loop's API", "EVENTLET_HUB=bridge.hub"),
    "spawn_for_awaitable": ("await the coroutine", "bridge.await_"),
    "kill": ("task.cancel()", "bridge.TaskHandle.kill for tasks"),
    "debug": ("asyncio debug mode; bridge.detect_blocking", "bridge.detect_blocking"),
}
_OTHER = ("see the asyncio documentation", "bridge.to_async / bridge.await_")

# eventlet module (after "eventlet.") -> the API key it stands for.
_MODULE_API = {
    "greenpool": "GreenPool",
    "queue": "Queue",
    "event": "Event",
    "semaphore": "Semaphore",
    "timeout": "Timeout",
    "tpool": "tpool",
    "wsgi": "wsgi",
    "corolocal": "corolocal",
    "backdoor": "backdoor",
    "hubs": "hubs",
    "green": "green",
    "debug": "debug",
    "greenthread": "spawn",
    "lock": "Lock",
    "patcher": "monkey_patch",
    "asyncio": "spawn_for_awaitable",
}


@dataclasses.dataclass
class ModuleReport:
    """One module's findings. ``uses``: API -> line numbers."""

    path: str
    lines: int
    status: str
    uses: dict[str, list[int]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ScanReport:
    root: str
    modules: list[ModuleReport]
    errors: list[tuple[str, str]]
    seconds: float

    @property
    def lines(self) -> int:
        return sum(m.lines for m in self.modules)

    def counts(self) -> Counter[str]:
        return Counter(m.status for m in self.modules)

    def progress(self) -> float:
        c = self.counts()
        counted = c["green"] + c["mixed"] + c["async"]
        return c["async"] / counted if counted else 1.0

    def totals(self) -> dict[str, float]:
        c = self.counts()
        return {
            "modules": len(self.modules),
            "lines": self.lines,
            "green": c["green"],
            "mixed": c["mixed"],
            "async": c["async"],
            "other": c["other"],
            "progress": round(self.progress(), 4),
            "seconds": round(self.seconds, 3),
        }

    def apis(self) -> list[tuple[str, int, str, str]]:
        """(API, modules using it, asyncio replacement, meanwhile), most used first."""
        used = Counter(api for m in self.modules for api in m.uses)
        return [(api, n, *REPLACEMENTS.get(api, _OTHER)) for api, n in used.most_common()]

    def to_json(self) -> dict[str, object]:
        return {
            "root": self.root,
            "totals": self.totals(),
            "apis": {
                api: {"modules": n, "asyncio": asyncio_way, "meanwhile": meanwhile}
                for api, n, asyncio_way, meanwhile in self.apis()
            },
            "modules": [dataclasses.asdict(m) for m in self.modules if m.status != "other"],
            "errors": [{"path": p, "error": e} for p, e in self.errors],
        }


class _Visitor(ast.NodeVisitor):
    """Collects eventlet API uses and whether the module has async code."""

    def __init__(self) -> None:
        self.uses: dict[str, list[int]] = {}
        self.is_async = False
        self.eventlet_names: dict[str, str] = {}  # local name -> API key or "" (the package)

    def use(self, api: str, line: int) -> None:
        self.uses.setdefault(api, []).append(line)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == "eventlet":
                api = _MODULE_API.get(parts[1], parts[1]) if len(parts) > 1 else ""
                if api:
                    self.use(api, node.lineno)
                self.eventlet_names[alias.asname or parts[0]] = api if alias.asname else ""
            elif parts[0] in ("asyncio", "aiohttp", "anyio", "trio"):
                self.is_async = True

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        parts = module.split(".")
        if parts[0] == "eventlet":
            for alias in node.names:
                if len(parts) > 1:
                    api = _MODULE_API.get(parts[1], parts[1])
                    if parts[1] == "green":
                        api = "green"
                    elif alias.name in REPLACEMENTS:
                        api = alias.name
                else:
                    api = _MODULE_API.get(alias.name, alias.name)
                self.use(api, node.lineno)
                self.eventlet_names[alias.asname or alias.name] = api
        elif parts[0] in ("asyncio", "aiohttp", "anyio", "trio"):
            self.is_async = True

    def visit_Attribute(self, node: ast.Attribute) -> None:
        # eventlet.spawn(...), eventlet.green.socket, eventlet.queue.Queue
        chain = []
        value: ast.AST = node
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in self.eventlet_names:
            chain.reverse()
            if self.eventlet_names[value.id] == "":
                head = chain[0]
                api = head if head in REPLACEMENTS else _MODULE_API.get(head, head)
                if head in _MODULE_API and len(chain) > 1 and chain[1] in REPLACEMENTS:
                    api = chain[1]
                self.use(api, node.lineno)
            return  # the whole chain is counted once
        self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.is_async = True
        self.generic_visit(node)


def _status(uses: dict[str, list[int]], is_async: bool) -> str:
    if uses:
        return "mixed" if is_async else "green"
    return "async" if is_async else "other"


def scan_source(path: str, source: str) -> ModuleReport:
    tree = ast.parse(source, filename=path)
    visitor = _Visitor()
    visitor.visit(tree)
    uses = {api: sorted(set(lines)) for api, lines in sorted(visitor.uses.items())}
    return ModuleReport(path, source.count("\n") + 1, _status(uses, visitor.is_async), uses)


def _python_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield Path(dirpath) / name


def scan(root: Path, progress: TextIO | None = None) -> ScanReport:
    """Scan every ``*.py`` under ``root``; report progress on ``progress`` if given."""
    started = time.perf_counter()
    modules: list[ModuleReport] = []
    errors: list[tuple[str, str]] = []
    files = list(_python_files(root))
    for index, path in enumerate(files, 1):
        rel = str(path.relative_to(root)) if root.is_dir() else str(path)
        try:
            source = path.read_text(encoding="utf-8")
            modules.append(scan_source(rel, source))
        except (OSError, UnicodeDecodeError) as exc:
            errors.append((rel, f"unreadable: {exc}"))
        except SyntaxError as exc:
            errors.append((rel, f"syntax error, line {exc.lineno}: {exc.msg}"))
        if progress is not None and (index % 200 == 0 or index == len(files)):
            progress.write(f"\rscanned {index}/{len(files)} files")
            progress.flush()
    if progress is not None and files:
        progress.write("\n")
    return ScanReport(str(root), modules, errors, time.perf_counter() - started)


def write_text(report: ScanReport, out: TextIO) -> None:
    totals = report.totals()
    out.write(f"eventlet migration scan of {report.root}\n\n")
    for m in report.modules:
        if m.status == "other":
            continue
        out.write(f"{m.path}  [{m.status}]\n")
        for api, lines in m.uses.items():
            asyncio_way, meanwhile = REPLACEMENTS.get(api, _OTHER)
            shown = ", ".join(map(str, lines[:8])) + (", ..." if len(lines) > 8 else "")
            out.write(f"    {api} (line {shown}): asyncio: {asyncio_way}; meanwhile: {meanwhile}\n")
    for path, error in report.errors:
        out.write(f"{path}  [skipped] {error}\n")
    out.write(
        f"\n{totals['modules']} modules, {totals['lines']} lines: {totals['green']} green, "
        f"{totals['mixed']} mixed, {totals['async']} async, {totals['other']} other; "
        f"progress {report.progress():.0%} ({report.seconds:.2f} s)\n"
    )


def write_html(report: ScanReport, out: TextIO) -> None:
    """One self-contained page: a progress bar and a table a team can share."""
    totals = report.totals()
    pct = report.progress() * 100
    rows = []
    for m in report.modules:
        if m.status == "other":
            continue
        apis = ", ".join(html.escape(api) for api in m.uses) or "-"
        rows.append(
            f"<tr class='{m.status}'><td>{html.escape(m.path)}</td><td>{m.status}</td>"
            f"<td>{apis}</td></tr>"
        )
    replacements = "".join(
        f"<tr><td>{html.escape(api)}</td><td>{n}</td><td>{html.escape(asyncio_way)}</td>"
        f"<td>{html.escape(meanwhile)}</td></tr>"
        for api, n, asyncio_way, meanwhile in report.apis()
    )
    out.write(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Migration progress: {html.escape(report.root)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
        ".bar{background:#eee;width:40em;height:1.4em}.fill{background:#3a7;height:100%}"
        "tr.green td:nth-child(2){color:#a50}tr.mixed td:nth-child(2){color:#37a}"
        "tr.async td:nth-child(2){color:#3a7}</style></head><body>"
        f"<h1>Migration progress: {html.escape(report.root)}</h1>"
        f"<div class='bar'><div class='fill' style='width:{pct:.1f}%'></div></div>"
        f"<p>{pct:.0f}% async: {totals['async']:.0f} async, {totals['mixed']:.0f} mixed, "
        f"{totals['green']:.0f} green modules ({totals['lines']:.0f} lines scanned).</p>"
        "<h2>APIs to replace</h2><table><tr><th>eventlet API</th><th>modules</th>"
        f"<th>asyncio replacement</th><th>meanwhile</th></tr>{replacements}</table>"
        "<h2>Modules</h2><table><tr><th>module</th><th>status</th><th>eventlet APIs</th></tr>"
        f"{''.join(rows)}</table></body></html>\n"
    )


def main(args: list[str], out: TextIO = sys.stdout) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bridge scan", description=__doc__.split("\n")[0]
    )
    parser.add_argument("path", type=Path, help="a source tree or a .py file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write an HTML page")
    options = parser.parse_args(args)
    if not options.path.exists():
        parser.error(f"{options.path}: no such file or directory")
    progress = sys.stderr if sys.stderr.isatty() else None
    report = scan(options.path, progress)
    if options.json:
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        write_text(report, out)
    if options.html is not None:
        with options.html.open("w", encoding="utf-8") as page:
            write_html(report, page)
    return 0
