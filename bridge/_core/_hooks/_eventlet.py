"""Hooks into eventlet's internals (and the unpatched standard library asyncio needs).

Part of ``bridge._core._hooks``: its table says what each is and why.
"""

from __future__ import annotations

import asyncio.selector_events
import functools
import sys
import types
from collections.abc import Callable
from typing import Any

import eventlet.debug
import eventlet.greenthread
import eventlet.queue
import greenlet
from eventlet import corolocal, event, greenthread, patcher
from eventlet.greenio import base as greenio_base
from eventlet.greenio import py3 as greenio_py3
from eventlet.hubs import _threadlocal
from eventlet.hubs import hub as eventlet_base_hub

__all__ = (
    "PATCH_KINDS",
    "asks_from_mainloop",
    "exit_and_start_fresh",
    "install_eventlet_patches",
    "install_native_hooks",
    "original_module",
    "patch_count",
    "patched_module_names",
    "start_fresh",
    "thread_hub",
    "tpool_wakeup_fd",
    "track_greenthreads",
    "watch_green_locals",
)

PATCH_KINDS = ("os", "select", "socket", "thread", "time", "subprocess")

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
        if patch in PATCH_KINDS:
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

    @functools.wraps(original)
    def __init__(gt: Any, parent: Any) -> None:
        original(gt, parent)
        created(gt)

    greenthread_class.__init__ = __init__

    def undo() -> None:
        greenthread_class.__init__ = original

    return undo


def start_fresh(gt: greenthread.GreenThread) -> None:
    """What ``GreenThread.__init__`` sets up: an exit event not sent, no links."""
    gt._exit_event = event.Event()
    gt._resolving_links = False
    gt._exit_funcs = None


def exit_and_start_fresh(
    gt: greenthread.GreenThread, result: Any, exception: BaseException | None
) -> None:
    """What ``GreenThread.main`` does when its function ends (send the exit event,
    call the links); then a new exit event and no links, as :func:`start_fresh`
    sets up (``_resolve_links`` leaves ``_resolving_links`` false).

    Most calls had neither waiters nor links: their untouched event serves the
    next call.
    """
    exit_event = gt._exit_event
    if exit_event._waiters or gt._exit_funcs:
        if exception is not None:
            exit_event.send_exception(exception)
        else:
            exit_event.send(result)
        gt._resolve_links()
        gt._exit_event = event.Event()
        gt._exit_funcs = None


def watch_green_locals(cls: type, first_use: Callable[[Any, Any], None]) -> None:
    """Call ``first_use(gt, greens)`` when a greenthread of class ``cls`` first
    uses an ``eventlet.corolocal.local``; ``greens`` maps greenthreads to their
    values of that local, and ``gt``'s entry is about to be made. Once per process.
    """
    original_patch = corolocal._patch
    if hasattr(original_patch, "__bridge_wrapped__"):
        return

    def _patch(thrl: Any) -> None:
        current = greenlet.getcurrent()
        if isinstance(current, cls):
            greens = object.__getattribute__(thrl, "_local__greens")
            if current not in greens:
                first_use(current, greens)
        original_patch(thrl)

    _patch.__bridge_wrapped__ = original_patch  # type: ignore[attr-defined]
    corolocal._patch = _patch


def tpool_wakeup_fd() -> int | None:
    """The fd eventlet's tpool keeps watched for the process (its wake-up pipe), if any."""
    tpool = sys.modules.get("eventlet.tpool")
    rsock = getattr(tpool, "_rsock", None)
    return rsock.fileno() if rsock is not None else None
