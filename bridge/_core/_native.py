"""Keep asyncio's own machinery on the real, unpatched standard library.

``eventlet.monkey_patch()`` rewrites ``socket``, ``select``, ``selectors``,
``threading``, ``os``... *in place*: every module that did ``import socket``
before the patch now sees green sockets. asyncio must not: its selector has
to be a real ``epoll``, its self-pipe a real socketpair, its default
executor real OS threads, or the loop ends up blocking on itself.

So every module of asyncio and ``concurrent.futures`` that holds a reference
to a patched module is pointed at eventlet's pristine copy of it
(``eventlet.patcher.original``). This has to happen *after* each
``monkey_patch()`` call, whichever order the imports came in, so
:func:`ensure_native_asyncio` is cheap to call when nothing changed: it
compares the number of modules eventlet has patched with the number seen at
the last sweep. bridge calls it before it creates or joins a loop, and after
every ``eventlet.monkey_patch()`` (see :func:`install_monkey_patch_hook`).
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from typing import Any

from eventlet import patcher

__all__ = ("ensure_native_asyncio", "install_monkey_patch_hook")

# The modules whose own references must stay native. concurrent.futures.thread
# is imported lazily by asyncio's first run_in_executor, possibly after the
# patch, so it is imported here first.
_PROTECTED_PREFIXES = ("asyncio", "concurrent.futures", "selectors")
_ALWAYS_IMPORT = ("concurrent.futures.thread",)

# How many modules eventlet had patched at the last sweep; -1: never swept.
_swept_patch_count = -1


def _patched_module_names() -> list[str]:
    names = [name for name in patcher.already_patched if name in sys.modules]
    # eventlet records "thread" for the _thread/threading pair and patches
    # select and selectors together; look at every module it can touch.
    for name in ("_thread", "threading", "select", "selectors", "socket", "os", "time", "queue"):
        if name in sys.modules and patcher.is_monkey_patched(name) and name not in names:
            names.append(name)
    return names


def ensure_native_asyncio() -> None:
    """Point asyncio's module references at unpatched modules, if needed."""
    global _swept_patch_count
    count = len(patcher.already_patched)
    if count == _swept_patch_count:
        return
    for name in _ALWAYS_IMPORT:
        importlib.import_module(name)
    patched = {}
    for name in _patched_module_names():
        module = sys.modules.get(name)
        if module is not None:
            patched[id(module)] = patcher.original(name)
    if patched:
        # The pristine selectors must build on the pristine select, or
        # DefaultSelector would be eventlet's green SelectSelector.
        patcher.original("selectors").select = patcher.original("select")
        for modname, module in list(sys.modules.items()):
            if module is None or not modname.startswith(_PROTECTED_PREFIXES):
                continue
            for attr, value in list(vars(module).items()):
                replacement = patched.get(id(value))
                if replacement is not None and replacement is not module:
                    setattr(module, attr, replacement)
    _swept_patch_count = count


def _after_monkey_patch(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def monkey_patch(**on: Any) -> Any:
        result = original(**on)
        ensure_native_asyncio()
        return result

    monkey_patch.__bridge_wrapped__ = original  # type: ignore[attr-defined]
    return monkey_patch


def install_monkey_patch_hook() -> None:
    """Make ``eventlet.monkey_patch()`` re-run :func:`ensure_native_asyncio`.

    Idempotent. References to ``monkey_patch`` taken before this ran are not
    wrapped; the hub still sweeps before it creates or joins a loop.
    """
    import eventlet

    if not hasattr(patcher.monkey_patch, "__bridge_wrapped__"):
        patcher.monkey_patch = _after_monkey_patch(patcher.monkey_patch)
    eventlet.monkey_patch = patcher.monkey_patch
