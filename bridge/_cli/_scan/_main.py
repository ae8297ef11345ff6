"""The command line of ``python -m bridge scan``.

Exit status: 0; 1 with ``--check`` when async code holds a blocking call
(with ``--baseline``: a blocking call the baseline did not have); 2 on a
usage error (a path that does not exist, a baseline that is not a scan's
JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from bridge._cli._scan._html import write_html
from bridge._cli._scan._report import compare
from bridge._cli._scan._run import scan
from bridge._cli._scan._text import write_text

EPILOG = """\
exit status: 0; 1 with --check when async code holds a blocking call (with
--baseline: one the baseline did not have); 2 on a usage error.
A '# bridge: ok' comment on a line silences the lint for that line.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bridge scan",
        description="Which modules still use eventlet (directly, through the project's own "
        "shims and wrappers, or through monkey_patch()), what blocks the loop in async code, "
        "and an order to migrate in.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", type=Path, help="a source tree or a .py file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write an HTML page")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if async code holds a blocking call (new since --baseline, if given)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="an earlier --json output: report what changed since",
    )
    patched = parser.add_mutually_exclusive_group()
    patched.add_argument(
        "--patched",
        dest="patched",
        action="store_const",
        const=True,
        help="count stdlib calls made green by monkey_patch() even if the tree does not "
        "use eventlet itself (a library run under patched services)",
    )
    patched.add_argument(
        "--no-patched",
        dest="patched",
        action="store_const",
        const=False,
        help="never count them (default: count them when the tree uses eventlet)",
    )
    parser.add_argument(
        "--source-url",
        metavar="TEMPLATE",
        help="links of the HTML page to source lines, e.g. "
        "'https://git.example.org/nova/src/{path}#L{line}' (default: file:// links)",
    )
    return parser


def main(args: list[str], out: TextIO = sys.stdout) -> int:
    parser = _parser()
    options = parser.parse_args(args)
    if not options.path.exists():
        parser.error(f"{options.path}: no such file or directory")
    baseline = None
    if options.baseline is not None:
        try:
            baseline = json.loads(options.baseline.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            parser.error(f"--baseline {options.baseline}: {exc}")
    progress = sys.stderr if sys.stderr.isatty() else None
    report = scan(options.path, progress, patched=options.patched)
    if baseline is not None:
        try:
            report.since = compare(report, baseline)
        except ValueError as exc:
            parser.error(f"--baseline {options.baseline}: {exc}")
    if options.json:
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        write_text(report, out)
    if options.html is not None:
        with options.html.open("w", encoding="utf-8") as page:
            write_html(report, page, source_url=options.source_url)
    if options.check:
        if report.since is not None:
            failing = len(report.since["new_blocking"])
        else:
            failing = len(report.blocking)
        if failing:
            sys.stderr.write(
                f"bridge scan --check: {failing} blocking call(s) in async code"
                f"{' new since the baseline' if report.since is not None else ''}; "
                "fix them, or mark a line '# bridge: ok'\n"
            )
            return 1
    return 0
