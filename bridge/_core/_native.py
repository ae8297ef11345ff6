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

import functools
import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from eventlet import patcher

__all__ = ("ensure_native_asyncio", "install_hooks")

# The modules whose own references must stay native. concurrent.futures.thread
# is imported lazily by asyncio's first run_in_executor, possibly after the
# patch, so it is imported here first.
_PROTECTED_PREFIXES = ("asyncio", "concurrent.futures", "selectors")
_ALWAYS_IMPORT = ("concurrent.futures.thread",)

# How many modules eventlet had patched at the last sweep; -1: never swept.
_swept_patch_count = -1


# eventlet records a patch under the name of the option ("thread"), which
# covers several modules; these are the ones asyncio or its executor use.
_MODULES_OF_PATCH: dict[str, Callable[[], list[tuple[str, Any]]]] = {
    "os": patcher._green_os_modules,
    "select": patcher._green_select_modules,
    "socket": patcher._green_socket_modules,
    "thread": patcher._green_thread_modules,
    "time": patcher._green_time_modules,
    "subprocess": patcher._green_subprocess_modules,
}


def _patched_module_names() -> list[str]:
    names: list[str] = []
    for patch in patcher.already_patched:
        modules = _MODULES_OF_PATCH.get(patch)
        if modules is not None:
            names.extend(name for name, _ in modules() if name in sys.modules)
    return names


def _pristine_selectors() -> ModuleType:
    """eventlet's pristine ``selectors``, built on the pristine ``select``.

    ``patcher.original("selectors")`` imports a fresh copy with whatever
    ``select`` is in ``sys.modules``; after ``monkey_patch()`` that one lacks
    ``epoll``, so the copy's ``DefaultSelector`` is a ``SelectSelector``
    bound to green ``select``. Import it with the pristine ``select`` in place.
    """
    real_select = patcher.original("select")
    cached = sys.modules.get("__original_module_selectors")
    if cached is not None and getattr(cached, "select", None) is real_select:
        return cached
    sys.modules.pop("__original_module_selectors", None)
    saved = sys.modules.get("select")
    sys.modules["select"] = real_select
    try:
        selectors = patcher.original("selectors")
    finally:
        if saved is not None:
            sys.modules["select"] = saved
    selectors.select = real_select
    return selectors


def _original(name: str) -> ModuleType:
    return _pristine_selectors() if name == "selectors" else patcher.original(name)


def ensure_native_asyncio() -> None:
    """Point asyncio's module references at unpatched modules, if needed."""
    global _swept_patch_count
    count = len(patcher.already_patched)
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
    for name in {"select", "selectors", *_patched_module_names()}:
        module = sys.modules.get(name)
        if module is not None:
            patched[id(module)] = _original(name)
    if patched:
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


def _sweep_before(cls: type, name: str) -> None:
    """Make ``cls.name`` call :func:`ensure_native_asyncio` first. Idempotent."""
    original = getattr(cls, name)
    if hasattr(original, "__bridge_wrapped__"):
        return

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        ensure_native_asyncio()
        return original(self, *args, **kwargs)

    method.__bridge_wrapped__ = original  # type: ignore[attr-defined]
    setattr(cls, name, method)


def install_hooks() -> None:
    """Run :func:`ensure_native_asyncio` after ``eventlet.monkey_patch()``,
    before a selector event loop is constructed, and before a thread pool
    executor is made or given work (any loop's, uvloop's too). Idempotent.

    References to ``monkey_patch`` taken before this ran are not wrapped (a
    ``monkey_patch()`` call that is running when the hub is made, for one);
    the other hooks still sweep before a new loop or an executor thread
    exists.
    """
    import asyncio.selector_events
    import concurrent.futures

    import eventlet

    if not hasattr(patcher.monkey_patch, "__bridge_wrapped__"):
        patcher.monkey_patch = _after_monkey_patch(patcher.monkey_patch)
    eventlet.monkey_patch = patcher.monkey_patch
    _sweep_before(asyncio.selector_events.BaseSelectorEventLoop, "__init__")
    try:
        pool = concurrent.futures.ThreadPoolExecutor  # imports its module on first use
    except RuntimeError:
        return  # interpreter shutdown ("can't register atexit"): no executor runs now
    _sweep_before(pool, "__init__")
    _sweep_before(pool, "submit")
