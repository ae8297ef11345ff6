"""The service's settings: embedded defaults, overridable on the command line."""

from __future__ import annotations

import argparse
import dataclasses


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8780
    workers: int = 16
    queue_size: int = 256
    nodes: int = 32
    bmc_delay: float = 0.002
    bmc_timeout: float = 5.0
    shutdown_timeout: float = 30.0


HELP = {
    "host": "address to listen on",
    "port": "port of the REST API (v1 and v2); 0 picks a free one",
    "workers": "conductor greenthreads",
    "queue_size": "jobs accepted but not started; beyond that, POSTs wait for room",
    "nodes": "simulated nodes: node-0, node-1, ...",
    "bmc_delay": "seconds a simulated BMC takes to answer",
    "bmc_timeout": "eventlet.Timeout around each BMC exchange, seconds",
    "shutdown_timeout": "seconds requests in flight get on shutdown",
}


def from_command_line(argv: list[str] | None = None) -> Settings:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        description="The mixed-mode example service.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for field in dataclasses.fields(Settings):
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            type=type(getattr(defaults, field.name)),
            default=getattr(defaults, field.name),
            help=HELP[field.name],
        )
    return Settings(**vars(parser.parse_args(argv)))
