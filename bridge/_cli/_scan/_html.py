"""The scan as one self-contained HTML page a team can share.

A progress bar, the module graph drawn as SVG (green / mixed / async nodes,
laid out in layers: a module sits right of the modules it imports), and
sortable tables (click a header) of the modules, the blocking calls in async
code, the hub selections and the migration order; every finding links to
its source line. No external files: the style and the sorting script are
inline, and the page works without the script (it only sorts).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TextIO

from bridge._cli._scan._report import ModuleReport, ScanReport

COLORS = {"green": "#2e9e4f", "mixed": "#d99a1e", "async": "#3b6fd6"}
GRAPH_LIMIT = 300  # nodes drawn; the heaviest are kept (every shim is)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0;cursor:pointer;user-select:none}th:after{content:" \\2195";color:#999}
.bar{background:#e5e5e5;width:40em;height:1.4em;border-radius:3px;overflow:hidden}
.fill{background:#3b6fd6;height:100%}
.s-green{color:#2e9e4f;font-weight:bold}.s-mixed{color:#b07a10;font-weight:bold}
.s-async{color:#3b6fd6;font-weight:bold}
.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em;border-radius:50%}
.graph{border:1px solid #ccc;overflow:auto;max-height:48em;max-width:100%}
code{font-size:90%}
"""

_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var down = th.dataset.dir !== "down"; th.dataset.dir = down ? "down" : "up";
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.v || a.cells[column].textContent;
        var y = b.cells[column].dataset.v || b.cells[column].textContent;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return down ? -c : c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
document.body.dataset.ready = "1";
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


class _Links:
    def __init__(self, root: str, template: str | None) -> None:
        base = Path(root)
        self.base = base if base.is_dir() else base.parent
        self.template = template

    def url(self, path: str, line: int = 0) -> str:
        if self.template:
            return self.template.format(path=path.replace(os.sep, "/"), line=line)
        absolute = (self.base / path).absolute() if not Path(path).is_absolute() else Path(path)
        return absolute.as_uri() + (f"#L{line}" if line else "")

    def a(self, path: str, line: int = 0, text: str | None = None) -> str:
        shown = text if text is not None else (f"{path}:{line}" if line else path)
        return f"<a href='{_e(self.url(path, line))}'>{_e(shown)}</a>"


def _table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(rows)
    return f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _graph(report: ScanReport) -> str:
    """An SVG of the non-``other`` modules, in layers by import depth."""
    nodes = [m for m in report.modules if m.status != "other"]
    if len(nodes) > GRAPH_LIMIT:
        nodes.sort(key=lambda m: (m.role != "shim", -m.weight.get("eventlet_sites", 0), -m.lines))
        nodes = nodes[:GRAPH_LIMIT]
    by_path = {m.path: m for m in nodes}
    depth: dict[str, int] = {}

    def layer(path: str, seen: frozenset[str]) -> int:
        if path in depth:
            return depth[path]
        deps = [d for d in by_path[path].deps if d in by_path and d not in seen]
        value = 1 + max((layer(d, seen | {path}) for d in deps), default=-1)
        depth[path] = value
        return value

    for m in nodes:
        layer(m.path, frozenset())
    columns: dict[int, list[ModuleReport]] = {}
    for m in nodes:
        columns.setdefault(depth[m.path], []).append(m)
    width, height = 190, 22
    place: dict[str, tuple[int, int]] = {}
    for column, members in columns.items():
        for row, m in enumerate(sorted(members, key=lambda m: m.path)):
            place[m.path] = (20 + column * width, 20 + row * height)
    w = 40 + width * (max(columns, default=0) + 1)
    h = 40 + height * max((len(members) for members in columns.values()), default=1)
    edges = []
    for m in nodes:
        x1, y1 = place[m.path]
        for dep in m.deps:
            if dep in place:
                x2, y2 = place[dep]
                edges.append(f"<line x1='{x1}' y1='{y1}' x2='{x2 + 8}' y2='{y2}'/>")
    circles = []
    for m in nodes:
        x, y = place[m.path]
        label = m.path.replace(os.sep, "/").rsplit("/", 2)
        short = "/".join(label[-2:]) if len(label) > 1 else label[0]
        radius = 7 if m.role == "shim" else 5
        stroke = " stroke='#000' stroke-width='2'" if m.role == "shim" else ""
        circles.append(
            f"<g class='node {m.status}'><title>{_e(m.path)} [{m.status}, {m.kind}"
            f"{', ' + m.role if m.role else ''}]</title>"
            f"<circle cx='{x}' cy='{y}' r='{radius}' fill='{COLORS[m.status]}'{stroke}/>"
            f"<text x='{x + 10}' y='{y + 4}' font-size='11'>{_e(short[-26:])}</text></g>"
        )
    note = (
        f"<p>The {GRAPH_LIMIT} heaviest of {sum(1 for m in report.modules if m.status != 'other')} "
        "modules are drawn.</p>"
        if len(nodes) == GRAPH_LIMIT
        else ""
    )
    return (
        f"{note}<div class='graph'><svg xmlns='http://www.w3.org/2000/svg' width='{w}' "
        f"height='{h}' id='graph'><g stroke='#999' stroke-opacity='.35'>{''.join(edges)}</g>"
        f"{''.join(circles)}</svg></div>"
    )


