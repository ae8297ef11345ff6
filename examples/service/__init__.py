"""A mixed-mode service: the shape of an OpenStack service halfway through its migration.

A bare-metal power service (think Ironic's power interface): clients ask for
a node to be powered on or off; a conductor carries the job out against the
node's BMC; an event is published when it is done. Part of it is migrated,
part is legacy, all of it runs on one asyncio loop in one thread:

* ``api`` (migrated): the v2 REST API, aiohttp handlers. A power request
  becomes a job on a :class:`bridge.Queue` (``await jobs.put(job)``) and is
  answered 202 at once.
* ``legacy_api`` (legacy): the v1 API, a WSGI application doing green socket
  I/O, served by the same aiohttp server through :func:`bridge.wsgi.handler`.
* ``conductor`` (legacy): a GreenPool of greenthreads taking jobs from the
  green face of the same queue (``jobs.green.get()``), talking to BMCs over
  green sockets under ``eventlet.Timeout``, and publishing events through an
  asyncio-only client library with :func:`bridge.await_`.
* ``bmc`` (legacy): the BMC protocol, its green client and a green simulator
  of a rack of BMCs (so the service runs with nothing else installed).
* ``events`` (migrated): the asyncio-only event-bus client, and an in-process
  sink standing in for the message bus.
* ``app``: wiring, and the graceful shutdown on SIGTERM/SIGINT that loses no
  accepted request and no accepted job.

Run it with ``python examples/run_service.py`` (defaults in ``settings``) and
load it with ``python examples/loadgen.py``; ``make demo`` does both and sends
SIGTERM in the middle.
"""
