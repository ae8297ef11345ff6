"""Run the example service: ``python examples/run_service.py [--port 8780] [--help]``.

Stop it with SIGTERM or Ctrl-C; it finishes what it accepted first.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings

os.environ.setdefault("EVENTLET_HUB", "bridge.hub")
# eventlet warns on import that it is deprecated; this service is how you
# leave it, so the warning is not news here.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

from service import app, settings  # noqa: E402

if __name__ == "__main__":
    sys.exit(asyncio.run(app.serve(settings.from_command_line(), sys.stdout)))
