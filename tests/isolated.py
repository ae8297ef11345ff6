"""Scenarios in a fresh interpreter: for what cannot be undone inside the test process.

Monkey patching, signal handlers, ``atexit`` hooks, logging configuration,
forked children and the hub of the main thread are process-wide: a test sets
them up in a small program of its own, run with ``EVENTLET_HUB=bridge.hub``,
and asserts on the program's exit code and printed lines. Every wait inside a
program is bounded (``eventlet.Timeout``, ``asyncio.wait_for``), and so is the
program (``TIMEOUT``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import pytest

__all__ = ("PRELUDE", "TIMEOUT", "assert_prints", "run_program")

TIMEOUT = 30  # seconds: the bound on each program

# Prepended to every program. It imports nothing that monkey patching cares
# about: the helpers import eventlet and asyncio when they are called.
PRELUDE = '''
import sys
import warnings

warnings.filterwarnings("ignore", message=r"\\s*Eventlet is deprecated")


def green_echo(payload=b"ping"):
    """A TCP echo between two greenthreads on 127.0.0.1 (call it green)."""
    import eventlet

    server = eventlet.listen(("127.0.0.1", 0))

    def serve():
        conn, _ = server.accept()
        conn.sendall(conn.recv(64))
        conn.close()

    with eventlet.Timeout(10):
        gt = eventlet.spawn(serve)
        client = eventlet.connect(server.getsockname())
        client.sendall(payload)
        reply = client.recv(64)
        gt.wait()
    client.close()
    server.close()
    assert reply == payload, reply


def run_guest(fn, *args):
    """Run fn(*args) in a greenthread awaited by asyncio.run (the hub is a guest)."""
    import asyncio

    import eventlet

    async def main():
        return await asyncio.wait_for(eventlet.spawn(fn, *args), 20)

    return asyncio.run(main())


def kill_soon(signum, delay=0.05):
    """Send signum to this process from a real OS thread, after a real delay."""
    import os
    import signal

    from eventlet import patcher

    if signum == signal.SIGINT and signal.getsignal(signum) == signal.SIG_IGN:
        # Started as a background job of a non-interactive shell (a CI
        # runner's `cmd &`), the interpreter inherits SIGINT ignored and
        # installs no KeyboardInterrupt handler; these programs stand for a
        # service in a terminal, whose Ctrl-C raises.
        signal.signal(signum, signal.default_int_handler)

    real_threading = patcher.original("threading")
    real_time = patcher.original("time")

    def kill():
        real_time.sleep(delay)
        os.kill(os.getpid(), signum)

    thread = real_threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


class Ticker:
    """A greenthread counting rounds of eventlet.sleep(0.001)."""

    def __init__(self):
        import eventlet

        self.count = 0
        self._waiters = []
        self.gt = eventlet.spawn(self._run)

    def _run(self):
        import eventlet

        while True:
            eventlet.sleep(0.001)
            self.count += 1
            for waiter in [w for w in self._waiters if self.count >= w[0]]:
                self._waiters.remove(waiter)
                waiter[1]()

    def notify_after(self, ticks, callback):
        """Call callback() from the ticker once it has ticked `ticks` more times."""
        self._waiters.append((self.count + ticks, callback))

    def wait(self, ticks=5):
        """Green wait (bounded) until the ticker has advanced."""
        import eventlet
        import eventlet.event

        done = eventlet.event.Event()
        self.notify_after(ticks, done.send)
        with eventlet.Timeout(10):
            done.wait()

    async def wait_async(self, ticks=5):
        """asyncio wait (bounded) until the ticker has advanced."""
        import asyncio

        done = asyncio.Event()
        self.notify_after(ticks, done.set)
        await asyncio.wait_for(done.wait(), 10)
'''


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _report(problem: str, code: str, stdout: str, stderr: str) -> str:
    return f"{problem}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- program ---\n{code}"


def run_program(
    body: str, *, timeout: float = TIMEOUT, **params: object
) -> subprocess.CompletedProcess[str]:
    """Run PRELUDE, ``NAME = value`` for each param, then body, in a fresh interpreter.

    Fails the test, showing the program's output, unless it exits 0 within
    ``timeout`` seconds.
    """
    assigns = "".join(f"{name} = {value!r}\n" for name, value in params.items())
    code = PRELUDE + "\n" + assigns + textwrap.dedent(body)
    env = {**os.environ, "EVENTLET_HUB": "bridge.hub", "PYTHONUNBUFFERED": "1"}
    # An empty cwd, as `python -c` puts the cwd first on sys.path.
    try:
        with tempfile.TemporaryDirectory() as cwd:
            proc = subprocess.run(
                [sys.executable, "-c", code],
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
    except subprocess.TimeoutExpired as exc:
        problem = f"timed out after {timeout} s"
        stdout, stderr = _text(exc.stdout), _text(exc.stderr)
    else:
        problem = f"exit code {proc.returncode}" if proc.returncode else ""
        stdout, stderr = proc.stdout, proc.stderr
    if problem:
        pytest.fail(_report(problem, code, stdout, stderr), pytrace=False)
    return proc


def assert_prints(
    body: str,
    expected: list[str],
    *,
    prefixes: tuple[str, ...] = (),
    timeout: float = TIMEOUT,
    **params: object,
) -> subprocess.CompletedProcess[str]:
    """Run the program and check its stdout lines (those starting with a prefix, if given)."""
    proc = run_program(body, timeout=timeout, **params)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(prefixes or "")]
    if lines != expected:
        problem = f"printed {lines!r}\nexpected {expected!r}"
        pytest.fail(_report(problem, proc.args[2], proc.stdout, proc.stderr), pytrace=False)
    return proc
