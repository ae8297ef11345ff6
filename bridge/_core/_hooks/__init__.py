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
below (in ``_asyncio`` and ``_eventlet``), and ``tests/test_layers.py``
checks that no other module names them.

Installing is idempotent and leaves asyncio and eventlet as they were for
code that does not use bridge's hub (the wrappers pass through).
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import asyncio.tasks
import dataclasses
import inspect
import sys
from collections.abc import Callable
from typing import Any

import eventlet.debug
import eventlet.event
import eventlet.greenthread
from eventlet import corolocal, patcher
from eventlet.greenio import base as greenio_base
from eventlet.greenio import py3 as greenio_py3
from eventlet.hubs import _threadlocal
from eventlet.hubs import hub as eventlet_base_hub

from bridge._core._hooks._asyncio import current_task as current_task
from bridge._core._hooks._asyncio import enter_task as enter_task
from bridge._core._hooks._asyncio import get_running_loop as get_running_loop
from bridge._core._hooks._asyncio import install_fork_hooks as install_fork_hooks
from bridge._core._hooks._asyncio import install_running_loop_hooks as install_running_loop_hooks
from bridge._core._hooks._asyncio import leave_task as leave_task
from bridge._core._hooks._asyncio import set_running_loop as set_running_loop
from bridge._core._hooks._asyncio import step_now as step_now
from bridge._core._hooks._eventlet import PATCH_KINDS
from bridge._core._hooks._eventlet import asks_from_mainloop as asks_from_mainloop
from bridge._core._hooks._eventlet import exit_and_start_fresh as exit_and_start_fresh
from bridge._core._hooks._eventlet import install_eventlet_patches as install_eventlet_patches
from bridge._core._hooks._eventlet import install_native_hooks as install_native_hooks
from bridge._core._hooks._eventlet import original_module as original_module
from bridge._core._hooks._eventlet import patch_count as patch_count
from bridge._core._hooks._eventlet import patched_module_names as patched_module_names
from bridge._core._hooks._eventlet import start_fresh as start_fresh
from bridge._core._hooks._eventlet import thread_hub as thread_hub
from bridge._core._hooks._eventlet import tpool_wakeup_fd as tpool_wakeup_fd
from bridge._core._hooks._eventlet import track_greenthreads as track_greenthreads
from bridge._core._hooks._eventlet import watch_green_locals as watch_green_locals

__all__ = (
    "BASEHUB_CONTRACT",
    "CHECKED_ON",
    "HOOKS",
    "Hook",
    "HookError",
    "asks_from_mainloop",
    "current_task",
    "enter_task",
    "exit_and_start_fresh",
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
    "start_fresh",
    "step_now",
    "thread_hub",
    "tpool_wakeup_fd",
    "track_greenthreads",
    "verify",
    "watch_green_locals",
)

# The private parts of eventlet's hub contract that bridge's Hub calls or
# overrides (tests/test_layers.py allows them on BaseHub, nowhere else).
BASEHUB_CONTRACT = ("_obsolete",)

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
            and all(hasattr(patcher, f"_green_{kind}_modules") for kind in PATCH_KINDS)
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
        "eventlet.corolocal._patch, local._local__greens",
        "Wrapped: a greenthread that bridge reuses for to_async calls (a carrier) forgets "
        "the green locals a call touched, as a new greenthread would have none.",
        lambda: (
            callable(getattr(corolocal, "_patch", None))
            and "_local__greens" in getattr(corolocal._localbase, "__slots__", ())
        ),
    ),
    Hook(
        "eventlet.greenthread.GreenThread: _exit_event, _resolving_links, _exit_funcs, "
        "_resolve_links; eventlet.event.Event._waiters",
        "A carrier ends each to_async call as a greenthread exits (exit event sent, links "
        "called) and starts the next one fresh.",
        lambda: (
            "_exit_event" in eventlet.greenthread.GreenThread.main.__code__.co_names
            and {"_resolving_links", "_exit_funcs"}
            <= set(eventlet.greenthread.GreenThread._resolve_links.__code__.co_names)
            and hasattr(eventlet.event.Event(), "_waiters")
        ),
    ),
    Hook(
        "eventlet.tpool._rsock",
        "tpool's wake-up pipe, watched for the whole process: not a test's leak.",
        lambda: True,  # read only if tpool was imported, and then optional
    ),
    Hook(
        "eventlet.greenthread.GreenThread.__init__",
        "Wrapped while the pytest plugin's leak check watches a test.",
        lambda: _code_has_local(
            inspect.unwrap(eventlet.greenthread.GreenThread.__init__), "parent"
        ),
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
