"""The service's settings: embedded defaults, overridable on the command line."""

from __future__ import annotations

import argparse
import dataclasses


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8780  # the REST API (v1 and v2); 0 picks a free port
    workers: int = 16  # conductor greenthreads
    queue_size: int = 256  # jobs accepted but not started; beyond it, POSTs wait
    nodes: int = 32  # simulated nodes, node-0 ... node-31
    bmc_delay: float = 0.002  # seconds a simulated BMC takes to answer
    bmc_timeout: float = 5.0  # eventlet.Timeout around each BMC exchange
    shutdown_timeout: float = 30.0  # seconds in-flight requests get on shutdown


def from_command_line(argv: list[str] | None = None) -> Settings:
    defaults = Settings()
    parser = argparse.ArgumentParser(description="The mixed-mode example service.")
    for field in dataclasses.fields(Settings):
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            type=type(getattr(defaults, field.name)),
            default=getattr(defaults, field.name),
        )
    return Settings(**vars(parser.parse_args(argv)))
