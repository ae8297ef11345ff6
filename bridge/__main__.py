"""``python -m bridge``: tools for teams migrating from eventlet to asyncio.

Commands:

* ``scan PATH [--json] [--html FILE] [--check] [--baseline FILE]``: which
  modules depend on eventlet (directly, through the project's shims and
  wrappers, or through ``monkey_patch()``), with the asyncio replacement for
  each; blocking calls in async code; the hub chosen in code; a migration
  order; the progress, and what changed since a baseline.
* ``doctor [--import MODULE] [--json] [--trace]``: the hub, versions, monkey
  patching and eventlet's pitfalls in this process, each with its fix.

Exit status: 0 on success (doctor: nothing wrong), 1 when doctor found a
warning or an error, or scan --check found a blocking call in async code,
2 on a usage error. ``python -m bridge scan --help`` (and ``doctor --help``)
lists every option.
"""

from __future__ import annotations

import sys

USAGE = (
    "usage: python -m bridge scan PATH [--json] [--html FILE] [--check] [--baseline FILE]\n"
    "       python -m bridge doctor [--import MODULE] [--json] [--trace]\n"
)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(__doc__ or USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "scan":
        from bridge._cli import _scan

        return _scan.main(rest)
    if command == "doctor":
        from bridge._cli import _doctor

        return _doctor.main(rest)
    sys.stderr.write(f"python -m bridge: unknown command {command!r}\n{USAGE}")
    return 2


def _run() -> int:
    try:
        return main()
    except BrokenPipeError:
        # The reader went away (``scan ... | head``): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush is quiet.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(_run())
