"""A logging handler that makes a green call, with DEBUG on: the first green call fails.

Cause ``logging-reenters-hub`` in compat/libraries.py (oslo.log's suite). Run it:

    EVENTLET_HUB=bridge.hub .venv/bin/python compat/repro/logging_reenters_hub.py

What happens on bridge.hub: the first green call makes the hub's owner loop with
``asyncio.new_event_loop()``; the selector event loop's constructor logs "Using selector:
EpollSelector" on the ``asyncio`` logger at DEBUG; the handler makes a green call (oslo.log's
PipeMutex handler lock spawns a greenthread; here, ``eventlet.sleep(0)``), which asks the
hub for its loop again while the first one is still being made: a new loop, which logs, and
so on until RecursionError. On epolls the handler's green call just runs.

Exit status 0 when the first green call works, 1 when it fails (the bug).
"""

import logging
import sys

import eventlet


class GreenHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        eventlet.sleep(0)  # any green call: a green lock, a switch, a green socket write


logging.basicConfig(level=logging.DEBUG, handlers=[GreenHandler()])
try:
    eventlet.sleep(0)  # the first green call in the process makes the hub
except RecursionError as exc:
    print(f"hub {eventlet.hubs.get_hub()!r}: first green call: RecursionError: {exc}")
    sys.exit(1)
print(f"hub {eventlet.hubs.get_hub()!r}: first green call: ok")
