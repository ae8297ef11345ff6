"""Migrated: the message bus, NATS with JetStream, through nats-py (an asyncio-only library).

This is the seed's blocker removed (oslo wanted a NATS driver, and nats-py
could not run under eventlet): the API awaits this module natively, and the
legacy conductor calls the very same coroutines from green code with
:func:`bridge.await_`.

Subjects and streams:

* ``jobs.power`` -- stream ``JOBS``, work-queue retention, on disk. The API
  publishes each job it accepts with the job id as ``Nats-Msg-Id`` (a retried
  publish is not stored twice) and answers 202 only once JetStream has
  stored it. Conductors share one durable pull consumer, ``conductors``: a
  message goes to one of them, and comes back to another if it is not acked
  within ``ack_wait`` (the taker died).
* ``events.jobs.<job>`` -- stream ``EVENTS`` (the last 100k events, an hour
  at most): every state change of a job (``running``, ``done``, ``failed``),
  published at least once and without waiting for JetStream's confirmation.
  The API follows ``events.>`` to answer ``?wait=`` and to stream events to
  clients.

Connection loss: nats-py reconnects by itself (forever, every quarter
second); what was published but not confirmed is published again with the
same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api as jsapi

log = logging.getLogger(__name__)

JOBS_STREAM = "JOBS"
JOBS_SUBJECT = "jobs.power"
EVENTS_STREAM = "EVENTS"
EVENTS_SUBJECTS = "events.>"
CONSUMER = "conductors"

# What a publish or a fetch may meet while the server restarts or the link is down.
TRANSIENT = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.ServerError,
    asyncio.TimeoutError,
    OSError,
)


class BusUnavailable(Exception):
    """The bus could not be reached, or did not confirm in time."""


def event_subject(job: str) -> str:
    return f"events.jobs.{job}"


class Bus:
    """One connection to NATS. Make it with :meth:`connect`."""

    def __init__(self, nc: nats.NATS, url: str) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.url = url
        self.disconnects = 0
        self.closing = False

    @classmethod
    async def connect(cls, url: str, name: str, timeout: float = 10.0) -> Bus:
        """Connect, and make sure the streams exist.

        :raises BusUnavailable: nothing answers at ``url`` (at start, that is an
            error to report, not a reason to wait: nats-py would retry for
            minutes), or JetStream is not enabled there.
        """
        await _check_reachable(url, timeout)
        bus: Bus | None = None

        async def count_disconnect() -> None:
            if bus is None or bus.closing:
                return
            bus.disconnects += 1
            log.warning("%s: lost the bus at %s; reconnecting", name, url)

        async def reconnected() -> None:
            log.warning("%s: reconnected to the bus", name)

        async def quiet_error(exc: Exception) -> None:
            log.info("%s: bus: %s: %s", name, type(exc).__name__, exc)

        nc = await asyncio.wait_for(
            nats.connect(
                url,
                name=name,
                connect_timeout=timeout,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                disconnected_cb=count_disconnect,
                reconnected_cb=reconnected,
                error_cb=quiet_error,
            ),
            timeout,
        )
        bus = cls(nc, url)
        try:
            await bus._ensure_streams(timeout)
        except BaseException:
            await nc.close()
            raise
        return bus

    async def _ensure_streams(self, timeout: float) -> None:
        configs = [
            jsapi.StreamConfig(
                name=JOBS_STREAM,
                subjects=[JOBS_SUBJECT],
                retention=jsapi.RetentionPolicy.WORK_QUEUE,
                storage=jsapi.StorageType.FILE,
                duplicate_window=120.0,
            ),
            jsapi.StreamConfig(
                name=EVENTS_STREAM,
                subjects=[EVENTS_SUBJECTS],
                retention=jsapi.RetentionPolicy.LIMITS,
                storage=jsapi.StorageType.FILE,
                max_msgs=100_000,
                max_age=3600.0,
            ),
        ]
        deadline = time.monotonic() + timeout
        for config in configs:
            while True:
                try:
                    # Idempotent: the same config again is no change; processes start in any order.
                    await asyncio.wait_for(
                        self.js.add_stream(config), max(0.5, deadline - time.monotonic())
                    )
                    break
                except nats.js.errors.BadRequestError as exc:
                    if "already in use" in str(exc) or exc.err_code == 10058:
                        await self.js.update_stream(config)
                        break
                    raise
                except TRANSIENT as exc:
                    if time.monotonic() > deadline:
                        raise BusUnavailable(
                            f"the bus at {self.url} does not answer JetStream requests "
                            f"({type(exc).__name__}); start nats-server with --jetstream"
                        ) from None
                    await asyncio.sleep(0.1)

    async def submit(self, job: dict[str, Any], timeout: float) -> int:
        """Store a job on ``JOBS``; return its stream sequence once JetStream has it.

        Retried with the same message id until ``timeout``: the bus may be
        restarting. A retry of a publish that was stored after all is a
        duplicate, which JetStream drops.

        :raises BusUnavailable: not stored within ``timeout``.
        """
        payload = json.dumps(job).encode()
        headers = {"Nats-Msg-Id": job["job"]}
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                ack = await self.js.publish(
                    JOBS_SUBJECT, payload, timeout=max(0.2, min(left, 2.0)), headers=headers
                )
                return ack.seq
            except TRANSIENT as exc:
                if time.monotonic() >= deadline:
                    raise BusUnavailable(
                        f"the bus did not store the job within {timeout:g} s ({type(exc).__name__})"
                    ) from None
                await asyncio.sleep(0.05)

    async def publish_event(self, event: dict[str, Any]) -> None:
        """Put a state-change event on the bus, without waiting for JetStream's ack.

        The ``EVENTS`` stream stores it all the same. While the connection is
        down, nats-py buffers it and sends it on reconnecting; an event can be
        lost only with the process. Events are for watching, not for
        bookkeeping: the store has the truth.
        """
        with contextlib.suppress(*TRANSIENT):
            await self.nc.publish(event_subject(event["job"]), json.dumps(event).encode())

    async def follow_events(self, callback: Callable[[dict[str, Any]], object]) -> None:
        """Call ``callback(event)`` for every event from now on (core NATS, not replayed)."""

        async def on_message(msg: Msg) -> None:
            with contextlib.suppress(ValueError):
                callback(json.loads(msg.data))

        await self.nc.subscribe(EVENTS_SUBJECTS, cb=on_message)

    async def job_consumer(self, ack_wait: float) -> JobConsumer:
        """The conductors' shared pull consumer on ``JOBS`` (made on first use)."""
        config = jsapi.ConsumerConfig(
            durable_name=CONSUMER,
            ack_policy=jsapi.AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            max_deliver=-1,
            max_ack_pending=10_000,
        )
        subscription = await self.js.pull_subscribe(
            JOBS_SUBJECT, durable=CONSUMER, stream=JOBS_STREAM, config=config
        )
        return JobConsumer(subscription)

    async def pending_jobs(self) -> int:
        """Jobs stored and not yet acked (waiting, or taken and being worked on)."""
        info = await self.js.consumer_info(JOBS_STREAM, CONSUMER)
        return info.num_pending + info.num_ack_pending

    async def close(self) -> None:
        self.closing = True
        with contextlib.suppress(*TRANSIENT):
            await self.nc.flush(timeout=2)
        await self.nc.close()


