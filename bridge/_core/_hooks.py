"""Every hook into asyncio's and eventlet's internals: the one place that knows them.

bridge runs eventlet's scheduler on asyncio's loop, so it has to reach a few
things neither project promises to keep: asyncio's running-loop and
current-task bookkeeping, the stdlib loop's ready queue, eventlet's patch
bookkeeping and a handful of eventlet functions. Each is listed in
:data:`HOOKS` with what it is, why bridge needs it, and a check that the
thing still looks as bridge expects. :func:`verify` runs the checks when the
hub is first imported: a Python, asyncio or eventlet release that changed
one fails there, with :exc:`HookError` naming the hook and the versions
bridge was checked on, instead of misbehaving later. Nothing else in bridge
touches these internals: the rooms of ``bridge._core`` call the functions
below, and ``tests/test_hooks.py`` checks that the rest of bridge does not
name them.

Installing is idempotent and leaves asyncio and eventlet as they were for
code that does not use bridge's hub (the wrappers pass through).
"""

from __future__ import annotations

import asyncio
import asyncio.events
import asyncio.selector_events
import asyncio.tasks
import dataclasses
import functools
import os
import sys
import types
from collections.abc import Callable
from typing import Any

import eventlet.debug
import eventlet.greenthread
import eventlet.queue
from eventlet import patcher
from eventlet.greenio import base as greenio_base
from eventlet.greenio import py3 as greenio_py3
from eventlet.hubs import _threadlocal
from eventlet.hubs import hub as eventlet_base_hub

__all__ = (
    "CHECKED_ON",
    "HOOKS",
    "Hook",
    "HookError",
    "asks_from_mainloop",
    "current_task",
    "enter_task",
    "get_running_loop",
    "install_eventlet_patches",
    "install_fork_hooks",
    "install_native_hooks",
    "install_running_loop_hooks",
    "leave_task",
    "original_module",
    "patch_count",
    "patched_module_names",
    "set_running_loop",
    "step_now",
    "thread_hub",
    "track_greenthreads",
    "verify",
)

CHECKED_ON = "CPython 3.10-3.13, eventlet 0.40-0.41.3, uvloop 0.19-0.23"


class HookError(ImportError):
    """An internal of asyncio or eventlet that bridge hooks into is not as expected."""


@dataclasses.dataclass(frozen=True)
class Hook:
    """One internal that bridge reads or patches.

    :ivar target: what, by its dotted name.
    :ivar why: what bridge does with it, and what breaks without it.
    :ivar present: True when the target still looks as bridge expects.
    """

    target: str
    why: str
    present: Callable[[], bool]


def _has(obj: object, *names: str) -> bool:
    return all(hasattr(obj, name) for name in names)


def _code_has_local(fn: Callable[..., Any], name: str) -> bool:
    return name in fn.__code__.co_varnames


# -- the table -------------------------------------------------------------------

_PATCH_KINDS = ("os", "select", "socket", "thread", "time", "subprocess")

