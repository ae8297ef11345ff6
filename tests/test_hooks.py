"""The fences around the hooks that could break silently.

``Hub.greenlet`` answers the dispatcher to eventlet's own "am I in the
mainloop?" questions and the anchor to everything else, by looking at the
calling function (``_hooks.asks_from_mainloop``). If a new eventlet release
added, removed or renamed such a question, nothing would fail by itself:
this test reads eventlet's source and fails with what to update.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import eventlet
import pytest

from bridge._core import _hooks
from bridge._core._hooks import _eventlet

# Every eventlet function that compares some hub's ``greenlet`` with the
# current greenlet, and what bridge makes of it: a non-blocking "mainloop"
# path (answered with the dispatcher), or a guard before a blocking call
# (answered with the anchor, so the call reaches the hub's clear error).
KNOWN = {
    "eventlet.queue:Waiter.switch": "question",
    "eventlet.queue:Waiter.throw": "question",
    "eventlet.queue:LightQueue.put": "question",
    "eventlet.queue:LightQueue.get": "question",
    "eventlet.greenthread:kill": "question",
    "eventlet.greenthread:sleep": "question (seconds <= 0 only)",
    "eventlet.hubs.__init__:trampoline": "guard",
    "eventlet.green.select:select": "guard",
}


def mainloop_comparisons() -> set[str]:
    root = Path(eventlet.__file__).parent
    found: set[str] = set()

    def visit(node: ast.AST, names: list[str], module: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, [*names, child.name], module)
                continue
            if isinstance(child, ast.Compare) and any(
                isinstance(op, (ast.Is, ast.IsNot)) for op in child.ops
            ):
                for part in (child.left, *child.comparators):
                    if (
                        isinstance(part, ast.Attribute)
                        and part.attr == "greenlet"
                        and "hub" in ast.unparse(part.value).lower()
                    ):
                        found.add(f"{module}:{'.'.join(names)}")
            visit(child, names, module)

    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        visit(ast.parse(path.read_text()), [], module)
    return found


def test_eventlets_mainloop_questions_are_the_ones_bridge_answers() -> None:
    found = mainloop_comparisons()
    assert found == set(KNOWN), (
        "eventlet's 'am I in the mainloop?' checks changed: classify each new one in KNOWN "
        "and, if it is a non-blocking mainloop path, add it to _hooks._eventlet."
        f"_MAINLOOP_QUESTIONS. New: {sorted(found - set(KNOWN))}; gone: "
        f"{sorted(set(KNOWN) - found)}"
    )


def _code(qualified: str) -> object:
    module, name = qualified.split(":")
    obj: object = importlib.import_module(module.removesuffix(".__init__"))
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj.__code__  # type: ignore[attr-defined]


@pytest.mark.parametrize("qualified", sorted(KNOWN))
def test_each_question_is_answered_and_each_guard_is_not(qualified: str) -> None:
    answered = _code(qualified) in _eventlet._MAINLOOP_QUESTIONS or (
        _code(qualified) is _eventlet._SLEEP_CODE
    )
    assert answered == KNOWN[qualified].startswith("question")


def test_the_hook_table_names_every_patched_target() -> None:
    targets = " ".join(hook.target for hook in _hooks.HOOKS)
    for name in ("_set_running_loop", "_enter_task", "_ready", "monkey_patch", "corolocal"):
        assert name in targets
