"""The blocking detector: a stalled loop is reported with the culprit's stack."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap

import eventlet
import pytest
from eventlet import patcher

import bridge

from .conftest import RunInMode

real_sleep = patcher.original("time").sleep
BOUND = 10


def blocking_green_code() -> None:
    real_sleep(0.4)  # an unpatched sleep: holds the loop


async def blocking_async_code() -> None:
    real_sleep(0.4)


def stall_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bridge.blocking"]


def test_green_code_holding_the_loop_is_reported_with_its_stack(
    hub_mode: RunInMode, caplog: pytest.LogCaptureFixture
) -> None:
    def scenario() -> None:
        detector = bridge.detect_blocking(0.1)
        try:
            eventlet.sleep(0.05)  # the detector is up and beating
            eventlet.spawn(blocking_green_code).wait()
            eventlet.sleep(0.15)  # the watchdog has looked at least once since
        finally:
            detector.stop()

    with caplog.at_level(logging.WARNING, logger="bridge.blocking"):
        hub_mode(scenario)
    records = stall_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert "blocking_green_code" in records[0].stack  # type: ignore[attr-defined]
    assert "green code" in records[0].getMessage()


def test_a_task_holding_the_loop_is_named(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        detector = bridge.detect_blocking(0.1)
        try:
            await asyncio.sleep(0.05)
            await asyncio.create_task(blocking_async_code(), name="the-culprit")
            await asyncio.sleep(0.15)
        finally:
            detector.stop()

    with caplog.at_level(logging.WARNING, logger="bridge.blocking"):
        asyncio.run(asyncio.wait_for(main(), BOUND))
    records = stall_records(caplog)
    assert len(records) == 1
    assert "the-culprit" in records[0].getMessage()
    assert "blocking_async_code" in records[0].stack  # type: ignore[attr-defined]


def test_a_busy_but_healthy_loop_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        detector = bridge.detect_blocking(0.1)
        try:
            spinners = [eventlet.spawn(lambda: [eventlet.sleep(0) for _ in range(3000)])]
            for _ in range(3000):
                await asyncio.sleep(0)
            for spinner in spinners:
                await spinner
        finally:
            detector.stop()

    with caplog.at_level(logging.WARNING, logger="bridge.blocking"):
        asyncio.run(asyncio.wait_for(main(), BOUND))
    assert stall_records(caplog) == []


def test_bad_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        bridge.detect_blocking(0)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_environment_variable_turns_it_on(loop: str) -> None:
    program = textwrap.dedent(
        """
        import logging, sys, eventlet
        if sys.argv[1] == "uvloop":
            import uvloop
            uvloop.install()
        from eventlet import patcher
        logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
        eventlet.sleep(0.05)
        def culprit():
            patcher.original("time").sleep(0.3)
        eventlet.spawn(culprit).wait()
        eventlet.sleep(0.1)
        """
    )
    env = dict(os.environ, EVENTLET_HUB="bridge.hub", BRIDGE_BLOCKING_THRESHOLD="0.1")
    result = subprocess.run(
        [sys.executable, "-c", program, loop], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "bridge.blocking event loop blocked" in result.stderr
    assert "culprit" in result.stderr
