"""``python -m bridge doctor``: is this process set up for a safe migration?

Run it in a service's environment, with ``--import MODULE`` to import the
service first (its monkey patching, threads, locks and greenthreads then
exist). It reports the hub and its mode, versions, which patches eventlet
applied (the names ``scan`` uses too: :mod:`bridge._cli._patches`), and the
pitfalls of eventlet's best practices, each with a severity and the fix.
Text by default, ``--json`` for the same as JSON. Exit status: 0 when
nothing is wrong, 1 when there is a warning or an error, 2 on a usage error
(including a module that fails to import).

The checks, by module: ``_process`` (hub, patching order, native threads,
asyncio holding green modules, backdoors), ``_locks`` (native locks and
queues made before the patch), ``_libraries`` (C database drivers, a
subprocess that is not green), ``_hubcall`` (who chose another hub);
``_main`` runs them.
"""

from bridge._cli._doctor._finding import Finding as Finding
from bridge._cli._doctor._main import diagnose as diagnose
from bridge._cli._doctor._main import main as main
from bridge._cli._doctor._process import asyncio_native as _asyncio_native  # noqa: F401

__all__ = ("Finding", "diagnose", "main")