class JobConsumer:
    """The conductors' side of ``JOBS``."""

    def __init__(self, subscription: Any) -> None:
        self.subscription = subscription

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to ``batch`` jobs; none (an empty list) if none came within ``timeout``,
        or if the bus is away (it is retried at the next call)."""
        try:
            return list(await self.subscription.fetch(batch, timeout=timeout))
        except nats.errors.TimeoutError:
            return []
        except TRANSIENT as exc:
            log.info("fetch: %s", type(exc).__name__)
            await asyncio.sleep(min(timeout, 0.25))
            return []


async def ack(msg: Msg) -> None:
    """Ack a job: the bus forgets it. Lost acks only mean a redelivery, which is harmless."""
    with contextlib.suppress(*TRANSIENT, nats.errors.MsgAlreadyAckdError):
        await msg.ack()


async def still_working(msg: Msg) -> None:
    """Tell the bus a job is in progress: its ``ack_wait`` starts again."""
    with contextlib.suppress(*TRANSIENT, nats.errors.MsgAlreadyAckdError):
        await msg.in_progress()


async def _check_reachable(url: str, timeout: float) -> None:
    host_port = url.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host or "127.0.0.1", int(port or 4222)), timeout
        )
        greeting = await asyncio.wait_for(reader.readline(), timeout)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    except (OSError, asyncio.TimeoutError, ValueError) as exc:
        raise BusUnavailable(
            f"cannot reach the bus at {url} ({exc or type(exc).__name__}): start nats-server "
            "(nats-server --jetstream) or pass the right --bus; in --role all, leave --bus "
            "empty to start one"
        ) from None
    if not greeting.startswith(b"INFO "):
        raise BusUnavailable(f"{url} answered, but not as a NATS server: {greeting[:80]!r}")
