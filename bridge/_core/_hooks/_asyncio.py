"""Hooks into asyncio's internals: the running loop, tasks, the stdlib ready queue.

Part of ``bridge._core._hooks``: its table says what each is and why.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import asyncio.tasks
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = (
    "current_task",
    "enter_task",
    "get_running_loop",
    "install_fork_hooks",
    "install_running_loop_hooks",
    "leave_task",
    "set_running_loop",
    "step_now",
)


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
