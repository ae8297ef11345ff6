"""Legacy: the conductor, a GreenPool of greenthreads carrying out power jobs.

Untouched green code, apart from where its queue comes from: it takes jobs
from the green face of a :class:`bridge.Queue` that async handlers fill, and
it calls the asyncio-only event client with :func:`bridge.await_`.
"""

from __future__ import annotations

import dataclasses
import uuid

import eventlet
import eventlet.greenpool

import bridge

from . import bmc
from .events import EventClient
from .settings import Settings


@dataclasses.dataclass(eq=False)
class Job:
    node: str
    state: str
    id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    status: str = "queued"  # then "done" or "failed"
    error: str = ""
    finished: bridge.Event = dataclasses.field(default_factory=bridge.Event)

    def as_dict(self) -> dict[str, str]:
        return {
            "job": self.id,
            "node": self.node,
            "state": self.state,
            "status": self.status,
            "error": self.error,
        }


# Put on the queue after the last job: the conductor finishes what is queued, then stops.
STOP = Job(node="", state="")


class Conductor:
    def __init__(
        self,
        settings: Settings,
        jobs: bridge.Queue[Job],
        bmc_address: tuple[str, int],
        events: EventClient,
    ) -> None:
        self.settings = settings
        self.jobs = jobs.green  # legacy code gets the green face, and nothing else
        self.bmc_address = bmc_address
        self.events = events
        self.pool = eventlet.greenpool.GreenPool(settings.workers)
        self.completed = 0
        self.failed = 0

    def run(self) -> None:
        """Take jobs until STOP, then wait for the ones running; run in a greenthread."""
        while (job := self.jobs.get()) is not STOP:
            self.pool.spawn_n(self.carry_out, job)
        self.pool.waitall()

    def carry_out(self, job: Job) -> None:
        try:
            command = f"POWER {job.node} {job.state}"
            bmc.exchange(self.bmc_address, command, self.settings.bmc_timeout)
            job.status = "done"
        except (bmc.BMCError, OSError, eventlet.Timeout) as exc:
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        bridge.await_(self.events.publish(job.as_dict()))  # asyncio-only library
        if job.status == "done":
            self.completed += 1
        else:
            self.failed += 1
        job.finished.set()
