"""The subprocess side: run a batch of programs on this process's hub, one JSON line each.

Run as ``python -m tests.green_programs run ...`` with ``EVENTLET_HUB`` set
(see ``__main__``). Programs run one after another on one hub, as green main
(*owner* mode) or, with ``guest``, in a greenthread awaited from
``asyncio.run`` (bridge.hub's *guest* mode). Each line is flushed as soon as
its program ends, so a batch that hangs still tells which program hung.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import time
import traceback
import warnings
from collections.abc import Iterable
from typing import Any, TextIO

from tests.green_programs._generate import GENERATOR_VERSION, Program


def _shaken(shake: int, seed: int) -> list[object]:
    """Objects kept alive while a program runs, so its objects get other ids.

    eventlet wakes ``Event`` waiters and ``Queue`` getters, and serves the
    fds of one poll, in ``id``-hash order: shifting the heap between two
    epolls runs of the same program shows where a program depends on that.
    """
    if not shake:
        return []
    rng = random.Random(seed * 7919 + shake)
    return [[None] * rng.randint(0, 8) for _ in range(rng.randint(0, 3000))]


def run_batch(programs: Iterable[Program], out: TextIO, shake: int = 0) -> None:
    """Run each program in the calling greenlet and write its result line to ``out``."""
    from tests.green_programs._interpret import hub_name, run_program

    hub = hub_name()
    # No collection pauses inside a program (they could stall it across a
    # phase); a batch's garbage is small.
    gc.collect()
    gc.disable()
    for program in programs:
        ballast = _shaken(shake, program.seed)
        start = time.perf_counter()
        line: dict[str, Any] = {"seed": program.seed, "hub": hub, "version": GENERATOR_VERSION}
        try:
            line.update(run_program(program))
        except BaseException:  # the run itself broke: report it, go on with the next
            line["crash"] = traceback.format_exc()
            if not isinstance(sys.exc_info()[1], Exception):
                raise
        line["ms"] = round((time.perf_counter() - start) * 1000, 2)
        del ballast
        out.write(json.dumps(line) + "\n")
        out.flush()
    gc.enable()


def main(programs: list[Program], *, guest: bool, use_uvloop: bool, shake: int) -> None:
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    if use_uvloop:
        import uvloop

        uvloop.install()
    import eventlet

    if not guest:
        run_batch(programs, sys.stdout, shake)
        return

    import asyncio

    async def guest_main() -> None:
        await eventlet.spawn(run_batch, programs, sys.stdout, shake)

    asyncio.run(guest_main())
