"""The shape of mdt's code, against the limits its core keeps (docs/architecture.md):

- no function in mdt/ over 60 lines, no module over 500 lines;
- no ``getattr(`` or ``hasattr(`` on a plugin's object in mdt/ (the interfaces declare every
  hook: mdt/interfaces.py); the calls that remain are listed with what they read;
- no plugin importing another plugin's underscore names;
- every built-in method's ``train_step`` under 30 lines;
- no import circle among mdt/'s modules, imports inside functions included (imports only
  for type checkers, under ``if TYPE_CHECKING:``, never run and are left out).

    python benchmarks/code_shape.py      # a table per limit; exit code 1 when one is broken
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "mdt"
PLUGINS = REPO / "plugins"
FUNCTION_LINES, MODULE_LINES, TRAIN_STEP_LINES = 60, 500, 30
# getattr calls in mdt/ that read something other than a plugin's object, and why they may.
NOT_PLUGIN_OBJECTS = {
    ("mdt/precision.py", "torch.cpu"): "a private function of torch.cpu that older PyTorch builds lack",
}
METHODS = [
    "plugins/mdt_stargan/method.py",
    "plugins/mdt_stargan_v2/method.py",
    "plugins/mdt_cyclegan/method.py",
    "plugins/mdt_ganimation/method.py",
    "plugins/template_method/src/mdt_fader/__init__.py",
]


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def long_functions() -> list[tuple[str, int]]:
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(parsed(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    found.append((f"{path.relative_to(REPO)}:{node.lineno} {node.name}", length))
    return found


def long_modules() -> list[tuple[str, int]]:
    sizes = [(str(p.relative_to(REPO)), len(p.read_text().splitlines())) for p in sorted(CORE.rglob("*.py"))]
    return [(name, n) for name, n in sizes if n > MODULE_LINES]


def attribute_probes() -> list[tuple[str, str, str]]:
    """(place, what is read, why it may) for every getattr/hasattr call in mdt/."""
    found = []
    for path in sorted(CORE.rglob("*.py")):
        relative = str(path.relative_to(REPO))
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
                target = ast.unparse(node.args[0]) if node.args else "?"
                why = NOT_PLUGIN_OBJECTS.get((relative, target), "")
                found.append((f"{relative}:{node.lineno}", f"{node.func.id}({target}, ...)", why))
    return found


def private_imports() -> list[str]:
    """Imports under plugins/ of another plugin's names that start with an underscore."""
    found = []
    for path in sorted(PLUGINS.rglob("*.py")):
        if "build" in path.parts:
            continue
        own = path.relative_to(PLUGINS).parts[0]
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mdt_") and node.module.split(".")[0] != own:
                found += [f"{path.relative_to(REPO)}:{node.lineno} {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def train_steps() -> list[tuple[str, int]]:
    steps = []
    for name in METHODS:
        steps += [
            (f"{name}:{node.lineno}", (node.end_lineno or node.lineno) - node.lineno + 1)
            for node in ast.walk(parsed(REPO / name))
            if isinstance(node, ast.FunctionDef) and node.name == "train_step"
        ]
    return steps


def runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:``, which never run."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from (n for child in node.orelse for n in [child, *runtime_nodes(child)])
            continue
        yield node
        yield from runtime_nodes(node)


def import_graph() -> dict[str, set[str]]:
    """mdt module -> the mdt modules it imports when it runs, at the top or inside
    functions (an import only for type checkers is left out: it never runs)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        targets = graph.setdefault(module, set())
        for node in runtime_nodes(parsed(path)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mdt") and node.level == 0:
                if node.module == "mdt":
                    targets.update(f"mdt.{a.name}" for a in node.names)
                else:
                    targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("mdt."))
    modules = set(graph)
    return {m: {t for t in ts if t in modules and t != m} for m, ts in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def show(console: Console, title: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*map(str, row))
    console.print(table if rows else f"{title}: none", markup=False)


def main() -> int:
    console = Console(width=None if sys.stdout.isatty() else 160)
    functions, modules = long_functions(), long_modules()
    probes = attribute_probes()
    on_plugins = [p for p in probes if not p[2]]
    private, steps = private_imports(), train_steps()
    long_steps = [s for s in steps if s[1] >= TRAIN_STEP_LINES]
    circles = cycles(import_graph())
    show(console, f"functions in mdt/ over {FUNCTION_LINES} lines", ("function", "lines"), functions)
    show(console, f"modules in mdt/ over {MODULE_LINES} lines", ("module", "lines"), modules)
    show(console, "getattr/hasattr calls in mdt/", ("where", "call", "not a plugin's object because"), probes)
    show(console, "imports of another plugin's underscore names", ("import",), [(p,) for p in private])
    show(console, "built-in methods' train_step", ("train_step", "lines"), steps)
    show(console, "import circles in mdt/ (imports inside functions included)", ("modules",), [(" -> ".join(c),) for c in circles])
    broken = {
        "long functions": len(functions),
        "long modules": len(modules),
        "getattr on plugin objects": len(on_plugins),
        "private imports": len(private),
        f"train_steps of {TRAIN_STEP_LINES}+ lines": len(long_steps),
        "import circles": len(circles),
    }
    console.print("; ".join(f"{k}: {v}" for k, v in broken.items()), markup=False)
    return 1 if any(broken.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