HOOKS: tuple[Hook, ...] = (
    Hook(
        "asyncio.events._set_running_loop",
        "Wrapped: the hub learns at once when a loop starts or stops in its thread, and "
        "moves its timers and fds there (owner <-> guest mode).",
        lambda: callable(getattr(asyncio.events, "_set_running_loop", None)),
    ),
    Hook(
        "asyncio.events._get_running_loop",
        "Wrapped: asked from green main while the hub's owner loop is the running one, it "
        "steps that loop aside, so that green main may call asyncio.run().",
        lambda: callable(getattr(asyncio.events, "_get_running_loop", None)),
    ),
    Hook(
        "asyncio.tasks._enter_task, _leave_task",
        "A greenthread woken from inside a task's last step runs outside that task, as after "
        "a done-callback (await_).",
        lambda: _has(asyncio.tasks, "_enter_task", "_leave_task"),
    ),
    Hook(
        "asyncio.tasks._current_tasks (before 3.14)",
        "The current task without a Python frame (asyncio.current_task costs one on 3.11).",
        lambda: sys.version_info >= (3, 14) or isinstance(asyncio.tasks._current_tasks, dict),  # type: ignore[attr-defined]
    ),
    Hook(
        "asyncio.BaseEventLoop._ready, Handle._callback, Handle._run (3.10, 3.11)",
        "await_ takes a new task's first step back from the stdlib loop's ready queue and "
        "runs it at once (3.12+ has eager_start for that).",
        lambda: sys.version_info >= (3, 12) or _has(asyncio.Handle, "_run", "_callback"),
    ),
    Hook(
        "asyncio.selector_events.BaseSelectorEventLoop.__init__",
        "Wrapped: asyncio's modules are pointed at the unpatched standard library before a "
        "selector loop is made (its selector must be a real epoll).",
        lambda: _has(asyncio.selector_events.BaseSelectorEventLoop, "__init__"),
    ),
    Hook(
        "concurrent.futures.ThreadPoolExecutor.__init__, submit",
        "Wrapped the same way: an executor's threads must be real OS threads, whatever "
        "monkey_patch() did meanwhile (uvloop's default executor included).",
        lambda: True,  # checked when installed: the module may not load at shutdown
    ),
    Hook(
        "eventlet.patcher.monkey_patch, already_patched, _green_{os,select,socket,thread,"
        "time,subprocess}_modules, its cache of originals in sys.modules",
        "monkey_patch() is wrapped to keep asyncio native after every patch; the bookkeeping "
        "tells which modules it replaced.",
        lambda: (
            _has(patcher, "monkey_patch", "already_patched", "original")
            and all(hasattr(patcher, f"_green_{kind}_modules") for kind in _PATCH_KINDS)
        ),
    ),
    Hook(
        "eventlet.debug.hub_prevent_multiple_readers, eventlet.hubs.hub.g_prevent_multiple_readers",
        "Replaced: eventlet refuses several readers of one fd on any asyncio-based hub; "
        "bridge's serves them.",
        lambda: (
            _has(eventlet.debug, "hub_prevent_multiple_readers")
            and _has(eventlet_base_hub, "g_prevent_multiple_readers")
        ),
    ),
    Hook(
        "eventlet.greenio.base.GreenSocket.close (set per instance), .fd",
        "Routed through bridge: waiters of an fd that green code closes are woken with "
        "IOClosed (the kernel drops a closed fd from epoll silently).",
        lambda: _has(greenio_base.GreenSocket, "_mark_as_closed"),
    ),
    Hook(
        "eventlet.greenio.py3.GreenFileIO.close, _closed, _fileno",
        "Wrapped: only the close that closed a green pipe wakes its waiters (eventlet's "
        "notify_close comes on every close, when the number may be another file's).",
        lambda: (
            _code_has_local(greenio_py3.GreenFileIO.close, "self")
            and "_closed" in greenio_py3.GreenFileIO.close.__code__.co_names
        ),
    ),
    Hook(
        "the code of eventlet.queue.Waiter.switch/throw, LightQueue.put/get, "
        "greenthread.kill, greenthread.sleep and its 'seconds'",
        "hub.greenlet answers the dispatcher to these 'am I in the mainloop?' questions, "
        "and the anchor to every other caller (see asks_from_mainloop).",
        lambda: _code_has_local(eventlet.greenthread.sleep, "seconds"),
    ),
    Hook(
        "eventlet.hubs._threadlocal.hub",
        "This thread's hub, without making one (hooks that run in any thread).",
        lambda: _threadlocal is not None,
    ),
    Hook(
        "eventlet.greenthread.GreenThread.__init__",
        "Wrapped while the pytest plugin's leak check watches a test.",
        lambda: _code_has_local(eventlet.greenthread.GreenThread.__init__, "parent"),
    ),
    Hook(
        "eventlet.hubs.hub.BaseHub: listeners, secondaries, timers, next_timers, closed, "
        "timers_canceled, add, remove, _obsolete, remove_descriptor, prepare_timers, close_one",
        "bridge.hub.Hub is a subclass of eventlet's asyncio hub and keeps its contract.",
        lambda: _has(
            eventlet_base_hub.BaseHub,
            "add",
            "remove",
            "_obsolete",
            "remove_descriptor",
            "prepare_timers",
            "close_one",
            "add_timer",
            "timer_canceled",
        ),
    ),
)


