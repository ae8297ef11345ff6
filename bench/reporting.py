"""What the bench scripts' reports share: the machine they ran on, and their tables."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any


def machine_info(packages: Iterable[str]) -> dict[str, Any]:
    """CPUs, platform, Python, the versions of ``packages`` and the load average now."""

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: version(name) for name in packages},
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def spread(values: Sequence[float]) -> str:
    """min..max relative to the median, e.g. ``-12%..+5%``."""
    if len(values) < 2:
        return "-"
    mid = statistics.median(values)
    if not mid:
        return "-"
    return f"{(min(values) / mid - 1) * 100:+.0f}%..{(max(values) / mid - 1) * 100:+.0f}%"


def ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}x"


def render(headers: list[str], rows: list[list[str]], markdown: bool, left: int = 2) -> str:
    """A plain-text table (first ``left`` columns and "notes" left-aligned) or markdown."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    aligned_left = [i < left or name == "notes" for i, name in enumerate(headers)]

    def line(row: list[str]) -> str:
        cells = [
            cell.ljust(width) if is_left else cell.rjust(width)
            for cell, width, is_left in zip(row, widths, aligned_left, strict=True)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])
