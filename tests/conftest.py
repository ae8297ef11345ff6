"""Shared fixtures: bridge's hub for the whole session, and the two hub modes.

Most cross-world tests take the ``hub_mode`` fixture and run their green
scenario through it, once with the hub owning the loop (the test body runs
as green main) and once with the hub joining a loop (the scenario runs in a
greenthread awaited from ``asyncio.run``). Process-wide states (monkey
patching, signals, fork) are tested in subprocesses instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, TypeVar

os.environ["EVENTLET_HUB"] = "bridge.hub"

import eventlet
import eventlet.hubs
import pytest

eventlet.hubs.use_hub("bridge.hub")

pytest_plugins = ["pytester"]

T = TypeVar("T")
RunInMode = Callable[..., Any]


def run_owner(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` as green main: the hub owns (and runs) its own loop."""
    return fn(*args)


def run_guest(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in a greenthread awaited from ``asyncio.run``: the hub is a guest."""

    async def main() -> T:
        return await asyncio.wait_for(eventlet.spawn(fn, *args), timeout=30)

    return asyncio.run(main())


@pytest.fixture(params=["owner", "guest"])
def hub_mode(request: pytest.FixtureRequest) -> RunInMode:
    """``run(fn, *args)`` in each hub mode; returns what ``fn`` returns."""
    return run_owner if request.param == "owner" else run_guest
