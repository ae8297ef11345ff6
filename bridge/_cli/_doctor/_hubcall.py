"""Who chose eventlet's hub: the call of ``eventlet.hubs.use_hub(...)`` that won.

``EVENTLET_HUB=bridge.hub`` only sets the default; a service that calls
``eventlet.hubs.use_hub("poll")`` (or ``use_hub(utils.get_hub())``) in its
entry point overrides it, silently. Before importing the service, the doctor
installs an import hook that wraps ``use_hub`` as soon as ``eventlet.hubs``
is imported (importing it itself would import asyncio early and blur what
the service imported), and records each call with an argument and its
caller's line. When the hub was chosen before the hook (the doctor run
without ``--import``), the user modules' sources are scanned for the call
instead, with the scanner's parser.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

__all__ = ("calls", "install", "static_calls")

# (file:line of the caller, the hub argument shown), in call order.
_calls: list[tuple[str, str]] = []


def calls() -> list[tuple[str, str]]:
    return list(_calls)


def _wrap(hubs: types.ModuleType) -> None:
    original = hubs.use_hub
    if getattr(original, "_bridge_doctor", False):
        return

    @functools.wraps(original)
    def use_hub(mod: Any = None) -> Any:
        if mod is not None:
            caller = sys._getframe(1)
            shown = mod if isinstance(mod, str) else getattr(mod, "__name__", repr(mod))
            _calls.append((f"{caller.f_code.co_filename}:{caller.f_lineno}", repr(shown)))
        return original(mod)

    use_hub._bridge_doctor = True  # type: ignore[attr-defined]
    hubs.use_hub = use_hub  # type: ignore[attr-defined]


class _Hook(importlib.abc.MetaPathFinder):
    """Wraps ``use_hub`` right after ``eventlet.hubs`` is executed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "eventlet.hubs":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            execute(module)
            _wrap(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Record ``use_hub`` calls from now on (call before importing the service)."""
    if "eventlet.hubs" in sys.modules:
        _wrap(sys.modules["eventlet.hubs"])
    elif not any(isinstance(finder, _Hook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Hook())


def static_calls(files: list[str]) -> list[tuple[str, str]]:
    """``use_hub(...)`` calls with an argument in these source files (path:line, code)."""
    from bridge._cli._scan._parse import parse

    found = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as source:
                facts = parse(path, "", source.read(), False)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue
        found += [(f"{path}:{line}", code) for line, code, _helper in facts.hub_calls]
    return found
