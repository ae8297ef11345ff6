"""The layers hold: what each part of bridge may know of the others, checked from the source.

* asyncio's, eventlet's and greenlet's private names appear only in
  ``bridge/_core/_hooks/`` (its table says why each is needed);
* the core imports nothing from the layers above it (``bridge._errors`` aside);
* the layers above use the core only through ``bridge._core``'s exports, and
  never a hub's private attributes;
* no module is much over 400 lines (rooms a maintainer can find).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import bridge
from bridge import _core
from bridge._core import _hooks

PACKAGE = Path(bridge.__file__).parent
HOOKS_DIR = PACKAGE / "_core" / "_hooks"
FOREIGN_ROOTS = {"asyncio", "eventlet", "greenlet", "concurrent", "uvloop", "selectors"}
MAX_LINES = 420


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def foreign_private_names(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``(line, text)`` for each private name of asyncio, eventlet... a module touches."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[(alias.asname or alias.name).split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] not in FOREIGN_ROOTS:
                continue
            for alias in node.names:
                if alias.name.startswith("_") or any(p.startswith("_") for p in parts):
                    yield node.lineno, f"from {node.module} import {alias.name}"
                aliases[alias.asname or alias.name] = parts[0]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__"):
            continue
        base = node.value
        while isinstance(base, ast.Attribute):
            base = base.value
        if not (isinstance(base, ast.Name) and aliases.get(base.id) in FOREIGN_ROOTS):
            continue
        text = ast.unparse(node)
        if text.endswith(tuple(f"BaseHub.{n}" for n in _hooks.BASEHUB_CONTRACT)):
            continue  # eventlet's hub contract, listed in the hook table
        yield node.lineno, text


@pytest.mark.parametrize(
    "path",
    [p for p in modules() if HOOKS_DIR not in p.parents],
    ids=relative,
)
def test_only_the_hooks_touch_asyncios_and_eventlets_internals(path: Path) -> None:
    found = list(foreign_private_names(ast.parse(path.read_text())))
    assert not found, f"{relative(path)} reaches into internals (move it to _core/_hooks): {found}"


def test_the_hook_table_checks_out_here() -> None:
    _hooks.verify()
    assert all(hook.target and hook.why for hook in _hooks.HOOKS)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"{relative(path)}: relative import")
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


@pytest.mark.parametrize("path", sorted((PACKAGE / "_core").rglob("*.py")), ids=relative)
def test_the_core_imports_nothing_from_above_it(path: Path) -> None:
    above = [
        (line, name)
        for line, name in _imports(path)
        if name.startswith("bridge.") and not name.startswith(("bridge._core", "bridge._errors"))
    ]
    assert not above, f"{relative(path)} imports from the layers above the core: {above}"


def _hub_private_names() -> set[str]:
    names = {n for n in dir(_core.Hub) if n.startswith("_") and not n.startswith("__")}
    names |= {n for n in vars(_core.current_hub()) if n.startswith("_")}
    return names


UPPER = [p for p in modules() if PACKAGE / "_core" not in p.parents]


@pytest.mark.parametrize("path", UPPER, ids=relative)
def test_the_layers_above_use_only_the_cores_exports(path: Path) -> None:
    private = _hub_private_names()
    problems = [
        (line, name)
        for line, name in _imports(path)
        if name.startswith("bridge._core.")
        and name.split(".")[2].startswith("_")
        and name not in {f"bridge._core.{n}" for n in _core.__all__}
        # `import bridge` keeps asyncio native where eventlet is imported, without
        # importing (and hooking) the hub: the one module it may reach for.
        and (path.name, name) != ("__init__.py", "bridge._core._native")
    ]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in private:
            base = ast.unparse(node.value)
            if base.endswith("hub"):  # hub, self.hub, self._hub...
                problems.append((node.lineno, f"{base}.{node.attr}"))
    assert not problems, f"{relative(path)} uses the core's insides: {problems}"


@pytest.mark.parametrize("path", modules(), ids=relative)
def test_no_module_is_much_over_400_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{relative(path)} has {lines} lines: split it by mechanism"
