"""The migration plan: roles, the module graph, weights and an order.

The order moves leaves first and shims last: a module is listed after the
project modules it imports (so when it moves, what it calls has moved or is
reached through an adapter), modules in an import cycle move together,
lighter modules first among equals (quick wins), the shims that other
modules take eventlet through after every service module (they go when
their last user has moved), and test modules at the end, with the pytest
plugin.
"""

from __future__ import annotations

from bridge._cli._scan._graph import Project, topological
from bridge._cli._scan._report import ModuleReport


def plan(project: Project, reports: dict[str, ModuleReport]) -> list[str]:
    """Set each report's role, deps, users and weight; return the order (paths).

    :param reports: module name -> its report, as made by ``module_report``.
    """
    users: dict[str, set[str]] = {}
    path_to_name = {report.path: name for name, report in reports.items()}
    for name, report in reports.items():
        for use in report.shim_uses:
            shim = path_to_name.get(use.chain[1].partition(":")[0]) if len(use.chain) > 1 else None
            if shim is not None and shim != name:
                users.setdefault(shim, set()).add(name)
    graph: dict[str, list[str]] = {}
    for name, report in reports.items():
        deps = project.dependencies(name)
        graph[name] = deps
        report.deps = [reports[dep].path for dep in deps if dep in reports]
        report.users = len(users.get(name, ()))
        if report.role != "test" and report.users:
            report.role = "shim"
        report.weight = {
            "lines": report.lines,
            "eventlet_sites": sum(len(lines) for lines in report.uses.values())
            + len(report.shim_uses),
            "implicit_sites": len(report.implicit),
        }
    moving = {name for name, report in reports.items() if report.status in ("green", "mixed")}
    first: list[str] = []
    shims: list[str] = []
    tests: list[str] = []
    for component in topological(graph):
        members = sorted(
            (name for name in component if name in moving),
            key=lambda name: (reports[name].weight["eventlet_sites"], reports[name].lines, name),
        )
        for name in members:
            role = reports[name].role
            (shims if role == "shim" else tests if role == "test" else first).append(name)
    # Shims: the least used first, so the most used one is last.
    shims.sort(key=lambda name: reports[name].users)
    return [reports[name].path for name in (*first, *shims, *tests)]
