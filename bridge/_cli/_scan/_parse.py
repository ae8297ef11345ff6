"""One module's facts, from its source: the only place the scanner walks an AST.

Every name the module uses is resolved through its imports to a dotted,
absolute name (``from ..common import concurrency`` then
``concurrency.GreenPool`` is ``pkg.common.concurrency.GreenPool``), so that
the graph stage can follow names from module to module without parsing
again. A name defined in the module itself is kept as ``.name`` (``.Cls.meth``
for ``self.meth()`` inside ``Cls``) and resolved once the module's
definitions are all known.

Speed matters (a 600k-line tree in seconds): the walk is one pass, by hand,
over statements and then expressions, and skips the node kinds that hold no
names (constants, operators, contexts). ``ast.NodeVisitor`` costs twice as
much on the same trees.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

from bridge._cli._scan._tables import ASYNC_PACKAGES, MODULE_ALIASES, api_key

# (dotted target, line, scope): scope is the enclosing function's qualname, "" at module level.
Site = tuple[str, int, str]
# A call: a Site and the callee as written (``utils.spawn`` for ``pkg.utils.spawn``).
CallSite = tuple[str, int, str, str]


@dataclasses.dataclass
class Function:
    line: int
    is_async: bool
    portal: bool  # decorated with @bridge.portal: green-blocking calls in it are fine


@dataclasses.dataclass
class ModuleFacts:
    """What one source file says, before any other module is looked at."""

    path: str
    name: str
    lines: int
    is_test: bool
    is_async: bool = False
    uses: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # eventlet API -> lines
    imports: dict[str, int] = dataclasses.field(default_factory=dict)  # absolute module -> line
    bindings: dict[str, str] = dataclasses.field(default_factory=dict)  # local name -> dotted
    refs: list[Site] = dataclasses.field(default_factory=list)  # names used, imported ones
    calls: list[CallSite] = dataclasses.field(default_factory=list)
    awaited: set[tuple[str, int]] = dataclasses.field(default_factory=set)
    functions: dict[str, Function] = dataclasses.field(default_factory=dict)
    classes: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # name -> bases
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)  # X = dotted, top level
    hub_calls: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)
    patch_calls: list[tuple[int, dict[str, bool]]] = dataclasses.field(default_factory=list)
    star_imports: list[str] = dataclasses.field(default_factory=list)
    ok_lines: frozenset[int] = frozenset()


_SKIP = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop, ast.Constant)
# Fields of expression nodes that never hold a name: contexts, operators,
# identifiers, flags. The others (exprs, lists of them, keywords,
# comprehensions) are walked; per node type, computed once.
_NOT_CHILDREN = frozenset(
    ("ctx", "op", "ops", "id", "attr", "arg", "kind", "conversion", "is_async", "type_comment")
)
_CHILDREN: dict[type, tuple[str, ...]] = {}
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_PORTALS = frozenset(("bridge.portal", "bridge._crossings._portal.portal"))
_HUB_SELECT = frozenset(("eventlet.hubs.use_hub", "eventlet.hubs.hub.use_hub"))
_PATCH = frozenset(("eventlet.monkey_patch", "eventlet.patcher.monkey_patch"))


def _written(node: ast.expr) -> str:
    parts = []
    while type(node) is ast.Attribute:
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if type(node) is ast.Name else "...")
    return ".".join(reversed(parts))


def _normal(module: str) -> str:
    """Old or vendored spellings to today's (``six.moves.queue`` -> ``queue``)."""
    if module in MODULE_ALIASES:
        return MODULE_ALIASES[module]
    head = module.rpartition(".")[0]
    while head:
        if head in MODULE_ALIASES:
            return f"{MODULE_ALIASES[head]}.{module[len(head) + 1 :]}"
        head = head.rpartition(".")[0]
    return module


