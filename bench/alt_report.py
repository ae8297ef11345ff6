"""Tables, the goal check and the plots of ``bench/alternatives.py``.

Every number shown is a median over the repetitions of one configuration at one size,
metric by metric; ratios are ratios of medians; "spread" is the min..max of requests/s
(or jobs/s) relative to its median. The goal is issue 11's: paths 2-4 at least as fast as
eventlet today (path 1) at every concurrency, and at the top concurrency at least as fast
as threads with a third of their peak RSS or less.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from reporting import ratio as _ratio
from reporting import render
from reporting import spread as _spread

SETTINGS = ("repeat", "clients", "jobs", "calls", "warmup", "duration", "timeout", "delay")
MB = 1024 * 1024
NOISE = 0.90  # the shared machine: ratios of 0.90-1.00 are "within noise" (performance.md)


def http_progress(result: dict[str, Any]) -> str:
    errors = sum(result["errors"].values())
    p99 = result["p99_ms"]
    return (
        f"{result['rate']:,.0f} req/s, p99 {'-' if p99 is None else f'{p99:.0f}'} ms,"
        f" {errors} errors, RSS {result['rss_peak'] / MB:.0f} MB,"
        f" {result['threads_peak']} threads"
    )


def conductor_progress(result: dict[str, Any]) -> str:
    return (
        f"{result['seconds']:.2f} s, {result['rate']:,.0f} jobs/s, {result['failed']} failed,"
        f" RSS {result['rss_peak'] / MB:.0f} MB, {result['threads_peak']} threads"
    )


# --------------------------------------------------------------------------- numbers


def median(cell: Any, key: str) -> float | None:
    values = [s[key] for s in cell.samples if s.get(key) is not None]
    return statistics.median(values) if values else None


def _per_request_ms(cell: Any) -> float | None:
    values = [
        s["server_cpu"] / s["requests"] * 1e3
        for s in cell.samples
        if s.get("server_cpu") is not None and s["requests"]
    ]
    return statistics.median(values) if values else None


def _cpu_share(cell: Any, name: str) -> float | None:
    values = [
        s[f"{name}_cpu"] / s["seconds"] * 100
        for s in cell.samples
        if s.get(f"{name}_cpu") is not None
    ]
    return statistics.median(values) if values else None


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _errors(cell: Any) -> str:
    kinds: dict[str, int] = {}
    for sample in cell.samples:
        for kind, count in sample.get("errors", {}).items():
            kinds[kind] = kinds.get(kind, 0) + count
    text = str(sum(kinds.values()))
    if kinds:
        text += " (" + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")"
    if cell.errors:
        text += f"; {len(cell.errors)} runs failed: {cell.errors[0][:120]}"
    return text


class Report:
    """Renders one run's results (plain text or markdown)."""

    def __init__(
        self, info: dict[str, Any], settings: dict[str, Any], elapsed: float, markdown: bool
    ) -> None:
        self.info, self.settings, self.elapsed, self.markdown = info, settings, elapsed, markdown

    def _title(self, text: str) -> str:
        return f"\n{'#### ' if self.markdown else ''}{text}\n"

    def header(self, *parts: dict[tuple[str, int], Any]) -> str:
        info, s = self.info, self.settings
        load = info.get("loadavg")
        during = sorted(
            sample["loadavg"]
            for results in parts
            for cell in results.values()
            for sample in cell.samples
            if sample.get("loadavg") is not None
        )
        packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
        items = [
            f"machine: {info['nproc']} CPUs, {info['cpu']}; {info['platform']}",
            f"{info['python']}; {packages}",
            f"repetitions {s['repeat']}; window {s['duration']:g} s after {s['warmup']:g} s"
            f" of warm-up; backend delay {s['delay'] * 1e3:g} ms; {s['calls']} calls per job;"
            f" load average at start {', '.join(f'{x:.2f}' for x in load) if load else '?'};"
            f" {self.elapsed / 60:.1f} min in all",
        ]
        if during:
            items.append(
                f"1-minute load average as each measurement started: min {during[0]:.2f},"
                f" median {statistics.median(during):.2f}, max {during[-1]:.2f}"
            )
        return "\n".join(f"- {item}" if self.markdown else item for item in items)

    # -- part 1 -----------------------------------------------------------------

    def http_tables(
        self, results: dict[tuple[str, int], Any], servers: Sequence[Any], baselines: Sequence[str]
    ) -> str:
        clients_list = sorted({size for _, size in results})
        known = {s.name for s in servers}
        bases = [b for b in baselines if b in known]
        speed_rows, resource_rows = [], []
        for clients in clients_list:
            base_rate = {b: median(results[(b, clients)], "rate") for b in bases}
            base_rss = {b: median(results[(b, clients)], "rss_peak") for b in bases}
            for server in servers:
                cell = results[(server.name, clients)]
                rate = median(cell, "rate")
                label = f"({server.path}) {server.name}"
                speed_rows.append(
                    [f"{clients:,}", label, _num(rate)]
                    + [_ratio(rate, base_rate[b]) for b in bases]
                    + [
                        _spread([s["rate"] for s in cell.samples]),
                        _num(median(cell, "p50_ms")),
                        _num(median(cell, "p99_ms")),
                        _errors(cell),
                    ]
                )
                rss = median(cell, "rss_peak")
                notes = []
                overflow = median(cell, "listen_overflows")
                if overflow:
                    notes.append(f"listen overflows {overflow:.0f}")
                for how in ("header", "silently"):
                    closed = [s.get("closed_idle", {}).get(how, 0) for s in cell.samples]
                    if closed and (count := statistics.median(closed)):
                        say = "with Connection: close" if how == "header" else "silently"
                        notes.append(f"closed {count:,.0f} keep-alive connections {say}")
                connected = median(cell, "connected")
                if connected is not None and connected < clients:
                    notes.append(f"{connected:,.0f} of {clients:,} connected at the window's start")
                connect = median(cell, "connect_seconds")
                if connect is not None and connect > 1:
                    notes.append(f"connecting took {connect:.1f} s")
                resource_rows.append(
                    [
                        f"{clients:,}",
                        label,
                        _num(None if rss is None else rss / MB, 1),
                        _num(None if (idle := median(cell, "rss_idle")) is None else idle / MB, 1),
                    ]
                    + [_ratio(rss, base_rss[b]) for b in bases if b.startswith("cheroot")]
                    + [
                        _num(median(cell, "threads_peak")),
                        _num(_per_request_ms(cell), 3),
                        _num(_cpu_share(cell, "server")),
                        _num(_cpu_share(cell, "backend")),
                        _num(_cpu_share(cell, "load")),
                        "; ".join(notes),
                    ]
                )
        vs = [f"vs {b}" for b in bases]
        speed = ["clients", "path", "req/s", *vs, "spread", "p50 ms", "p99 ms", "errors"]
        rss_vs = [f"RSS vs {b}" for b in bases if b.startswith("cheroot")]
        resources = [
            "clients",
            "path",
            "peak RSS MB",
            "idle RSS MB",
            *rss_vs,
            "threads",
            "CPU ms/req",
            "server CPU %",
            "backend CPU %",
            "load CPU %",
            "notes",
        ]
        n = self.settings["repeat"]
        return (
            self._title(f"HTTP: throughput and latency (median of {n})")
            + "\n"
            + render(speed, speed_rows, self.markdown)
            + "\n"
            + self._title(f"HTTP: memory, threads and CPU of the server process (median of {n})")
            + "\n"
            + render(resources, resource_rows, self.markdown)
            + "\n"
        )

    def http_goal(self, results: dict[tuple[str, int], Any], servers: Sequence[Any]) -> str:
        clients_list = sorted({size for _, size in results})
        names = {s.name for s in servers}
        rows = []
        if "eventlet-epolls" in names:
            for server in servers:
                if server.path not in (2, 3, 4):
                    continue
                for clients in clients_list:
                    rate = median(results[(server.name, clients)], "rate")
                    base = median(results[("eventlet-epolls", clients)], "rate")
                    ratio = None if rate is None or not base else rate / base
                    rows.append(
                        [
                            server.name,
                            f"{clients:,}",
                            "as fast as (1) eventlet-epolls",
                            _ratio(rate, base),
                            "-",
                            _verdict(ratio, None),
                        ]
                    )
        top = clients_list[-1] if clients_list else None
        threads = [s for s in servers if s.path == 5]
        for server in servers:
            if server.path not in (2, 3, 4) or top is None:
                continue
            cell = results[(server.name, top)]
            for other in threads:
                base = results[(other.name, top)]
                rate, base_rate = median(cell, "rate"), median(base, "rate")
                rss, base_rss = median(cell, "rss_peak"), median(base, "rss_peak")
                speed = None if rate is None or not base_rate else rate / base_rate
                memory = None if rss is None or not base_rss else rss / base_rss
                rows.append(
                    [
                        server.name,
                        f"{top:,}",
                        f"as fast as {other.name}, RSS <= 1/3",
                        _ratio(rate, base_rate),
                        _ratio(rss, base_rss),
                        _verdict(speed, memory),
                    ]
                )
        headers = ["path", "clients", "goal", "req/s ratio", "RSS ratio", "verdict"]
        return (
            self._title("HTTP: the goal, path by path")
            + "\n"
            + render(headers, rows, self.markdown)
            + "\n"
        )

    # -- part 2 -----------------------------------------------------------------

    def conductor_table(
        self,
        results: dict[tuple[str, int], Any],
        conductors: Sequence[Any],
        baselines: Sequence[str],
    ) -> str:
        known = {c.name for c in conductors}
        bases = [b for b in baselines if b in known]
        rows = []
        for jobs in sorted({size for _, size in results}):
            base_rate = {b: median(results[(b, jobs)], "rate") for b in bases}
            for conductor in conductors:
                cell = results[(conductor.name, jobs)]
                rate, rss = median(cell, "rate"), median(cell, "rss_peak")
                growth = [(s["rss_peak"] - s["rss_before"]) for s in cell.samples]
                grown = statistics.median(growth) if growth else None
                failed = sum(s["failed"] for s in cell.samples)
                first = next((s["first_failure"] for s in cell.samples if s["first_failure"]), "")
                errors = f"{failed}" + (f" ({first[:80]})" if first else "")
                if cell.errors:
                    errors += f"; {len(cell.errors)} runs failed: {cell.errors[0][:120]}"
                rows.append(
                    [f"{jobs:,}", conductor.name, _num(median(cell, "seconds"), 3), _num(rate)]
                    + [_ratio(rate, base_rate[b]) for b in bases]
                    + [
                        _spread([s["rate"] for s in cell.samples]),
                        _num(median(cell, "p50_ms")),
                        _num(median(cell, "p99_ms")),
                        errors,
                        _num(None if rss is None else rss / MB, 1),
                        _num(None if grown is None else grown / MB, 1),
                        _num(None if grown is None else grown / jobs / 1024, 1),
                        _num(median(cell, "threads_peak")),
                        _num(median(cell, "cpu_seconds"), 2),
                    ]
                )
        headers = [
            "jobs",
            "config",
            "wall s",
            "jobs/s",
            *[f"vs {b}" for b in bases],
            "spread",
            "job p50 ms",
            "job p99 ms",
            "failed",
            "peak RSS MB",
            "RSS growth MB",
            "KB/job",
            "threads",
            "CPU s",
        ]
        n, calls = self.settings["repeat"], self.settings["calls"]
        delay = self.settings["delay"] * 1e3
        title = f"Conductor: N jobs of {calls} backend calls of {delay:g} ms (median of {n})"
        return self._title(title) + "\n" + render(headers, rows, self.markdown) + "\n"


def _verdict(speed: float | None, memory: float | None) -> str:
    if speed is None:
        return "no data"
    parts = []
    if speed >= 1.0:
        parts.append("speed met")
    elif speed >= NOISE:
        parts.append("speed within noise")
    else:
        parts.append("speed NOT met")
    if memory is not None:
        parts.append("memory met" if memory <= 1 / 3 else "memory NOT met")
    return ", ".join(parts)
