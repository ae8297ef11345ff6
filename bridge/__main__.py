"""``python -m bridge``: tools for teams migrating from eventlet to asyncio.

Commands:

* ``scan PATH [--json] [--html FILE]``: which modules use which eventlet APIs,
  with the asyncio replacement for each; the migration's progress.
* ``doctor [--import MODULE] [--json]``: the hub, versions, monkey patching and
  eventlet's pitfalls in this process, each with its fix.

Exit status: 0 on success (doctor: nothing wrong), 1 when doctor found a
warning or an error, 2 on a usage error.
"""

from __future__ import annotations

import sys

USAGE = (
    "usage: python -m bridge scan PATH [--json] [--html FILE]\n"
    "       python -m bridge doctor [--import MODULE] [--json]\n"
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


if __name__ == "__main__":
    sys.exit(main())
