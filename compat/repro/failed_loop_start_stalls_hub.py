"""After making the hub's loop failed once, green work scheduled later never runs.

Cause ``stuck-drain-after-failed-loop`` in compat/libraries.py: the oslo.log tests that
hang (and are killed by the gate) after an earlier test hit the RecursionError of
``logging_reenters_hub.py``. Run it:

    EVENTLET_HUB=bridge.hub .venv/bin/python compat/repro/failed_loop_start_stalls_hub.py

What happens on bridge.hub: ``Hub._make_ready`` sets ``_drain_pending = True`` and then
asks ``_registration_loop()`` for the loop to ``call_soon(self._drain)`` on. When that
raises (here: the event loop policy cannot make a loop once, as with EMFILE; in oslo.log's
suite: the RecursionError), the flag stays set, no drain is ever scheduled again, and every
later spawn or switch waits forever (here the 5 s eventlet.Timeout ends the wait). On
epolls nothing comparable exists; with bridge.hub fixed, the second spawn runs.

Exit status 0 when the second spawn runs, 1 when it stalls (the bug).
"""

import asyncio
import sys

import eventlet


class FailsOncePolicy(asyncio.DefaultEventLoopPolicy):
    failures = 1

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        if FailsOncePolicy.failures:
            FailsOncePolicy.failures -= 1
            raise OSError("cannot make an event loop (simulated EMFILE)")
        return super().new_event_loop()


asyncio.set_event_loop_policy(FailsOncePolicy())
try:
    print("first spawn:", eventlet.spawn(lambda: "done").wait())
except OSError as exc:
    print(f"first spawn raised: {exc} (expected: the loop could not be made)")
gt = eventlet.spawn(lambda: "done")
with eventlet.Timeout(5, False):
    print("second spawn:", gt.wait())
    sys.exit(0)
print("second spawn: never ran (no result within 5 s)")
sys.exit(1)
