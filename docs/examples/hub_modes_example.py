"""Documentation example: the same green code in both hub modes.

Included in docs/hub.md; pytest runs it (``*_example.py`` is collected).
"""

import asyncio
import os

os.environ.setdefault("EVENTLET_HUB", "bridge.hub")

import eventlet


def fetch_config() -> dict[str, str]:
    """Legacy green code: blocks its greenthread, never the loop."""
    eventlet.sleep(0.01)  # stands in for green socket I/O
    return {"workers": "4"}


def test_green_main_owner_mode() -> None:
    # A legacy green main: no loop runs, so the hub makes one and runs it.
    assert fetch_config() == {"workers": "4"}


def test_async_main_guest_mode() -> None:
    # A migrated async main: the hub joins the loop asyncio.run() started.
    async def main() -> dict[str, str]:
        # eventlet's GreenThread is awaitable; the greenthread runs on this loop.
        return await eventlet.spawn(fetch_config)

    assert asyncio.run(main()) == {"workers": "4"}


def test_green_main_calls_asyncio_run_then_goes_on_green() -> None:
    eventlet.sleep(0)  # the hub is now in owner mode...

    async def new_main() -> str:
        await asyncio.sleep(0)
        return "async part done"

    # ...and green main may still hand the thread to asyncio, and come back.
    assert asyncio.run(new_main()) == "async part done"
    assert fetch_config() == {"workers": "4"}
