"""Primitives for both worlds: one object, two faces, one FIFO wait queue.

A migrating service hands the same ``Queue`` to a legacy green producer and
a new async consumer. Each primitive here is one object with two faces:

* the object itself speaks asyncio (``await q.get()``, ``async with lock``,
  ``await ev.wait()``);
* its ``green`` attribute speaks eventlet / ``threading`` (``q.green.get(block,
  timeout)``, ``with lock.green``, ``ev.green.wait(timeout)``), so legacy code
  is handed ``obj.green`` unchanged.

The face is chosen by the caller, never guessed from the calling context: a
guess would block where it should await (inside a portal, async code runs in
a greenlet).

The problem
-----------
Waiters of two worlds wait for one resource, and they leave in ways the
resource does not see coming: a task is cancelled (``task.cancel()``, an
``asyncio.timeout``), a greenthread is killed or its ``eventlet.Timeout``
fires, a green ``timeout=`` expires. Each of these can happen after the
waiter was woken and before it ran. The primitives must stay FIFO across
both worlds, lose no wake-up, and never let two holders in.

What did not work
-----------------
The first version let wakers hand nothing over: a woken waiter re-checked
the state and parked again if it found nothing. A waiter that resumed with
capacity to spare woke the next one -- not counting those already woken for
that same capacity. One of them then found nothing, and parked again *at the
back*, behind waiters that came after it (a FIFO violation a stateful test
found); and an ``Event`` waiter woken by ``set()`` that ran after a
``clear()`` parked again, losing the wake-up that asyncio and threading
deliver.

The mechanism
-------------
``WaitQueue`` (in ``_wait_queue``) is one FIFO queue of parked waiters of
either world (as trio keeps them in its ``ParkingLot``). *A wake-up is a
reservation*: the primitive wakes waiters only while its capacity (free
permits, items, room) exceeds the number of waiters already woken
(``WaitQueue.woken``), so every woken waiter finds its unit when it runs,
and takes it without looking again. A newcomer takes a unit at once only if one is free beyond the
reserved ones, so it never overtakes a parked waiter. A waiter that leaves
after it was woken gives its reservation back, and the primitive wakes the
next waiter for it (``on_abandon``): no item waits, no permit leaks. An
``Event`` waiter woken by ``set()`` returns True, whatever the flag is when
it runs, as asyncio's and threading's do.

Invariants
----------
* ``WaitQueue.woken`` counts the waiters woken and not yet resumed or gone;
  woken waiters are out of ``WaitQueue._waiters``.
* Capacity >= ``woken`` for each queue (``_value`` for permits,
  ``len(_items)`` for getters, ``maxsize - len(_items)`` for putters), and a
  waiter is parked and not woken only while capacity == ``woken``.
  ``WaitQueue.wake_upto`` checks the first half at each wake-up; a woken
  waiter that finds no unit raises ``BridgeInternalError``.

Failure modes that remain
-------------------------
* Not thread-safe (like asyncio's primitives): use them from the hub's
  thread; other threads go through :mod:`bridge.from_thread`.
* No barging: ``get_nowait()`` raises ``QueueEmpty`` while the only items are
  promised to woken getters that have not run yet (``qsize() > 0``), and
  ``acquire(blocking=False)`` fails while the free permit is promised to a
  woken waiter (``locked()`` says so). asyncio's ``Queue`` lets a newcomer
  take such an item; FIFO is the promise here.

Rooms
-----
One thing a module; each imports only from those below it in this list
(and from ``bridge._core``'s declared names, nothing else of the hub):

* ``_locks``: ``Lock``, ``Semaphore``, ``BoundedSemaphore`` and their green
  faces, thin layers over ``_permits``;
* ``_permits``: counted permits over a wait queue, and what the two faces
  of every permit primitive share;
* ``_queue``: ``Queue`` and its green face (getters, putters, ``join()``
  on an ``Event``);
* ``_event``: ``Event`` and its green face;
* ``_wait_queue``: the wait queue above, where a wake-up is a reservation,
  and the one green park-with-deadline loop;
* ``_statistics``: ``SyncStatistics``, what ``statistics()`` returns.
"""

from bridge._sync._event import Event as Event
from bridge._sync._locks import BoundedSemaphore as BoundedSemaphore
from bridge._sync._locks import Lock as Lock
from bridge._sync._locks import Semaphore as Semaphore
from bridge._sync._queue import Queue as Queue
from bridge._sync._statistics import SyncStatistics as SyncStatistics

__all__ = ("BoundedSemaphore", "Event", "Lock", "Queue", "Semaphore", "SyncStatistics")