def write_html(report: ScanReport, out: TextIO, source_url: str | None = None) -> None:
    """Write the page.

    :param source_url: a template with ``{path}`` and ``{line}`` for the
        links to source lines; None links to the files (``file://``).
    """
    links = _Links(report.root, source_url)
    totals = report.totals()
    pct = report.progress() * 100
    modules = []
    for m in report.modules:
        if m.status == "other":
            continue
        first = min((n for lines in m.uses.values() for n in lines), default=0)
        first = first or (m.shim_uses[0].line if m.shim_uses else 0)
        w = m.weight
        modules.append(
            f"<tr class='{m.status}'><td>{links.a(m.path, first, m.path)}</td>"
            f"<td class='s-{m.status}'>{m.status}</td><td>{_e(', '.join(m.kinds) or '-')}</td>"
            f"<td>{_e(m.role or '-')}</td><td>{m.lines}</td><td>{w.get('eventlet_sites', 0)}</td>"
            f"<td>{w.get('implicit_sites', 0)}</td><td>{m.users}</td>"
            f"<td>{_e(', '.join(m.uses) or '-')}</td></tr>"
        )
    blocking = [
        f"<tr><td>{links.a(b.path, b.line)}</td><td><code>{_e(b.function)}</code></td>"
        f"<td><code>{_e(b.call)}()</code></td><td>{_e(b.kind)}</td>"
        f"<td>{_e(' -> '.join(b.chain))}</td><td>{_e(b.patch or '-')}</td><td>{_e(b.fix)}</td></tr>"
        for b in report.blocking
    ]
    hubs = [
        f"<tr><td>{links.a(h.path, h.line)}</td><td><code>{_e(h.code)}</code></td>"
        f"<td>{_e(h.helper or '-')}</td><td>{_e(h.fix)}</td></tr>"
        for h in report.hub
    ]
    by_path = {m.path: m for m in report.modules}
    order = [
        f"<tr><td data-v='{n}'>{n}</td><td>{links.a(p)}</td><td>{by_path[p].status}</td>"
        f"<td>{_e(by_path[p].role or '-')}</td><td>{by_path[p].lines}</td>"
        f"<td>{by_path[p].weight.get('eventlet_sites', 0)}</td></tr>"
        for n, p in enumerate(report.order, 1)
    ]
    apis = [
        f"<tr><td>{_e(api)}</td><td>{n}</td><td>{_e(asyncio_way)}</td><td>{_e(meanwhile)}</td></tr>"
        for api, n, asyncio_way, meanwhile in report.apis()
    ]
    legend = "".join(
        f"<span style='background:{color}'></span>{status}" for status, color in COLORS.items()
    )
    t = totals["tests"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Migration progress: {_e(report.root)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Migration progress: {_e(report.root)}</h1>",
        f"<div class='bar' id='progress'><div class='fill' style='width:{pct:.1f}%'></div></div>",
        f"<p>{pct:.0f}% async: {totals['async']} async, {totals['mixed']} mixed, "
        f"{totals['green']} green modules ({totals['lines']} lines scanned). Tests apart: "
        f"{t['modules']} modules, {t['green'] + t['mixed']} still green.</p>",
        f"<h2>Module graph</h2><p class='legend'>{legend}; a ringed node is a shim; a module sits "
        "right of the modules it imports.</p>",
        _graph(report),
        f"<h2>Blocking calls in async code ({len(blocking)})</h2>",
        _table(["where", "coroutine", "call", "kind", "chain", "patch", "fix"], blocking)
        if blocking
        else "<p>None.</p>",
        f"<h2>Hub selected in code ({len(hubs)})</h2>",
        _table(["where", "code", "hub name from", "fix"], hubs) if hubs else "<p>None.</p>",
        "<h2>Modules</h2>",
        _table(
            [
                "module",
                "status",
                "green",
                "role",
                "lines",
                "eventlet sites",
                "implicit sites",
                "users",
                "eventlet APIs",
            ],
            modules,
        ),
        "<h2>Migration order</h2><p>Leaves first, shims last, tests with the pytest plugin.</p>",
        _table(["#", "module", "status", "role", "lines", "eventlet sites"], order),
        "<h2>APIs to replace</h2>",
        _table(["eventlet API", "modules", "asyncio replacement", "meanwhile"], apis),
        f"<script>{_SCRIPT}</script></body></html>\n",
    ]
    out.write("".join(parts))
