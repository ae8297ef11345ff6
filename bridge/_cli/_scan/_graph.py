"""The project as a whole: its modules' imports, names and calls, followed.

From the per-module facts of :mod:`._parse` this builds:

* the **symbol table**: what ``pkg.common.concurrency.GreenPool`` is (a
  re-export of ``eventlet.GreenPool``, a function, a class, an alias), with
  the chain of modules crossed to get there;
* the **call graph** of project functions, and for each function whether it
  reaches eventlet (``def spawn(*a): return eventlet.spawn(*a)``, at any
  depth) and whether it reaches a *blocking* call (eventlet's or a
  stdlib call made green by ``monkey_patch()``), with the path taken;
* the **module graph** (``a`` imports ``b``) for the migration plan.

Static analysis cannot see everything: ``obj.method()`` on an object of
unknown type is not followed, nor are names built at run time. What is
reported was seen; what is missed is measured by the accuracy corpus
(docs/tools.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from bridge._cli._scan._parse import ModuleFacts
from bridge._cli._scan._tables import IMPLICIT, IMPLICIT_ROOTS, Implicit, eventlet_blocking

# One step of a chain, as shown to a person: "common/concurrency.py",
# "utils.py:spawn", "eventlet.GreenPool".
Hop = str
Key = tuple[str, str]  # a project function or class: (module, qualname)


@dataclasses.dataclass(frozen=True)
class Symbol:
    """What a dotted name of the project resolves to."""

    kind: str  # "eventlet", "implicit", "function", "class", "module"
    module: str  # the defining project module ("" for eventlet/implicit)
    name: str  # qualname in ``module``, or the dotted eventlet/stdlib name
    hops: tuple[Hop, ...]  # modules crossed on the way (re-exports)


@dataclasses.dataclass(frozen=True)
class Reach:
    """A function reaches eventlet or a blocking call: by this path."""

    chain: tuple[Hop, ...]  # from the function (excluded) to the final call
    line: int  # the line, in the function, of the first step
    patch: str = ""  # for an implicit (stdlib) blocking call: the patch it needs
    fix: str = ""  # the asyncio way for the final call
    depth: int = 1  # project functions on the way, this one included


# A project function wrapping eventlet makes its callers' modules green "via
# shim" when it is at most this many calls away from eventlet (a wrapper, or
# a wrapper of a wrapper). Deeper chains are real but say little about the
# calling module: in a large service nearly every module reaches eventlet
# somewhere. The async-side lint follows chains of any depth.
WRAPPER_DEPTH = 2


class Project:
    """The resolved project: symbols, call graph, module graph."""

    def __init__(self, modules: Iterable[ModuleFacts]) -> None:
        self.modules: dict[str, ModuleFacts] = {}
        for facts in modules:
            self.modules.setdefault(facts.name, facts)
        self._symbols: dict[str, Symbol | None] = {}
        self.green: dict[tuple[str, str], Reach] = {}  # function -> how it reaches eventlet
        self.blocking: dict[tuple[str, str], Reach] = {}  # function -> how it blocks
        self.green_classes: dict[Key, tuple[Hop, ...]] = {}
        self._depth: dict[Key, int] = {}  # a green class: the depth of its green method
        self._link()

    # -- names -----------------------------------------------------------------
    def module_of(self, dotted: str) -> tuple[str, list[str]] | None:
        """The longest project-module prefix of ``dotted`` and the rest."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[:end])
            if name in self.modules:
                return name, parts[end:]
        return None

    def hop(self, module: str, name: str = "") -> Hop:
        path = self.modules[module].path
        return f"{path}:{name}" if name else path

    def resolve(self, dotted: str, depth: int = 0) -> Symbol | None:
        """What ``dotted`` is; None for names outside the project and its eventlet/stdlib use."""
        if dotted in self._symbols:
            return self._symbols[dotted]
        self._symbols[dotted] = None  # a cycle of re-exports resolves to nothing
        symbol = self._resolve(dotted, depth)
        self._symbols[dotted] = symbol
        return symbol

    def _resolve(self, dotted: str, depth: int) -> Symbol | None:
        if dotted.startswith("eventlet.") or dotted == "eventlet":
            return Symbol("eventlet", "", dotted, ())
        if dotted.split(".")[0] in IMPLICIT_ROOTS and dotted in IMPLICIT:
            return Symbol("implicit", "", dotted, ())
        found = self.module_of(dotted)
        if found is None or depth > 20:
            return None
        module, rest = found
        if not rest:
            return Symbol("module", module, "", ())
        facts = self.modules[module]
        name = rest[0]
        if len(rest) > 1 and name in facts.classes and f"{name}.{rest[1]}" in facts.functions:
            return Symbol("function", module, f"{name}.{rest[1]}", ())
        if name in facts.functions:
            return Symbol("function", module, name, ())
        if name in facts.classes:
            return Symbol("class", module, name, ())
        target = facts.aliases.get(name) or facts.bindings.get(name)
        if target is None or target == dotted:
            return None
        further = ".".join([target, *rest[1:]])
        symbol = self.resolve(further, depth + 1)
        if symbol is None:
            return None
        return dataclasses.replace(symbol, hops=(self.hop(module), *symbol.hops))

    def local(self, module: str, target: str) -> Symbol | None:
        """A call target of ``module``: ``.name`` (defined here) or an absolute dotted name."""
        if target[0] != ".":
            return self.resolve(target)
        facts = self.modules[module]
        qual = target[1:]
        if qual in facts.functions:
            return Symbol("function", module, qual, ())
        if qual in facts.classes:
            return Symbol("class", module, qual, ())
        return None

    # -- call graph ------------------------------------------------------------
    def _link(self) -> None:
        # callee -> [(caller, line, nested)]: nested when the caller only
        # encloses the callee (a decorator's wrapper): no call is added then.
        callers: dict[Key, list[tuple[Key, int, bool]]] = {}
        class_users: dict[Key, list[tuple[Key, int]]] = {}
        class_bases: dict[Key, list[Key]] = {}
        green_work: list[Key] = []
        block_work: list[Key] = []
        for module, facts in self.modules.items():
            for name, bases in facts.classes.items():
                for base in bases:
                    symbol = self.resolve(base) if base[0] != "." else self.local(module, base)
                    if symbol is None:
                        continue
                    if symbol.kind == "eventlet":
                        self.green_classes[(module, name)] = (*symbol.hops, symbol.name)
                    elif symbol.kind == "class":
                        class_bases.setdefault((module, name), []).append(
                            (symbol.module, symbol.name)
                        )
            for qual, function in facts.functions.items():
                parent = qual.rpartition(".")[0]
                if parent in facts.functions:
                    callers.setdefault((module, qual), []).append(
                        ((module, parent), function.line, True)
                    )
            for target, line, scope, _ in facts.calls:
                if not scope or scope not in facts.functions:
                    continue
                me = (module, scope)
                symbol = self.local(module, target)
                if symbol is None:
                    continue
                if symbol.kind == "eventlet":
                    rest = symbol.name.split(".")[1:]
                    chain = (*symbol.hops, symbol.name)
                    if me not in self.green:
                        self.green[me] = Reach(chain, line)
                        green_work.append(me)
                    fix = eventlet_blocking(rest)
                    if fix and me not in self.blocking and (target, line) not in facts.awaited:
                        self.blocking[me] = Reach(chain, line, fix=fix)
                        block_work.append(me)
                elif symbol.kind == "implicit":
                    entry: Implicit = IMPLICIT[symbol.name]
                    if entry.blocks and me not in self.blocking:
                        chain = (*symbol.hops, symbol.name)
                        self.blocking[me] = Reach(chain, line, entry.patch, entry.fix)
                        block_work.append(me)
                elif symbol.kind == "function":
                    callee = (symbol.module, symbol.name)
                    if callee != me:
                        callers.setdefault(callee, []).append((me, line, False))
                elif symbol.kind == "class":
                    class_users.setdefault((symbol.module, symbol.name), []).append((me, line))
        self._spread(self.blocking, block_work, callers)
        # Green functions make their classes green (a class whose method wraps
        # eventlet, or whose base is green), and green classes make the
        # functions that use them green: to a fixed point.
        done: set[Key] = set()
        while True:
            self._spread(self.green, green_work, callers)
            green_work = []
            for key in self._green_classes(class_bases):
                if key in done:
                    continue
                done.add(key)
                chain = (self.hop(*key), *self.green_classes[key])
                for user, line in class_users.get(key, ()):
                    if user not in self.green:
                        self.green[user] = Reach(chain, line, depth=self._depth.get(key, 0) + 1)
                        green_work.append(user)
            if not green_work:
                break

    def _green_classes(self, class_bases: dict[Key, list[Key]]) -> list[Key]:
        """Update ``green_classes`` from green methods and bases; return them all."""
        for (module, qual), reach in list(self.green.items()):
            head, _, method = qual.partition(".")
            key = (module, head)
            if method and key not in self.green_classes and head in self.modules[module].classes:
                if reach.depth <= WRAPPER_DEPTH:
                    self.green_classes[key] = (self.hop(module, qual), *reach.chain)
                    self._depth[key] = reach.depth
        changed = True
        while changed:
            changed = False
            for key, bases in class_bases.items():
                if key in self.green_classes:
                    continue
                for base in bases:
                    if base in self.green_classes:
                        self.green_classes[key] = (self.hop(*base), *self.green_classes[base])
                        self._depth[key] = self._depth.get(base, 0)
                        changed = True
                        break
        return list(self.green_classes)

    def _spread(
        self,
        reached: dict[Key, Reach],
        work: list[Key],
        callers: dict[Key, list[tuple[Key, int, bool]]],
    ) -> None:
        """Callers of a reaching sync function reach too (breadth first: shortest chains)."""
        index = 0
        while index < len(work):
            callee = work[index]
            index += 1
            module, qual = callee
            below = reached[callee]
            is_async = self.modules[module].functions[qual].is_async
            for caller, line, nested in callers.get(callee, ()):
                if caller in reached or (is_async and not nested):
                    continue  # calling a coroutine function does not run it
                if nested:
                    reached[caller] = dataclasses.replace(below, line=line)
                else:
                    chain = (self.hop(module, qual), *below.chain)
                    reached[caller] = Reach(chain, line, below.patch, below.fix, below.depth + 1)
                work.append(caller)

    def is_green(self, symbol: Symbol) -> tuple[Hop, ...] | None:
        """The chain to eventlet if ``symbol`` is green (a re-export, a wrapper, a subclass)."""
        if symbol.kind == "eventlet":
            return (*symbol.hops, symbol.name)
        key = (symbol.module, symbol.name)
        if symbol.kind == "function" and key in self.green:
            functions = self.modules[symbol.module].functions
            if not functions[symbol.name].is_async and self.green[key].depth <= WRAPPER_DEPTH:
                return (*symbol.hops, self.hop(*key), *self.green[key].chain)
        if symbol.kind == "class" and key in self.green_classes:
            return (*symbol.hops, self.hop(*key), *self.green_classes[key])
        return None

    # -- module graph ----------------------------------------------------------
    def dependencies(self, module: str) -> list[str]:
        """Project modules that ``module`` imports (sorted, without itself)."""
        deps = set()
        for imported in self.modules[module].imports:
            found = self.module_of(imported)
            if found is not None and found[0] != module:
                deps.add(found[0])
        # "from pkg import mod" names pkg too: keep the package only when
        # nothing inside it is imported.
        return sorted(d for d in deps if not any(o.startswith(d + ".") for o in deps))


def topological(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components, dependencies first (Tarjan's, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = graph.get(node, [])
            if child < len(edges):
                work.append((node, child + 1))
                nxt = edges[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components
