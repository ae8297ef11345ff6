"""The crossings: async code calling green code, and green code calling async code.

Naming: ``to_X(fn)`` returns a callable *for world X's callers*.
``to_async(fn)`` is awaited by async code and runs the green ``fn`` in a
greenthread; ``to_green(afn)`` is called (and blocks) in green code and runs
the coroutine function ``afn`` on the loop. ``await_(aw)`` is the green-side
primitive underneath ``to_green``.

The two directions side by side (DESIGN.md, section 2; ``tests/test_adapters.py``
pins each cell in both hub modes):

=================  ======================================  ======================================
                   async calls green                       green calls async
=================  ======================================  ======================================
entry point        ``await to_async(fn)(*args)``           ``await_(aw)``, ``to_green(afn)(*args)``
                   (``_async_to_green``)                   (``_green_to_async``)
the callee runs    on a *carrier*, a pooled greenthread,   in a new task on the hub's loop, its
                   started inside the task's step          first step taken at once in the
                   (``_carriers``)                         dispatcher (``start_task``)
who waits, how     the task awaits a future that the       the greenthread parks on a
                   carrier settles when ``fn`` ends        ``GreenWaiter`` that the task's last
                                                           step settles (``_waiter``)
result, exception  returned / raised, with the callee's    same
                   frames in the traceback
cancellation       cancelling the awaiting task kills the  killing the waiting greenthread
                   greenthread (GreenletExit, its          cancels the task; the kill goes on
                   ``finally`` runs); the task ends        once the task has finished
                   cancelled once the greenthread died
timeouts           ``asyncio.timeout``/``wait_for`` are    ``eventlet.Timeout`` cancels the
                   cancellations: as above                 task, then raises the Timeout
contextvars        the callee runs in a copy of the        same
                   caller's context
without waiting    a green call inline in ``async def``    a green handle on a task:
                   suspends only its task: ``@portal``     ``spawn_async`` -> ``TaskHandle``
                   (``_portal``)                           (``_handles``, parks on ``_waiter``)
from an OS thread  ``from_thread.run_green``: a carrier    ``from_thread.run``: a task
                   (``_from_thread``)                      (``_from_thread``)
=================  ======================================  ======================================

The last row sorts by the callee's world: there the caller is a foreign OS
thread, blocked on a ``concurrent.futures.Future``. ``await gt`` on an
eventlet ``GreenThread`` is the async->green handle; it needs nothing here:
eventlet's ``GreenThread`` is awaitable on bridge's hub.

The modules, one piece each:

* ``_async_to_green``: ``to_async`` and its call object (``_GreenCall``).
* ``_carriers``: the parked greenthreads that run ``to_async`` and
  ``from_thread.run_green`` calls, each call seeing a fresh greenthread.
* ``_green_to_async``: ``await_``, ``to_green``, and the eager start of their
  tasks (``start_task``, ``create_task``).
* ``_waiter``: the green waiter that ``await_`` and ``TaskHandle.wait`` park on.
* ``_portal``: ``portal``, ``has_portal``: green-blocking calls inside ``async def``.
* ``_handles``: ``spawn_async`` and ``TaskHandle``, a task with GreenThread methods.
* ``_from_thread``: the machinery behind ``bridge.from_thread`` (which keeps
  the public ``run``/``run_green`` and their documentation).

Layering: these modules use only what ``bridge._core`` exports (never a
hub's private attributes, nor ``bridge._core``'s private modules), and
each other's names listed in their ``__all__``. The rest of bridge uses only
the names exported here. The eventlet internals that carriers need (a
greenthread's exit event and links, ``corolocal``'s per-greenthread values)
are fenced at the end of ``_carriers``, for ``bridge._core._hooks`` to take.
"""

from bridge._crossings._async_to_green import to_async as to_async
from bridge._crossings._from_thread import run_as_task as run_as_task
from bridge._crossings._from_thread import run_in_greenthread as run_in_greenthread
from bridge._crossings._green_to_async import await_ as await_
from bridge._crossings._green_to_async import to_green as to_green
from bridge._crossings._handles import TaskHandle as TaskHandle
from bridge._crossings._handles import spawn_async as spawn_async
from bridge._crossings._portal import has_portal as has_portal
from bridge._crossings._portal import portal as portal

__all__ = (
    "TaskHandle",
    "await_",
    "has_portal",
    "portal",
    "run_as_task",
    "run_in_greenthread",
    "spawn_async",
    "to_async",
    "to_green",
)
