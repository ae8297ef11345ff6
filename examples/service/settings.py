"""The service's settings: embedded defaults, overridable on the command line.

Every process of the service takes the same options; ``--role`` says which
part it runs. The defaults make ``--role all`` a whole service with nothing
else installed: its own nats-server child, a SQLite file and a simulated
rack of BMCs, all under ``--state-dir``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

ROLES = ("all", "api", "conductor", "bmc")


@dataclasses.dataclass(frozen=True)
class Settings:
    role: str = "all"
    host: str = "127.0.0.1"
    port: int = 8780
    reuse_port: bool = False
    bus: str = ""
    store: str = ""
    state_dir: str = str(
        Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        / "bridge-example-service"
    )
    bmc: str = ""
    name: str = ""
    workers: int = 16
    nodes: int = 32
    bmc_delay: float = 0.002
    bmc_timeout: float = 5.0
    ack_wait: float = 10.0
    publish_timeout: float = 5.0
    shutdown_timeout: float = 30.0
    max_body: int = 16384
    stats_interval: float = 0.0

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir).resolve()

    @property
    def process_name(self) -> str:
        """How this process names itself in the store and in logs (``--name``)."""
        return self.name or f"{self.role}-{os.getpid()}"


HELP = {
    "role": "which part this process runs: the API, a conductor, both (all), or the "
    "simulated BMC rack",
    "host": "address to listen on",
    "port": "port of the REST API (v1 and v2), or of the BMC rack; 0 picks a free one",
    "reuse_port": "listen with SO_REUSEPORT, so that several API processes share the port",
    "bus": "NATS URL (nats://host:port); empty in role all: start a nats-server child",
    "store": "SQLAlchemy URL of the database (sqlite:///file or postgresql://user@host/db); "
    "empty: a SQLite file in --state-dir",
    "state_dir": "where the embedded nats-server and SQLite keep their files",
    "bmc": "address of the BMC rack (host:port); empty in role all: a simulated rack "
    "in this process",
    "name": "this process's name in the store and in its messages; empty: <role>-<pid>",
    "workers": "conductor greenthreads",
    "nodes": "nodes enrolled at start if the store has none: node-0, node-1, ...",
    "bmc_delay": "seconds a simulated BMC takes to answer",
    "bmc_timeout": "eventlet.Timeout around each BMC exchange, seconds",
    "ack_wait": "seconds the bus waits for a conductor's ack before it redelivers a job "
    "(a conductor working on a job keeps telling the bus it is alive)",
    "publish_timeout": "seconds the API waits for the bus to store a job before it answers 503",
    "shutdown_timeout": "seconds requests and jobs in flight get on shutdown",
    "max_body": "largest request body the API reads, bytes (413 beyond)",
    "stats_interval": "print a 'stats {json}' line every this many seconds (fds, memory, "
    "greenlets, tasks); 0: never",
}


def from_command_line(argv: list[str] | None = None) -> Settings:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        description="The mixed-mode example service.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for field in dataclasses.fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=HELP[field.name])
        elif field.name == "role":
            parser.add_argument(flag, choices=ROLES, default=default, help=HELP[field.name])
        else:
            parser.add_argument(flag, type=type(default), default=default, help=HELP[field.name])
    settings = Settings(**vars(parser.parse_args(argv)))
    if settings.role in ("api", "conductor") and not settings.bus:
        parser.error(f"--role {settings.role} needs --bus nats://host:port (the shared bus)")
    if settings.role in ("api", "conductor") and not settings.bmc:
        parser.error(f"--role {settings.role} needs --bmc host:port (the shared BMC rack)")
    if settings.role in ("api", "conductor") and not settings.store:
        parser.error(
            f"--role {settings.role} needs --store URL (the shared database; "
            "a SQLite file works: sqlite:////path/to/service.db)"
        )
    return settings


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)