def verify() -> None:
    """Check every hook's target.

    :raises HookError: one is missing or changed: this Python, asyncio or
        eventlet is newer than bridge knows (the message names it).
    """
    for hook in HOOKS:
        try:
            ok = hook.present()
        except Exception:
            ok = False
        if not ok:
            raise HookError(
                f"bridge cannot run with this Python/eventlet: {hook.target} is not as "
                f"expected (Python {sys.version.split()[0]}, eventlet "
                f"{getattr(eventlet, '__version__', '?')}; bridge was checked on {CHECKED_ON}). "
                f"bridge needs it because: {hook.why} Please report it, with these versions."
            )


# -- asyncio's running loop ------------------------------------------------------

# The unwrapped functions: the hub's own clear/restore must not look like a
# loop starting or stopping.
get_running_loop: Callable[[], asyncio.AbstractEventLoop | None] = getattr(
    asyncio.events._get_running_loop, "__bridge_wrapped__", asyncio.events._get_running_loop
)
set_running_loop: Callable[[asyncio.AbstractEventLoop | None], None] = getattr(
    asyncio.events._set_running_loop, "__bridge_wrapped__", asyncio.events._set_running_loop
)


def install_running_loop_hooks(
    setter: Callable[[asyncio.AbstractEventLoop | None], None],
    getter: Callable[[], asyncio.AbstractEventLoop | None],
) -> None:
    """Make ``setter``/``getter`` asyncio's ``_set_running_loop``/``_get_running_loop``.

    They must call :data:`set_running_loop`/:data:`get_running_loop`.
    Installed once per process.
    """
    if hasattr(asyncio.events._set_running_loop, "__bridge_wrapped__"):
        return
    setter.__bridge_wrapped__ = set_running_loop  # type: ignore[attr-defined]
    getter.__bridge_wrapped__ = get_running_loop  # type: ignore[attr-defined]
    asyncio.events._set_running_loop = setter
    asyncio._set_running_loop = setter
    asyncio.events._get_running_loop = getter
    asyncio._get_running_loop = getter


def install_fork_hooks(
    before: Callable[[], None],
    after_in_parent: Callable[[], None],
    after_in_child: Callable[[], None],
) -> None:
    """Register fork hooks; after asyncio's (imported above), so that ours run first
    before a fork and after asyncio's in the child. Call once per process."""
    os.register_at_fork(
        before=before, after_in_parent=after_in_parent, after_in_child=after_in_child
    )


# -- asyncio's tasks ---------------------------------------------------------------

# asyncio's bookkeeping of the task whose step runs (C-accelerated, 3.7-3.13).
enter_task: Callable[[asyncio.AbstractEventLoop, asyncio.Task[Any]], None] = (
    asyncio.tasks._enter_task
)
leave_task: Callable[[asyncio.AbstractEventLoop, asyncio.Task[Any]], None] = (
    asyncio.tasks._leave_task
)
# asyncio.current_task(loop), without its Python frame on 3.11. From 3.14 on
# the C implementation keeps the current task elsewhere than this dict.
current_task: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]
if sys.version_info < (3, 14):
    current_task = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]
else:
    current_task = asyncio.current_task


