"""Legacy: the conductor, a GreenPool of greenthreads carrying out power jobs.

Green code as it always was -- a GreenPool, green sockets to the BMCs,
``eventlet.Timeout``, sync SQLAlchemy sessions -- that takes its work from a
bus only an asyncio library can reach: nats-py, called with
:func:`bridge.await_` (the coroutines of ``bus.py``, unchanged).

A job, as delivered by JetStream (at least once, maybe to several
conductors in turn), goes through idempotent steps:

1. ``start``: the job moves to ``running`` in the store (one more attempt).
   If it is finished already, this delivery is a repeat: ack, and nothing else.
2. ``power``: the BMC command. Powering a node to a state it may be in
   already is harmless, so a repeat after a conductor died here does no harm.
3. ``record``: the outcome, the node's power and one effect-log row, in one
   transaction that only a ``running`` job can pass: recorded once, whoever
   gets there first.
4. ``announce``: a state-change event on the bus (at least once).
5. ``ack``: only now does the bus forget the job. A conductor killed before
   this line leaves the job to be redelivered after ``ack_wait``.

While a job is worked on, a heartbeat greenthread tells the bus so every
``ack_wait / 3`` seconds: a slow BMC is not a dead conductor.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import eventlet
import eventlet.greenpool
from nats.aio.msg import Msg

import bridge

from . import bmc
from .bus import Bus, JobConsumer, ack, still_working
from .settings import Settings
from .store import StoreUnavailable, SyncStore

log = logging.getLogger(__name__)


class GaveUp(Exception):
    """The store stayed unavailable until shutdown: the job is left to the bus."""


class Conductor:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        store: SyncStore,
        bmc_address: tuple[str, int],
        name: str,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.store = store
        self.bmc_address = bmc_address
        self.name = name
        self.pool = eventlet.greenpool.GreenPool(settings.workers)
        self.stop = bridge.Event()  # set from async code (a signal handler); read green
        self.in_flight: dict[int, Msg] = {}
        self.counts = {"taken": 0, "done": 0, "failed": 0, "repeats": 0, "left": 0}
        self._deadline = float("inf")  # set when stopping: how long a job may still take

    def run(self, drain: bool = False) -> None:
        """Take jobs until :attr:`stop` is set; then finish the ones taken.

        With ``drain`` (a conductor alone with its API, ``--role all``),
        go on taking jobs after the stop until the bus has none left, within
        ``shutdown_timeout``: what the API accepted before it stopped gets done.
        Run in a greenthread (or as green main).
        """
        consumer: JobConsumer = bridge.await_(self.bus.job_consumer(self.settings.ack_wait))
        heart = eventlet.spawn(self._heartbeat)
        try:
            while not self.stop.is_set():
                self._take(consumer)
            self._deadline = time.monotonic() + self.settings.shutdown_timeout
            while drain and time.monotonic() < self._deadline:
                if not self._take(consumer):
                    self.pool.waitall()
                    if not bridge.await_(self._nothing_pending()):
                        continue
                    break
            self.pool.waitall()
        finally:
            heart.kill()

    async def _nothing_pending(self) -> bool:
        try:
            return await self.bus.pending_jobs() == 0
        except Exception:  # the bus is away: treat as "maybe", and look again
            return False

    def _take(self, consumer: JobConsumer) -> int:
        batch = max(1, self.pool.free())
        messages = bridge.await_(consumer.fetch(batch, timeout=0.5))
        for message in messages:
            self.in_flight[id(message)] = message
            self.counts["taken"] += 1
            self.pool.spawn_n(self.carry_out, message)
        return len(messages)

    def _heartbeat(self) -> None:
        while True:
            eventlet.sleep(self.settings.ack_wait / 3)
            for message in list(self.in_flight.values()):
                bridge.await_(still_working(message))

    def carry_out(self, message: Msg) -> None:
        try:
            job = json.loads(message.data)
            self._steps(job)
            bridge.await_(ack(message))
        except GaveUp:
            self.counts["left"] += 1  # not acked: the bus gives it to a conductor later
        except Exception:
            log.exception("%s: job %r failed unexpectedly; left to the bus", self.name, message)
            self.counts["left"] += 1
        finally:
            del self.in_flight[id(message)]

    def _steps(self, job: dict[str, Any]) -> None:
        started = self._with_store(self.store.start_job, job["job"], self.name)
        if started is None:  # finished by an earlier delivery
            self.counts["repeats"] += 1
            return
        self._announce(started, "running")
        try:
            _, power = bmc.exchange(
                self.bmc_address, f"POWER {job['node']} {job['state']}", self.settings.bmc_timeout
            )
            outcome, error = "done", ""
        except eventlet.Timeout:
            outcome, power = "failed", ""
            error = f"the BMC did not answer within {self.settings.bmc_timeout:g} s"
        except (bmc.BMCError, OSError) as exc:
            outcome, power, error = "failed", "", f"{type(exc).__name__}: {exc}"
        recorded = self._with_store(
            self.store.finish_job, job["job"], job["node"], outcome, power, error, self.name
        )
        if recorded is None:  # another delivery of this job recorded it first
            self.counts["repeats"] += 1
            return
        self.counts[recorded] += 1
        self._announce({**started, "status": recorded, "error": error}, recorded)

    def _with_store(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)``, retried while the store is unavailable (locked, restarting)."""
        pause = 0.05
        while True:
            try:
                return fn(*args)
            except StoreUnavailable as exc:
                if time.monotonic() > self._deadline:
                    raise GaveUp(str(exc)) from exc
                log.warning("%s: store unavailable (%s); retrying", self.name, exc)
                eventlet.sleep(pause)
                pause = min(pause * 2, 1.0)

    def _announce(self, job: dict[str, Any], status: str) -> None:
        event = {
            "job": job["id"],
            "node": job["node"],
            "state": job["state"],
            "status": status,
            "error": job.get("error", ""),
            "conductor": self.name,
            "attempt": job["attempts"],
        }
        bridge.await_(self.bus.publish_event(event))
