"""The import graph of bot, handlers (with its chat layer) and storage.

The floors read bot → handlers → storage: nothing in handlers imports from bot, nothing in
storage imports from either, and no module waits on itself through a cycle. The flow engine
and the flow declarations import nothing from telegram, so another front end (cadrebot shell,
a web page) can render the same flows.

Every import counts, at module level or inside a function (a deferred import still ties the
modules together), except those under `if TYPE_CHECKING:`, which never run. Importing `a.b.c`
runs `a/__init__` and `a/b/__init__` first, so it depends on them too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "storage")
# The flow engine: a screen is text and buttons, whatever renders it.
ENGINE = (
    "handlers.chat.flow",
    "handlers.chat.engine",
    "handlers.chat.kinds",
    "handlers.chat.port",
    "handlers.chat.screen",
    "handlers.chat.screens",
    "handlers.chat.commands",
    "handlers.chat.menu",
    # A screen of its own that once was a plain Telegram handler.
    "handlers.withdraw",
)
# What may not import what: (importer's package, imported package).
UPWARD = (("handlers", "bot"), ("storage", "bot"), ("storage", "handlers"))


@dataclass(repr=False)
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    # module → the modules of the walked packages it imports (and their package __init__s)
    edges: dict[str, set[str]] = field(default_factory=dict)
    # module → every dotted name it imports, ours or not (`telegram.ext`, `sqlalchemy`…)
    names: dict[str, set[str]] = field(default_factory=dict)
    # modules that declare a flow: a module-level name bound to a `Flow(…)` call
    flows: set[str] = field(default_factory=set)

    def __repr__(self) -> str:  # pytest prints it with a failure: keep the failure readable
        return f"Graph({len(self.modules)} modules)"


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except the bodies of `if TYPE_CHECKING:`."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # an `else:` there does run
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _declares_flow(tree: ast.Module) -> bool:
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Call):
            func = value.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "Flow":
                return True
    return False


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name `from <…> import` refers to, relative imports included."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def _prefixes(name: str) -> Iterator[str]:
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


def walk(root: Path, packages: Iterable[str]) -> Graph:
    graph = Graph()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            graph.modules[".".join(parts)] = path
    for module, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        names: set[str] = set()
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            else:
                base = _base(module, is_package, node)
                names.add(base)
                # `from a import b` imports the submodule a.b when there is one.
                names.update(
                    f"{base}.{alias.name}"
                    for alias in node.names
                    if f"{base}.{alias.name}" in graph.modules
                )
        graph.names[module] = names
        graph.edges[module] = {
            prefix
            for name in names
            for prefix in _prefixes(name)
            if prefix in graph.modules and prefix != module
        }
        if _declares_flow(tree):
            graph.flows.add(module)
    return graph


def _cycle_through(graph: Graph, start: str, group: set[str]) -> list[str]:
    """The shortest path start → … → start inside one strongly connected group."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in sorted(graph.edges[node] & group):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in no cycle")