def step_now(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    """Run ``task``'s first step now, if the stdlib loop has just queued it (3.10, 3.11).

    Other loops (uvloop) keep their ready queue out of reach: the step then
    waits for the loop.
    """
    ready = getattr(loop, "_ready", None)
    if ready and isinstance(loop, asyncio.BaseEventLoop):
        handle = ready[-1]
        if getattr(handle._callback, "__self__", None) is task:
            ready.pop()
            handle._run()


# -- the unpatched standard library for asyncio --------------------------------------


def original_module(name: str) -> types.ModuleType:
    """eventlet's pristine copy of module ``name``; ``selectors`` built on pristine ``select``.

    ``patcher.original("selectors")`` imports a fresh copy with whatever
    ``select`` is in ``sys.modules``; after ``monkey_patch()`` that one lacks
    ``epoll``, so the copy's ``DefaultSelector`` is a ``SelectSelector``
    bound to green ``select``. It is imported with the pristine ``select`` in
    place, past eventlet's cache of originals (``__original_module_<name>``
    in ``sys.modules``).
    """
    if name != "selectors":
        return patcher.original(name)
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


def patch_count() -> int:
    """How many patches ``monkey_patch()`` has applied so far."""
    return len(patcher.already_patched)


def patched_module_names() -> list[str]:
    """The names of the modules ``monkey_patch()`` replaced in ``sys.modules``."""
    names: list[str] = []
    for patch in patcher.already_patched:
        if patch in _PATCH_KINDS:
            modules = getattr(patcher, f"_green_{patch}_modules")()
            names.extend(name for name, _ in modules if name in sys.modules)
    return names


def _after_monkey_patch(original: Callable[..., Any], sweep: Callable[[], None]) -> Any:
    @functools.wraps(original)
    def monkey_patch(**on: Any) -> Any:
        result = original(**on)
        sweep()
        return result

    monkey_patch.__bridge_wrapped__ = original  # type: ignore[attr-defined]
    return monkey_patch


def _sweep_before(cls: type, name: str, sweep: Callable[[], None]) -> None:
    """Make ``cls.name`` call ``sweep()`` first. Idempotent."""
    original = getattr(cls, name)
    if hasattr(original, "__bridge_wrapped__"):
        return

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        sweep()
        return original(self, *args, **kwargs)

    method.__bridge_wrapped__ = original  # type: ignore[attr-defined]
    setattr(cls, name, method)


def install_native_hooks(sweep: Callable[[], None]) -> None:
    """Run ``sweep()`` after ``eventlet.monkey_patch()``, before a selector loop is
    made, and before a thread pool executor is made or given work. Idempotent.

    References to ``monkey_patch`` taken before this ran are not wrapped (a
    ``monkey_patch()`` call running when the hub is made, for one); the other
    hooks still sweep before a new loop or an executor thread exists.
    """
    import concurrent.futures

    if not hasattr(patcher.monkey_patch, "__bridge_wrapped__"):
        patcher.monkey_patch = _after_monkey_patch(patcher.monkey_patch, sweep)
    eventlet.monkey_patch = patcher.monkey_patch
    _sweep_before(asyncio.selector_events.BaseSelectorEventLoop, "__init__", sweep)
    try:
        pool = concurrent.futures.ThreadPoolExecutor  # imports its module on first use
    except RuntimeError:
        return  # interpreter shutdown ("can't register atexit"): no executor runs now
    _sweep_before(pool, "__init__", sweep)
    _sweep_before(pool, "submit", sweep)


# -- eventlet --------------------------------------------------------------------------


def thread_hub() -> Any:
    """This thread's eventlet hub, or None; never makes one."""
    return getattr(_threadlocal, "hub", None)


# eventlet functions that compare hub.greenlet with getcurrent() to decide
# whether to take their "in the mainloop" path. tests/test_hooks.py checks,
# from eventlet's source, that these are all of them.
_MAINLOOP_QUESTIONS = frozenset(
    f.__code__
    for f in (
        eventlet.queue.Waiter.switch,
        eventlet.queue.Waiter.throw,
        eventlet.queue.LightQueue.put,
        eventlet.queue.LightQueue.get,
        # kill() from the mainloop must not schedule a switch back to it: in
        # the dispatcher, that switch would land in a later mode's drain.
        eventlet.greenthread.kill,
    )
)
_SLEEP_CODE = eventlet.greenthread.sleep.__code__


def asks_from_mainloop(frame: types.FrameType) -> bool:
    """True when ``frame`` is one of eventlet's non-blocking "am I the mainloop?" paths.

    A few eventlet functions compare ``hub.greenlet`` with ``getcurrent()`` and,
    in the mainloop, do something non-blocking instead (a queue hands an item
    over directly, ``sleep(0)`` returns). Every other such comparison guards a
    blocking call, which must reach the hub's ``switch()`` and its clear
    error instead.
    """
    code = frame.f_code
    return code in _MAINLOOP_QUESTIONS or (
        code is _SLEEP_CODE and frame.f_locals.get("seconds", 1) <= 0
    )


def install_eventlet_patches(
    is_bridge_hub: Callable[[Any], bool], fd_closed: Callable[[Any, int], None]
) -> None:
    """Teach eventlet about bridge's hub; eventlet's own hubs behave as before. Idempotent.

    ``is_bridge_hub(hub)`` tells bridge's hub from others; ``fd_closed(hub, fd)``
    is told of every close that closed a green fd.
    """
    if isinstance(greenio_base.GreenSocket.__dict__.get("close"), _NotifyingClose):
        return

    def hub_prevent_multiple_readers(state: bool = True) -> None:
        """Refuse (True, the default) or allow (False) several readers of one fd.

        bridge's replacement for eventlet's function of the same name: it
        allows several readers on bridge's hub, and refuses them on eventlet's
        own asyncio hub, as eventlet does.
        """
        from eventlet.hubs import asyncio as eventlet_asyncio_hub
        from eventlet.hubs import get_hub

        hub = get_hub()
        if not state and isinstance(hub, eventlet_asyncio_hub.Hub) and not is_bridge_hub(hub):
            raise RuntimeError("Multiple readers are not yet supported by asyncio hub")
        eventlet_base_hub.g_prevent_multiple_readers = state

    def tell_hub(fileno: int) -> None:
        hub = thread_hub()
        if hub is not None and is_bridge_hub(hub):
            fd_closed(hub, fileno)

    def close_socket(sock: Any) -> None:
        real_close = sock.__dict__["_bridge_real_close"]
        fd = sock.fd
        fileno = fd.fileno()
        real_close()
        if fileno >= 0 and fd.fileno() == -1:  # closed, not only released by makefile()
            tell_hub(fileno)

    real_file_close = greenio_py3.GreenFileIO.close

    @functools.wraps(real_file_close)
    def close_file(self: Any) -> None:
        fileno = -1 if self._closed else self._fileno
        real_file_close(self)
        if fileno >= 0:
            tell_hub(fileno)

    eventlet.debug.hub_prevent_multiple_readers = hub_prevent_multiple_readers
    greenio_base.GreenSocket.close = _NotifyingClose(close_socket)
    greenio_py3.GreenFileIO.close = close_file


class _NotifyingClose:
    """``GreenSocket.close``: eventlet sets the real close per instance; we serve ours."""

    def __init__(self, close: Callable[[Any], None]) -> None:
        self._close = close

    def __set__(self, sock: Any, real_close: Any) -> None:
        sock.__dict__["_bridge_real_close"] = real_close

    def __get__(self, sock: Any, owner: type | None = None) -> Any:
        if sock is None:
            return self
        if "_bridge_real_close" not in sock.__dict__:
            raise AttributeError("close")
        return types.MethodType(self._close, sock)


def track_greenthreads(created: Callable[[Any], None]) -> Callable[[], None]:
    """Call ``created(gt)`` for each greenthread made from now on; return the undo."""
    greenthread_class = eventlet.greenthread.GreenThread
    original = greenthread_class.__init__

    def __init__(gt: Any, parent: Any) -> None:
        original(gt, parent)
        created(gt)

    greenthread_class.__init__ = __init__

    def undo() -> None:
        greenthread_class.__init__ = original

    return undo
