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
the last sweep. bridge calls it before it creates or joins a loop, after
every ``eventlet.monkey_patch()``, and before a thread pool executor is
made or given work (see :func:`install_hooks`).
"""

from __future__ import annotations

import importlib
import sys

from bridge._core import _hooks

__all__ = ("ensure_native_asyncio", "install_hooks")

# The modules whose own references must stay native. concurrent.futures.thread
# is imported lazily by asyncio's first run_in_executor, possibly after the
# patch, so it is imported here first.
_PROTECTED_PREFIXES = ("asyncio", "concurrent.futures", "selectors")
_ALWAYS_IMPORT = ("concurrent.futures.thread",)

# How many patches eventlet had applied at the last sweep; -1: never swept.
_swept_patch_count = -1


def ensure_native_asyncio() -> None:
    """Point asyncio's module references at unpatched modules, if needed."""
    global _swept_patch_count
    count = _hooks.patch_count()
    if count == _swept_patch_count:
        return
    for name in _ALWAYS_IMPORT:
        try:
            importlib.import_module(name)
        except RuntimeError:
            pass  # interpreter shutdown: nothing will run in an executor now
    patched = {}
    # select/selectors are swapped even unpatched (copies of them are
    # harmless), so the loop's selector never depends on patch order.
    for name in {"select", "selectors", *_hooks.patched_module_names()}:
        module = sys.modules.get(name)
        if module is not None:
            patched[id(module)] = _hooks.original_module(name)
    if patched:
        for modname, module in list(sys.modules.items()):
            if module is None or not modname.startswith(_PROTECTED_PREFIXES):
                continue
            for attr, value in list(vars(module).items()):
                replacement = patched.get(id(value))
                if replacement is not None and replacement is not module:
                    setattr(module, attr, replacement)
    _swept_patch_count = count


def install_hooks() -> None:
    """Sweep after ``eventlet.monkey_patch()``, before a selector loop is made, and
    before a thread pool executor is made or given work (``_hooks``). Idempotent."""
    _hooks.install_native_hooks(ensure_native_asyncio)
