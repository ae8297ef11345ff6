"""Native locks and queues made before ``monkey_patch()``: "patch first", checked.

A ``threading.Lock()``, ``threading.RLock()`` or ``queue.Queue()`` created
at import time, before the entry point patches, stays a native object: a
greenthread that waits on it blocks the OS thread, so the hub and every
other greenthread stop until the holder, which can never run, lets go
(eventlet itself only warns about the RLocks it could not convert).

How they are found: the garbage collector lists every lock and queue object
of the process (lock objects are tracked by it since 3.11; the queues and
conditions that hold locks always are); the native ones are kept. Which of
them are the service's is told two ways. A module of the service holds it:
in a global, a class attribute, an attribute of an object or an item of a
container held there (two steps deep); it is then named by that path
(``svc.JOBS``, ``svc.Registry.lock``). Or, with ``--trace``, the doctor
starts ``tracemalloc`` before it imports the service, and the allocation
traceback names the line that made the object, wherever it is held now.
Tracing is opt-in: it makes importing eventlet and patching several times
slower.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
import types
from typing import Any

from bridge._cli._doctor._finding import Finding

# Classes that hold native locks when made before the patch: (module, name) -> shown as.
_HOLDERS = {
    ("queue", "Queue"): "queue.Queue",
    ("queue", "LifoQueue"): "queue.LifoQueue",
    ("queue", "PriorityQueue"): "queue.PriorityQueue",
    ("threading", "Condition"): "threading.Condition",
    ("threading", "Event"): "threading.Event",
    ("threading", "Semaphore"): "threading.Semaphore",
    ("threading", "BoundedSemaphore"): "threading.BoundedSemaphore",
}
_RANK = {"queue": 0, "threading.Event": 1, "threading.Condition": 2}  # bigger object first

FIX = (
    "create it after eventlet.monkey_patch(): patch first thing in the entry point, before "
    "importing the modules that make locks and queues at import time"
)


# Native lock types, by name: since 3.11 each copy of the _thread module (and
# eventlet keeps an original copy) has its own lock type objects.
_NATIVE = {("_thread", "lock"): "threading.Lock", ("_thread", "RLock"): "threading.RLock"}


def _made_in(obj: object, user_files: frozenset[str]) -> str | None:
    """``file:line`` of the service's code that made ``obj``, if tracemalloc saw it."""
    trace = tracemalloc.get_object_traceback(obj)
    if trace is None:
        return None
    for frame in reversed(trace):  # oldest first: the most recent user frame is the maker
        if frame.filename in user_files:
            return f"{frame.filename}:{frame.lineno}"
    return None


def _held(
    modules: list[tuple[str, Any]], interesting: dict[int, object]
) -> dict[int, tuple[str, object]]:
    """id -> (path, top object) from a module of the service, for the ``interesting`` ones.

    Walks globals, class attributes, container items and object attributes,
    three steps deep. The *top* object is what a person named: the global,
    the class attribute or the container item (``svc.READY``, a
    threading.Event, for the native lock inside its condition).
    """
    names: dict[int, tuple[str, object]] = {}
    seen: set[int] = set()
    own = {name for name, _ in modules}
    work: list[tuple[object, str, int, str, object]] = []
    for name, module in modules:
        for attr, value in list(vars(module).items()):
            work.append((value, f"{name}.{attr}", 0, f"{name}.{attr}", value))
    budget = 200_000  # objects visited at most: a large service's globals reach far
    while work and budget:
        value, path, depth, top_path, top = work.pop()
        budget -= 1
        if id(value) in seen or isinstance(value, (types.ModuleType, types.FunctionType)):
            continue
        seen.add(id(value))
        if id(value) in interesting:
            names.setdefault(id(value), (top_path, top))
            if value is top or depth > 1:
                continue  # a queue's own lock is the queue's business
        if depth >= 3:
            continue
        children: list[tuple[object, str]] = []
        if isinstance(value, type):
            if value.__module__ in own:
                children = [(v, f"{path}.{k}") for k, v in list(vars(value).items())]
        elif isinstance(value, dict):
            children = [(v, f"{path}[{k!r}]") for k, v in list(value.items())[:200]]
        elif isinstance(value, (list, tuple, set, frozenset)):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(list(value)[:200])]
        elif hasattr(value, "__dict__"):
            children = [(v, f"{path}.{k}") for k, v in list(vars(value).items())]
        # Items of a module-level class or container are what a person names.
        named = depth == 0 and isinstance(value, (type, dict, list, tuple, set, frozenset))
        for child, child_path in children:
            if named:
                work.append((child, child_path, depth + 1, child_path, child))
            else:
                work.append((child, child_path, depth + 1, top_path, top))
    return names


def native_locks(modules: list[tuple[str, Any]]) -> list[Finding]:
    """Native locks, RLocks and queues the service made before patching.

    :param modules: the service's modules (name, module), as ``_user_modules`` lists them.
    """
    from eventlet import patcher

    if not patcher.is_monkey_patched("thread"):
        return []  # thread=False has its own finding: every lock is native then
    current = {key: getattr(sys.modules.get(key[0]), key[1], None) for key in _HOLDERS}
    user_files = frozenset(
        file for _, module in modules if (file := getattr(module, "__file__", None))
    )
    gc.collect()  # the native RLocks that monkey_patch() replaced are garbage now
    candidates: dict[int, tuple[object, str]] = {}
    for obj in gc.get_objects():
        kind = type(obj)
        key = (getattr(kind, "__module__", ""), getattr(kind, "__qualname__", ""))
        what = _NATIVE.get(key)
        if what is None:
            if key not in _HOLDERS or current[key] is kind:
                continue
            what = _HOLDERS[key]
        candidates[id(obj)] = (obj, what)
    held = _held(modules, {key: obj for key, (obj, _) in candidates.items()})
    # site (file:line, or the path that holds it) -> (what, path or "")
    found: dict[str, tuple[str, str]] = {}
    for ident, (obj, what) in candidates.items():
        name, top = held.get(ident, ("", None))
        if top is not None and top is not obj:
            what = _describe(top, what)
        site = _made_in(obj, user_files) or name
        if not site:
            continue
        before = found.get(site)
        if before is None or _rank(what) < _rank(before[0]):
            found[site] = (what, name or (before[1] if before else ""))
    findings = []
    for site, (what, name) in sorted(found.items()):
        subject = f"{name} is a native {what}" if name else f"a native {what}"
        made = f" made at {site}" if site != name else ""
        findings.append(Finding(
            "warning",
            f"{subject}{made} before monkey_patch(): a greenthread that waits on it blocks "
            "the hub and every other greenthread",
            where=site,
            fix=FIX,
        ))  # fmt: skip
    return findings


def _describe(top: object, inner: str) -> str:
    """What a person made: ``threading.Event`` for the lock deep inside it."""
    kind = type(top)
    return f"{kind.__module__}.{kind.__qualname__} (holding a {inner})"


def _rank(what: str) -> int:
    if what.startswith("queue."):
        return 0
    return _RANK.get(what, 3)
