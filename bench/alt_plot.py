"""The PNGs of ``bench/alternatives.py`` (matplotlib, the ``[bench]`` extra).

``alternatives-http.png``: requests/s and p99 latency against concurrent clients, one
line per way of serving; ``alternatives-rss.png``: peak RSS of the server process against
concurrent clients; ``alternatives-conductor.png``: jobs/s and peak RSS against the number
of jobs. RSS axes are logarithmic, so that one runaway line does not flatten the others.
Colours follow the issue's numbering (threads red, eventlet today grey); several
configurations of one path share a colour and differ in their dashes. Medians, as in the
tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from alt_report import MB, median


def plot(
    http: dict[tuple[str, int], Any],
    servers: Sequence[Any],
    conductor: dict[tuple[str, int], Any],
    conductors: Sequence[Any],
    directory: Path,
) -> Iterable[Path]:
    """Draw the PNGs; yields each path written. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import NullLocator

    directory.mkdir(parents=True, exist_ok=True)
    styles = {
        1: ("tab:gray", "o"),
        2: ("tab:blue", "s"),
        3: ("tab:green", "^"),
        4: ("tab:purple", "D"),
        5: ("tab:red", "v"),
    }
    dashes = ["-", "--", ":", "-."]

    def lines(
        axis: Any,
        results: dict[tuple[str, int], Any],
        configs: Sequence[Any],
        key: str,
        scale: float,
        style_of: Any,
    ) -> None:
        sizes = sorted({size for _, size in results})
        seen: dict[Any, int] = {}
        for config in configs:
            points = [(n, median(results[(config.name, n)], key)) for n in sizes]
            points = [(n, v / scale) for n, v in points if v is not None]
            if not points:
                continue
            colour, marker = style_of(config)
            dash = dashes[seen.get(colour, 0) % len(dashes)]
            seen[colour] = seen.get(colour, 0) + 1
            xs, ys = zip(*points, strict=True)
            axis.plot(xs, ys, marker=marker, color=colour, linestyle=dash, label=config.name)
        axis.set_xscale("log")
        axis.set_xticks(sizes, [f"{n:,}" for n in sizes])
        axis.xaxis.set_minor_locator(NullLocator())  # no "2x10^1" labels between sizes
        axis.grid(True, which="both", alpha=0.3)

    def server_style(server: Any) -> tuple[str, str]:
        return styles.get(server.path, ("black", "x"))

    if http:
        figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.2))
        lines(left, http, servers, "rate", 1, server_style)
        left.set(title="Throughput", xlabel="concurrent keep-alive clients", ylabel="requests/s")
        lines(right, http, servers, "p99_ms", 1, server_style)
        right.set(title="p99 latency", xlabel="concurrent keep-alive clients", ylabel="ms")
        right.set_yscale("log")
        left.legend(fontsize=8)
        figure.tight_layout()
        yield _save(figure, directory / "alternatives-http.png", pyplot)

        figure, axis = pyplot.subplots(figsize=(6.5, 4.2))
        lines(axis, http, servers, "rss_peak", MB, server_style)
        axis.set(
            title="Peak RSS of the server process",
            xlabel="concurrent keep-alive clients",
            ylabel="MB",
        )
        _log_megabytes(axis)
        axis.legend(fontsize=8)
        figure.tight_layout()
        yield _save(figure, directory / "alternatives-rss.png", pyplot)

    if conductor:
        kinds = {
            "green": ("tab:blue", "s"),
            "asyncio": ("tab:purple", "D"),
            "threads": ("tab:red", "v"),
        }

        def conductor_style(item: Any) -> tuple[str, str]:
            if item.hub == "epolls":
                return ("tab:gray", "o")
            return kinds.get(item.mode, ("black", "x"))

        figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.2))
        lines(left, conductor, conductors, "rate", 1, conductor_style)
        left.set(title="Conductor: jobs/s", xlabel="jobs submitted at once", ylabel="jobs/s")
        lines(right, conductor, conductors, "rss_peak", MB, conductor_style)
        right.set(title="Conductor: peak RSS", xlabel="jobs submitted at once", ylabel="MB")
        _log_megabytes(right)
        left.legend(fontsize=8)
        figure.tight_layout()
        yield _save(figure, directory / "alternatives-conductor.png", pyplot)


def _log_megabytes(axis: Any) -> None:
    """A log scale with plain MB labels: one runaway line must not flatten the others."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    axis.set_yscale("log")
    low, high = axis.get_ylim()
    ticks = [t for t in (10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000) if low <= t <= high]
    axis.set_yticks(ticks)
    axis.yaxis.set_major_formatter(ScalarFormatter())
    axis.yaxis.set_minor_formatter(NullFormatter())


def _save(figure: Any, path: Path, pyplot: Any) -> Path:
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path