def cycles(graph: Graph) -> list[str]:
    """One path a → b → a per group of modules that import each other (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.edges[node]:
                groups.append(group)

    for node in sorted(graph.modules):
        if node not in index:
            visit(node)
    found = []
    for group in sorted(groups, key=min):
        path = " → ".join(_cycle_through(graph, min(group), group))
        rest = sorted(group - set(path.split(" → ")))
        found.append(path + (f" (with {', '.join(rest)} in the same knot)" if rest else ""))
    return found


def _deepest(targets: set[str]) -> list[str]:
    """The targets without the package __init__s that importing them implies."""
    return sorted(t for t in targets if not any(o.startswith(t + ".") for o in targets))


def upward_imports(graph: Graph) -> list[str]:
    return [
        f"{module} imports {target} ({lower} may not import from {upper})"
        for lower, upper in UPWARD
        for module in sorted(graph.modules)
        if _in(module, lower)
        for target in _deepest(graph.edges[module])
        if _in(target, upper)
    ]


def telegram_imports(graph: Graph, engine: Iterable[str] = ENGINE) -> list[str]:
    """Imports of telegram in the engine (the modules of it that exist) and flow declarations."""
    checked = sorted({m for m in engine if m in graph.modules} | graph.flows)
    return [
        f"{module} imports {name} ({'the flow engine' if module in engine else 'a flow'} "
        "must not know Telegram)"
        for module in checked
        for name in sorted(graph.names[module])
        if _in(name, "telegram")
    ]


@pytest.fixture(scope="module")
def graph() -> Graph:
    return walk(ROOT, PACKAGES)


def test_the_walk_sees_every_package(graph: Graph) -> None:
    # A walk that found nothing would pass every rule below.
    assert {"bot.app", "handlers.withdraw", "handlers.chat.context", "storage.db"} <= set(
        graph.modules
    )
    assert "handlers.chat.context" in graph.edges["bot.app"]


def test_no_import_cycles(graph: Graph) -> None:
    found = cycles(graph)
    assert not found, "import cycles:\n  " + "\n  ".join(found)


def test_imports_point_down_only(graph: Graph) -> None:
    found = upward_imports(graph)
    assert not found, "imports against bot → handlers → storage:\n  " + "\n  ".join(found)


def test_engine_and_flows_import_nothing_from_telegram(graph: Graph) -> None:
    found = telegram_imports(graph)
    assert not found, "telegram imported:\n  " + "\n  ".join(found)


# -- the walker itself, on a small package with the faults it must find ----------------------


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_walker_finds_a_cycle_and_telegram_in_a_flow(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/a.py": "from app import b\n",
            "app/b.py": "def later():\n    from app.c import x\n",  # a deferred import counts
            "app/c.py": "import app.a\nx = 1\n",
            "ui/__init__.py": "",
            "ui/chat/__init__.py": "",
            "ui/chat/flow.py": "class Flow: ...\n",
            "ui/talk.py": (
                "from telegram.ext import CommandHandler\n"
                "from ui.chat.flow import Flow\n"
                "TALK = Flow()\n"
            ),
            "ui/plain.py": "import telegram\n\ndef build():\n    return Flow()\n",
            "ui/menu.py": "from app import a\n",
        },
    )
    graph = walk(tmp_path, ["app", "ui"])
    assert cycles(graph) == ["app.a → app.b → app.c → app.a"]
    # Only a module-level `NAME = Flow(…)` makes a flow declaration.
    assert graph.flows == {"ui.talk"}
    assert telegram_imports(graph, ["ui.chat.flow"]) == [
        "ui.talk imports telegram.ext (a flow must not know Telegram)",
    ]
    assert graph.edges["ui.menu"] == {"app", "app.a"}


def test_the_walker_counts_package_inits_and_skips_type_checking(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            # The package's __init__ imports its module, which imports a sibling by its full
            # name: that runs the package's __init__ first, so the three are one cycle.
            "pkg/__init__.py": "from pkg.x import X\n",
            "pkg/x.py": "import pkg.y\nX = 1\n",
            "pkg/y.py": (
                "from typing import TYPE_CHECKING\n"
                "import typing\n"
                "if TYPE_CHECKING:\n    from pkg.x import X\n"
                "if typing.TYPE_CHECKING:\n    import pkg.x\n"
                "else:\n    from . import z\n"  # the else branch runs: it counts
            ),
            "pkg/z.py": "from .sub import deep\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/deep.py": "from .. import z\n",
            "engine/__init__.py": "",
            "engine/screen.py": "def show():\n    import telegram\n",
        },
    )
    graph = walk(tmp_path, ["pkg", "engine"])
    assert graph.edges["pkg.x"] == {"pkg", "pkg.y"}
    assert graph.edges["pkg.y"] == {"pkg", "pkg.z"}
    assert graph.edges["pkg.z"] == {"pkg", "pkg.sub", "pkg.sub.deep"}
    assert graph.edges["pkg.sub.deep"] == {"pkg", "pkg.z"}
    assert cycles(graph) == [
        "pkg → pkg.x → pkg (with pkg.sub.deep, pkg.y, pkg.z in the same knot)",
    ]
    assert telegram_imports(graph, ["engine.flow", "engine.screen"]) == [
        "engine.screen imports telegram (the flow engine must not know Telegram)"
    ]


def test_the_walker_finds_upward_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "bot/__init__.py": "",
            "bot/forget.py": "",
            "handlers/__init__.py": "",
            "handlers/withdraw.py": "from bot import forget\n",
            "handlers/typed.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot import forget\n"
            ),
            "storage/__init__.py": "",
            "storage/db.py": "import handlers.withdraw\n",
        },
    )
    assert upward_imports(walk(tmp_path, PACKAGES)) == [
        "handlers.withdraw imports bot.forget (handlers may not import from bot)",
        "storage.db imports handlers.withdraw (storage may not import from handlers)",
    ]
