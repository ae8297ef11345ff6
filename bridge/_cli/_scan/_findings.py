"""Per-module findings from the resolved project: how green, what blocks, the hub.

* a module is green **directly** (it uses eventlet), **via a shim** (it uses
  a project name that leads to eventlet: a re-export, a wrapper function, a
  subclass), or **implicitly** (its stdlib calls cooperate only because the
  process runs ``monkey_patch()``; counted when the tree uses eventlet at
  all, or with ``--patched``);
* the async-side lint: inside ``async def`` (not under ``@bridge.portal``),
  a call to a blocking eventlet function, to a blocking stdlib call, or to a
  project function that reaches one, each with the fix; ``# bridge: ok`` on
  the line silences it;
* hub selection in code (``use_hub(...)`` with an argument), which makes
  ``EVENTLET_HUB=bridge.hub`` silently ignored.
"""

from __future__ import annotations

from bridge._cli._scan._graph import Project
from bridge._cli._scan._parse import ModuleFacts
from bridge._cli._scan._report import (
    KINDS,
    BlockingCall,
    HubSelection,
    ImplicitUse,
    ModuleReport,
    ShimUse,
)
from bridge._cli._scan._tables import IMPLICIT, IMPLICIT_ROOTS, eventlet_blocking

HUB_FIX = (
    "eventlet.hubs.use_hub() with an argument overrides EVENTLET_HUB, so bridge.hub is "
    "silently not used: call use_hub() without an argument (it reads EVENTLET_HUB), or "
    "only when 'EVENTLET_HUB' not in os.environ"
)
HUB_ENV_FIX = (
    "assigning os.environ['EVENTLET_HUB'] overrides the hub chosen outside: use "
    "os.environ.setdefault('EVENTLET_HUB', ...)"
)


def _implicit_name(dotted: str) -> str | None:
    """``dotted`` or the prefix of it that is in IMPLICIT (``threading.Thread.start``)."""
    if dotted.partition(".")[0] not in IMPLICIT_ROOTS:
        return None
    while dotted:
        if dotted in IMPLICIT:
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


def module_report(project: Project, facts: ModuleFacts, patched: bool) -> ModuleReport:
    """The module's kinds, shim uses and implicit calls (role and weights come later)."""
    shim_uses: dict[tuple[int, str], ShimUse] = {}
    implicit: dict[tuple[int, str], ImplicitUse] = {}
    # A project class counts where it is made or subclassed, not where it is
    # only named (isinstance, except, annotations): a large class with one
    # green method would otherwise make every module that mentions it green.
    called = {(target, line) for target, line, _, _ in facts.calls}
    bases = {base for names in facts.classes.values() for base in names}
    for dotted, line, _scope in facts.refs:
        name = _implicit_name(dotted)
        if name is not None:
            entry = IMPLICIT[name]
            implicit.setdefault((line, name), ImplicitUse(line, name, entry.patch, entry.fix))
            continue
        symbol = project.resolve(dotted)
        if symbol is None or symbol.kind in ("module", "implicit"):
            continue
        if symbol.module == facts.name or (symbol.hops and symbol.hops[0] == facts.path):
            continue  # its own name, not a shim's
        if symbol.kind == "class" and (dotted, line) not in called and dotted not in bases:
            continue
        chain = project.is_green(symbol)
        if chain is not None:
            short = dotted.rpartition(".")[2]
            shim_uses.setdefault((line, short), ShimUse(line, short, [facts.path, *chain]))
    for star in facts.star_imports:
        exported = _star_chain(project, star)
        if exported is not None:
            line = facts.imports.get(star, 0)
            shim_uses.setdefault((line, "*"), ShimUse(line, "*", [facts.path, *exported]))
    kinds = []
    if facts.uses:
        kinds.append("direct")
    if shim_uses:
        kinds.append("shim")
    if implicit and patched:
        kinds.append("implicit")
    if kinds:
        status = "mixed" if facts.is_async else "green"
    else:
        status = "async" if facts.is_async else "other"
    return ModuleReport(
        facts.path,
        facts.lines,
        status,
        facts.uses,
        name=facts.name,
        kind=next((k for k in KINDS if k in kinds), "none"),
        kinds=kinds,
        role="test" if facts.is_test else "",
        shim_uses=sorted(shim_uses.values(), key=lambda u: (u.line, u.name)),
        implicit=sorted(implicit.values(), key=lambda u: (u.line, u.call)),
    )


def _star_chain(project: Project, module: str) -> list[str] | None:
    """``from shim import *``: the chain of the first green name the shim exports."""
    facts = project.modules.get(module)
    if facts is None:
        return None
    for name in (*facts.bindings, *facts.aliases, *facts.functions, *facts.classes):
        if name.startswith("_") or "." in name:
            continue
        symbol = project.resolve(f"{module}.{name}")
        chain = project.is_green(symbol) if symbol is not None else None
        if chain is not None:
            return [project.hop(module), *chain] if chain[0] != project.hop(module) else [*chain]
    return None


def blocking_calls(project: Project, facts: ModuleFacts) -> list[BlockingCall]:
    """The async-side lint for one module."""
    coroutines = {
        qual
        for qual, function in facts.functions.items()
        if function.is_async and not function.portal
    }
    if not coroutines:
        return []
    found = []
    for target, line, scope, shown in facts.calls:
        if scope not in coroutines or line in facts.ok_lines or (target, line) in facts.awaited:
            continue
        symbol = project.local(facts.name, target)
        if symbol is None:
            continue
        if symbol.kind == "eventlet":
            fix = eventlet_blocking(symbol.name.split(".")[1:])
            if fix:
                found.append(BlockingCall(
                    facts.path, line, scope, shown, "eventlet", [*symbol.hops, symbol.name],
                    f"{fix}; meanwhile await bridge.to_async({shown})(...)",
                ))  # fmt: skip
        elif symbol.kind == "implicit":
            entry = IMPLICIT[symbol.name]
            if entry.blocks:
                found.append(BlockingCall(
                    facts.path, line, scope, shown, "implicit", [symbol.name],
                    f"{entry.fix}; meanwhile await asyncio.to_thread({shown}, ...)", entry.patch,
                ))  # fmt: skip
        elif symbol.kind == "function":
            key = (symbol.module, symbol.name)
            reach = project.blocking.get(key)
            if reach is None or project.modules[symbol.module].functions[symbol.name].is_async:
                continue
            found.append(BlockingCall(
                facts.path, line, scope, shown, "project",
                [*symbol.hops, project.hop(*key), *reach.chain],
                f"await bridge.to_async({shown})(...), or @bridge.portal on {scope} (green "
                f"calls then suspend only the task), or make {symbol.name} async "
                f"({reach.chain[-1]}: {reach.fix})",
                reach.patch,
            ))  # fmt: skip
    return found


def hub_selections(project: Project, facts: ModuleFacts) -> list[HubSelection]:
    found = []
    for line, code, helper in facts.hub_calls:
        shown = ""
        if helper:
            symbol = project.local(facts.name, helper)
            if symbol is not None and symbol.kind == "function":
                shown = project.hop(symbol.module, symbol.name)
            else:
                shown = helper.lstrip(".")
        fix = HUB_ENV_FIX if code.startswith("os.environ") else HUB_FIX
        found.append(HubSelection(facts.path, line, code, shown, fix))
    return found
