"""bridge's core: the hub, and all that the layers above it may use of it.

Layering, as in trio: ``bridge._core`` is self-contained; the modules above
it (the adapters, the primitives, the portal, ``from_thread``, the tools)
use only the names exported here, never a hub's private attributes nor
asyncio's or eventlet's internals (``_hooks`` holds those).
``tests/test_layers.py`` checks both.

The hub itself is built as rooms, one mechanism a module; ``_hub``'s
docstring is the map, and ``docs/how-it-works.md`` draws it.
"""

from bridge._core._blocking import BlockingDetector as BlockingDetector
from bridge._core._blocking import detect_blocking as detect_blocking
from bridge._core._hooks import current_task as current_task
from bridge._core._hooks import enter_task as enter_task
from bridge._core._hooks import exit_and_start_fresh as exit_and_start_fresh
from bridge._core._hooks import leave_task as leave_task
from bridge._core._hooks import start_fresh as start_fresh
from bridge._core._hooks import step_now as step_now
from bridge._core._hooks import thread_hub as thread_hub
from bridge._core._hooks import tpool_wakeup_fd as tpool_wakeup_fd
from bridge._core._hooks import track_greenthreads as track_greenthreads
from bridge._core._hooks import watch_green_locals as watch_green_locals
from bridge._core._hub import Hub as Hub
from bridge._core._hub import HubStatistics as HubStatistics
from bridge._core._hub import is_available as is_available
from bridge._core._hub import slots_of as slots_of
from bridge._core._modes import current_loop as current_loop
from bridge._core._native import ensure_native_asyncio as ensure_native_asyncio
from bridge._core._registry import current_hub as current_hub
from bridge._core._registry import hub_of_thread as hub_of_thread
from bridge._core._rounds import make_ready as make_ready
from bridge._core._state import HubSlots as HubSlots
from bridge._core._state import PortalLike as PortalLike
from bridge._core._topology import anchor_of as anchor_of
from bridge._core._topology import can_run_in_dispatcher as can_run_in_dispatcher
from bridge._core._topology import in_dispatcher as in_dispatcher
from bridge._core._topology import let_go as let_go
from bridge._core._topology import portal_of as portal_of
from bridge._core._topology import resume_green as resume_green
from bridge._core._topology import run_in_dispatcher as run_in_dispatcher
from bridge._core._topology import switch_to_dispatcher as switch_to_dispatcher

__all__ = (
    "BlockingDetector",
    "Hub",
    "HubSlots",
    "HubStatistics",
    "PortalLike",
    "anchor_of",
    "can_run_in_dispatcher",
    "current_hub",
    "current_loop",
    "current_task",
    "detect_blocking",
    "ensure_native_asyncio",
    "enter_task",
    "exit_and_start_fresh",
    "hub_of_thread",
    "in_dispatcher",
    "is_available",
    "leave_task",
    "let_go",
    "make_ready",
    "portal_of",
    "resume_green",
    "run_in_dispatcher",
    "slots_of",
    "start_fresh",
    "step_now",
    "switch_to_dispatcher",
    "thread_hub",
    "tpool_wakeup_fd",
    "track_greenthreads",
    "watch_green_locals",
)
