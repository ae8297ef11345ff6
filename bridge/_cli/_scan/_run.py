"""Running a scan: find the files, name the modules, parse, link, report.

Module names come from the file system as Python would import them: a file
is in a package while its directory has an ``__init__.py`` (also above the
scanned directory, so scanning ``nova/`` still names ``nova.compute.api``).
A directory without one (a namespace package, a scripts folder) names its
modules by their path from the scanned root.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from bridge._cli._scan._findings import blocking_calls, hub_selections, module_report
from bridge._cli._scan._graph import Project
from bridge._cli._scan._parse import ModuleFacts, parse
from bridge._cli._scan._plan import plan
from bridge._cli._scan._report import ModuleReport, ScanReport

TEST_DIRS = frozenset(("tests", "test", "unittests", "functional_tests"))


def python_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and d not in ("__pycache__", "node_modules")
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield Path(dirpath) / name


def is_test(rel: str) -> bool:
    parts = rel.replace(os.sep, "/").split("/")
    name = parts[-1]
    return (
        any(part in TEST_DIRS for part in parts[:-1])
        or name.startswith("test_")
        or name.endswith(("_test.py", "_tests.py"))
        or name == "conftest.py"
    )


class _Namer:
    """Dotted module names, with one ``__init__.py`` lookup per directory."""

    def __init__(self, root: Path) -> None:
        self.root = root if root.is_dir() else root.parent
        self._package: dict[Path, list[str] | None] = {}

    def package(self, directory: Path) -> list[str] | None:
        """The dotted parts of ``directory`` as a package, None if it is not one."""
        if directory in self._package:
            return self._package[directory]
        parts: list[str] | None = None
        if (directory / "__init__.py").is_file():
            parent = self.package(directory.parent) if directory.parent != directory else None
            parts = [*(parent or []), directory.name]
        self._package[directory] = parts
        return parts

    def name(self, path: Path) -> str:
        stem = [] if path.name == "__init__.py" else [path.stem]
        package = self.package(path.parent.absolute())
        if package is not None:
            return ".".join([*package, *stem])
        try:
            rel = path.parent.absolute().relative_to(self.root.absolute()).parts
        except ValueError:
            rel = ()
        return ".".join([*rel, *stem]) or path.stem


class Progress:
    """A one-line progress bar on a terminal (stderr): files scanned, then linking."""

    def __init__(self, out: TextIO | None, total: int) -> None:
        self.out = out
        self.total = total
        self.shown = -1.0
        self.last = 0.0

    def update(self, done: int) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        if done != self.total and now - self.last < 0.1:
            return
        self.last = now
        fraction = done / self.total if self.total else 1.0
        bar = "#" * int(fraction * 30)
        self.out.write(f"\rscanned {done}/{self.total} files [{bar:<30}] {fraction:4.0%}")
        self.out.flush()

    def note(self, text: str) -> None:
        """Say what runs after the files are parsed (following names, the plan)."""
        if self.out is not None and self.total:
            self.out.write(text)
            self.out.flush()

    def close(self, note: str = "") -> None:
        if self.out is not None and self.total:
            self.out.write(f"{note}\n")
            self.out.flush()


def scan(root: Path, progress: TextIO | None = None, patched: bool | None = None) -> ScanReport:
    """Scan every ``*.py`` under ``root``.

    :param progress: where to draw a progress bar (a terminal), or None.
    :param patched: count stdlib calls made green by ``monkey_patch()`` as
        green (None: when the tree uses eventlet itself).
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    facts: list[ModuleFacts] = []
    errors: list[tuple[str, str]] = []
    files = list(python_files(root))
    namer = _Namer(root)
    names: set[str] = set()
    bar = Progress(progress, len(files))
    collecting = gc.isenabled()
    gc.disable()  # ASTs are freed by reference counting; the collector only costs here
    try:
        for index, path in enumerate(files, 1):
            rel = str(path.relative_to(root)) if root.is_dir() else str(path)
            try:
                source = path.read_text(encoding="utf-8")
                name = namer.name(path)
                if name in names:  # two scripts of one name in folders that are not packages
                    name = rel.replace(os.sep, ".").removesuffix(".py")
                names.add(name)
                facts.append(parse(rel, name, source, is_test(rel)))
            except (OSError, UnicodeDecodeError) as exc:
                errors.append((rel, f"unreadable: {exc}"))
            except (SyntaxError, ValueError) as exc:
                line = getattr(exc, "lineno", None)
                errors.append((rel, f"syntax error, line {line}: {getattr(exc, 'msg', exc)}"))
            except RecursionError:
                errors.append((rel, "too deeply nested to parse"))
            bar.update(index)
    finally:
        if collecting:
            gc.enable()
    bar.note("; linking modules...")
    project = Project(facts)
    if patched is None:
        patched = any(f.uses for f in project.modules.values())
    reports: dict[str, ModuleReport] = {}
    blocking = []
    hub = []
    for name, module in project.modules.items():
        reports[name] = module_report(project, module, patched)
        blocking += blocking_calls(project, module)
        hub += hub_selections(project, module)
    order = plan(project, reports)
    modules = [reports[f.name] for f in facts if f.name in reports]
    bar.close(" done")
    return ScanReport(
        str(root),
        modules,
        errors,
        time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
        blocking=blocking,
        hub=hub,
        order=order,
        patched=patched,
    )
