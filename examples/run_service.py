"""Run the example service: ``python examples/run_service.py [--role all] [--help]``.

``--role all`` (the default) is the whole service in one process, with its
own nats-server child, a SQLite file and a simulated BMC rack under
``--state-dir``. ``--role api`` and ``--role conductor`` are the parts of a
cluster (``examples/cluster.py``), sharing ``--bus``, ``--store`` and ``--bmc``.

Stop it with SIGTERM or Ctrl-C; it finishes what it accepted first.
"""

from __future__ import annotations

import os
import sys
import warnings

os.environ.setdefault("EVENTLET_HUB", "bridge.hub")
# eventlet warns on import that it is deprecated; this service is how you
# leave it, so the warning is not news here.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from service.settings import from_command_line  # noqa: E402 (argparse only: patches nothing)

if __name__ == "__main__":
    settings = from_command_line()
    if settings.role == "conductor":
        # The legacy conductor starts as legacy services do: patch first, then import.
        import eventlet

        eventlet.monkey_patch()
    from service import app

    sys.exit(app.main(settings))