class _Walker:
    def __init__(self, facts: ModuleFacts, package: str) -> None:
        self.facts = facts
        self.package = package  # for relative imports
        self.bind = facts.bindings

    # -- names -------------------------------------------------------------
    def dotted(self, node: ast.expr, scope: str, cls: str) -> str | None:
        """``a.b.c`` resolved through the imports; ``.name`` for a module-level one."""
        parts = []
        while type(node) is ast.Attribute:
            parts.append(node.attr)
            node = node.value
        if type(node) is not ast.Name:
            return None
        root = node.id
        parts.reverse()
        bound = self.bind.get(root)
        if bound is not None:
            return ".".join((bound, *parts)) if parts else bound
        if root in ("self", "cls") and cls and parts:
            return f".{cls}.{parts[0]}"
        return "." + ".".join((root, *parts)) if parts else "." + root

    def note(self, dotted: str, line: int, scope: str) -> None:
        """A use of an imported name: an eventlet API, or a ref for the graph stage."""
        if dotted.startswith("eventlet."):
            api = api_key(dotted.split(".")[1:])
            if api:
                self.facts.uses.setdefault(api, []).append(line)
        elif dotted[0] != ".":
            self.facts.refs.append((dotted, line, scope))

    # -- imports -----------------------------------------------------------
    def do_import(self, node: ast.Import, scope: str) -> None:
        for alias in node.names:
            module = _normal(alias.name)
            self.facts.imports.setdefault(module, node.lineno)
            root = module.split(".")[0]
            if root in ASYNC_PACKAGES:
                self.facts.is_async = True
            if alias.asname:
                self.bind[alias.asname] = module
                if root == "eventlet" and "." in module:
                    self.note(module, node.lineno, scope)
            else:
                self.bind[alias.name.split(".")[0]] = alias.name.split(".")[0]
                if root == "eventlet" and "." in module:
                    self.note(module, node.lineno, scope)

    def do_import_from(self, node: ast.ImportFrom, scope: str) -> None:
        module = node.module or ""
        if node.level:
            base = self.package.split(".") if self.package else []
            if node.level > 1:
                base = base[: len(base) - node.level + 1] if len(base) >= node.level - 1 else []
            module = ".".join([*base, module] if module else base)
        module = _normal(module)
        if not module:
            return
        self.facts.imports.setdefault(module, node.lineno)
        if module.split(".")[0] in ASYNC_PACKAGES:
            self.facts.is_async = True
        for alias in node.names:
            if alias.name == "*":
                self.facts.star_imports.append(module)
                continue
            dotted = _normal(f"{module}.{alias.name}")
            self.bind[alias.asname or alias.name] = dotted
            self.note(dotted, node.lineno, scope)
            # "from pkg import mod" imports a module too: the graph stage
            # keeps only the names that are modules of the project.
            self.facts.imports.setdefault(dotted, node.lineno)

    # -- statements ----------------------------------------------------------
    def body(self, stmts: list[ast.stmt], scope: str, cls: str) -> None:
        for stmt in stmts:
            t = type(stmt)
            if t is ast.Import:
                self.do_import(stmt, scope)  # type: ignore[arg-type]
            elif t is ast.ImportFrom:
                self.do_import_from(stmt, scope)  # type: ignore[arg-type]
            elif t in _FUNCS:
                self.function(stmt, scope, cls)  # type: ignore[arg-type]
            elif t is ast.ClassDef:
                self.klass(stmt, scope)  # type: ignore[arg-type]
            else:
                if t is ast.Assign and not scope:
                    self.alias(stmt)  # type: ignore[arg-type]
                for child in ast.iter_child_nodes(stmt):
                    if isinstance(child, ast.stmt):
                        self.body([child], scope, cls)
                    elif isinstance(child, (ast.excepthandler, ast.match_case)):
                        for sub in ast.iter_child_nodes(child):
                            if isinstance(sub, ast.stmt):
                                self.body([sub], scope, cls)
                            elif not isinstance(sub, ast.pattern):
                                self.expr(sub, scope, cls)
                    elif isinstance(child, ast.AST) and not isinstance(child, _SKIP):
                        self.expr(child, scope, cls)

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: str, cls: str) -> None:
        qual = f"{scope}.{node.name}" if scope else (f"{cls}.{node.name}" if cls else node.name)
        portal = False
        for deco in node.decorator_list:
            self.expr(deco, scope, cls)
            target = deco.func if type(deco) is ast.Call else deco
            if self.dotted(target, scope, cls) in _PORTALS:
                portal = True
        is_async = type(node) is ast.AsyncFunctionDef
        if is_async:
            self.facts.is_async = True
        self.facts.functions[qual] = Function(node.lineno, is_async, portal)
        args = node.args
        for default in (*args.defaults, *args.kw_defaults):
            if default is not None:
                self.expr(default, scope, cls)
        self.body(node.body, qual, cls)

    def klass(self, node: ast.ClassDef, scope: str) -> None:
        bases = []
        for base in node.bases:
            self.expr(base, scope, "")
            dotted = self.dotted(base, scope, "")
            if dotted:
                bases.append(dotted)
        for deco in node.decorator_list:
            self.expr(deco, scope, "")
        if not scope:
            self.facts.classes[node.name] = bases
            self.body(node.body, "", node.name)
        else:
            self.body(node.body, scope, "")

    def alias(self, node: ast.Assign) -> None:
        if len(node.targets) == 1 and type(node.targets[0]) is ast.Name:
            value = node.value
            if type(value) is ast.Attribute or type(value) is ast.Name:
                dotted = self.dotted(value, "", "")
                if dotted and dotted[0] != ".":
                    self.facts.aliases[node.targets[0].id] = dotted
        elif (
            len(node.targets) == 1
            and type(node.targets[0]) is ast.Subscript
            and self.dotted(node.targets[0].value, "", "") == "os.environ"
            and type(node.targets[0].slice) is ast.Constant
            and node.targets[0].slice.value == "EVENTLET_HUB"
        ):
            shown = ast.unparse(node.value)
            self.facts.hub_calls.append((node.lineno, f"os.environ['EVENTLET_HUB'] = {shown}", ""))

    # -- expressions ---------------------------------------------------------
    def expr(self, root: ast.AST, scope: str, cls: str) -> None:
        # Any: the node kinds are told apart by type() below, faster than isinstance.
        stack: list[Any] = [root]
        facts = self.facts
        while stack:
            node = stack.pop()
            t = type(node)
            if t is ast.Constant or node is None:  # None: a Dict's ** key
                continue
            if t is ast.Name or t is ast.Attribute:
                inner = node
                while type(inner) is ast.Attribute:
                    inner = inner.value
                if type(inner) is ast.Name:
                    if inner.id in self.bind:
                        dotted = self.dotted(node, scope, cls)
                        if dotted:
                            self.note(dotted, node.lineno, scope)
                else:
                    stack.append(inner)
                continue
            if t is ast.Call:
                func = node.func
                dotted = self.dotted(func, scope, cls)
                if dotted:
                    facts.calls.append((dotted, node.lineno, scope, _written(func)))
                    if dotted in _HUB_SELECT and (node.args or node.keywords):
                        self.hub_call(node, scope, cls)
                    elif dotted in _PATCH:
                        self.patch_call(node)
            elif t is ast.Await:
                value = node.value
                if type(value) is ast.Call:
                    dotted = self.dotted(value.func, scope, cls)
                    if dotted:
                        facts.awaited.add((dotted, value.lineno))
            elif t is ast.Lambda:
                stack.append(node.body)
                continue
            fields = _CHILDREN.get(t)
            if fields is None:
                fields = _CHILDREN[t] = tuple(f for f in t._fields if f not in _NOT_CHILDREN)
            for field in fields:
                value = getattr(node, field)
                if type(value) is list:
                    stack.extend(value)
                elif value is not None:
                    stack.append(value)

    def hub_call(self, node: ast.Call, scope: str, cls: str) -> None:
        arg = node.args[0] if node.args else node.keywords[0].value
        helper = ""
        if type(arg) is ast.Call:
            helper = self.dotted(arg.func, scope, cls) or ""
        self.facts.hub_calls.append((node.lineno, ast.unparse(node), helper))

    def patch_call(self, node: ast.Call) -> None:
        flags = {}
        for keyword in node.keywords:
            if keyword.arg and type(keyword.value) is ast.Constant:
                flags[keyword.arg] = bool(keyword.value.value)
        self.facts.patch_calls.append((node.lineno, flags))


def parse(path: str, name: str, source: str, is_test: bool) -> ModuleFacts:
    """The facts of one module.

    :param path: the path shown in reports.
    :param name: the module's dotted name (``pkg.sub.mod``; ``pkg.sub`` for
        ``pkg/sub/__init__.py``).
    :raises SyntaxError: the source does not parse.
    """
    tree = ast.parse(source, filename=path)
    facts = ModuleFacts(path, name, source.count("\n") + 1, is_test)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    walker = _Walker(facts, package)
    walker.body(tree.body, "", "")
    if "bridge: ok" in source:
        facts.ok_lines = frozenset(
            number
            for number, line in enumerate(source.splitlines(), 1)
            if "#" in line and "bridge: ok" in line.partition("#")[2]
        )
    for api in facts.uses:
        facts.uses[api] = sorted(set(facts.uses[api]))
    # Keep the calls of module-level names only if they name a definition
    # here: ".conn.execute" is a method of a local variable, not a function.
    defined = facts.functions.keys() | facts.classes.keys()
    facts.calls = [
        site
        for site in facts.calls
        if site[0][0] != "." or site[0][1:].partition(".")[0] in defined
    ]
    return facts
