"""A mixed-mode service on real parts: an OpenStack service halfway through its migration.

A bare-metal power service (think Ironic's power interface): clients ask
for a node to be powered on or off; a conductor carries the job out against
the node's BMC; every state change goes out on the bus. Part of it is
migrated, part is legacy; it runs as one process or as many, on a real
bus (NATS with JetStream) and a real database (SQLite or PostgreSQL):

* ``api`` (migrated): the v2 REST API, aiohttp handlers, SQLAlchemy's
  asyncio extension, nats-py. A job is accepted (202) once the store and
  JetStream both have it.
* ``legacy_api`` (legacy): the v1 API, a WSGI application doing green socket
  I/O and sync SQLAlchemy, served by the same aiohttp server through
  :func:`bridge.wsgi.handler`.
* ``conductor`` (legacy): a GreenPool of greenthreads taking jobs from
  JetStream with the asyncio-only nats-py through :func:`bridge.await_`,
  talking to BMCs over green sockets under ``eventlet.Timeout``, recording
  outcomes with sync SQLAlchemy sessions, acking only then.
* ``bus`` (migrated): the NATS client: streams, subjects, the durable consumer.
* ``store`` (both): the schema, and SQLAlchemy in both worlds.
* ``bmc`` (legacy): the BMC protocol, its green client and a green simulator
  of a rack of BMCs (the hardware stand-in).
* ``natsd``: a nats-server child process, for a service that runs alone.
* ``app``: each role's wiring (``--role all|api|conductor|bmc``), and the
  graceful shutdown on SIGTERM/SIGINT that loses nothing accepted.
* ``stats``: what each process holds, for the soak.

Run it with ``python examples/run_service.py`` (defaults in ``settings``);
``make demo`` loads one process and sends SIGTERM in the middle, ``make
demo-cluster`` runs a cluster (``examples/cluster.py``). The whole story,
with a picture: docs/example-service.md.
"""
