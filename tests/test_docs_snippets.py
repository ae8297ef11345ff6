"""The parts of the example files that the docs show must stand on their own.

The example files run as tests (``docs/examples/*_example.py``); a page
shows a slice of one (``:lines:``). A slice that cuts a function in half, or
leaves out the imports its code needs, would not work when copied.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
INCLUDE = re.compile(r"```\{literalinclude\} (?P<path>\S+)\n(?P<options>(?::\w+:.*\n)*)")


def shown_slices() -> list[tuple[str, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for match in INCLUDE.finditer(page.read_text()):
            lines = (DOCS / match["path"]).read_text().splitlines()
            span = re.search(r":lines: (\d+)-(\d*)", match["options"])
            if span is not None:
                start, end = int(span[1]), int(span[2] or len(lines))
                lines = lines[start - 1 : end]
            found.append((f"{page.name}:{match['path']}", "\n".join(lines)))
    return found


@pytest.mark.parametrize(("where", "code"), shown_slices(), ids=lambda v: str(v)[:40])
def test_a_shown_slice_compiles_and_imports_what_it_uses(where: str, code: str) -> None:
    tree = ast.parse(code, where)  # a cut function would not parse
    imported = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    used_modules = {"asyncio", "eventlet", "bridge"} & {
        node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
    }
    assert used_modules <= imported, f"{where} uses {used_modules - imported} without importing"
