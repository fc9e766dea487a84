"""The import graph of the simulator package, and checks that it has no cycle and that every
import points down the layers of docs/design.md §2.

Every import counts, also those inside functions and under ``TYPE_CHECKING``: an import deferred
to run time still ties the two modules together. Parsed with ``ast``, nothing is imported.

    python scripts/import_graph.py   # prints the graph; exit 1 (and the cycle or the upward
                                     # imports) if it has a cycle or an import points up
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "simulator"

# docs/design.md §2, top first: a module may import its own layer and the layers below it.
# Each entry is a module or a subpackage (its modules), relative to the package.
LAYERS: list[tuple[str, ...]] = [
    ("", "__main__", "cli"),  # entry points (and the package's own __init__)
    ("portfolio",),  # many scenarios a week at a time
    ("api",),  # the Python API
    ("report",),  # pages: figures, Markdown, HTML, summary.json
    ("analyses",),  # compare, backtest, track, plan
    ("engine",),  # forecast -> key results -> decision -> words
    ("model",),  # the PyMC models and their fits; priors, values, change semantics
    ("io",),  # the scenario file, tables, calendars, the cache
    ("i18n", "version"),  # the output language; the version
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its source)."""
    files = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    out: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_pkg, node.level, node.module)
                # `from . import x` imports the module x when there is one
                names = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names
                ]
            for name in names:
                while name and name not in files:
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    out[mod].add(name)
    return out


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (a list that starts and ends with the same module), or None.
    A submodule's import of its own parent package is left out: importing the submodule has
    already run the parent's ``__init__``, so that edge cannot start a cycle of its own."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g[m]):
            if m.startswith(d + "."):
                continue
            if state.get(d) == 1:
                return stack[stack.index(d) :] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (c := visit(m)):
            return c
    return None


def layer_of(module: str, package: str = PACKAGE, layers=LAYERS) -> int:
    """The index in ``layers`` of ``module`` (0 is the top); a module no layer names is an error."""
    rel = module.removeprefix(package).removeprefix(".")
    best, depth = None, -1
    for i, entries in enumerate(layers):
        for e in entries:
            if (rel == e or (e and rel.startswith(e + "."))) and len(e) > depth:
                best, depth = i, len(e)
    if best is None:
        raise KeyError(f"{module} is in no layer of scripts/import_graph.py LAYERS")
    return best


def upward_imports(g: dict[str, set[str]], package: str = PACKAGE, layers=LAYERS) -> list[str]:
    """Every import that points to a higher layer, as 'module -> imported'."""
    return [
        f"{m} -> {d}"
        for m in sorted(g)
        for d in sorted(g[m])
        if layer_of(d, package, layers) < layer_of(m, package, layers)
    ]


def main() -> int:
    g = graph()
    short = {m: m.removeprefix(PACKAGE + ".") if m != PACKAGE else PACKAGE for m in g}
    for m in sorted(g):
        deps = ", ".join(sorted(short[d] for d in g[m])) or "-"
        print(f"{short[m]:<28} -> {deps}")
    cycle = find_cycle(g)
    if cycle:
        print("import cycle: " + " -> ".join(short[m] for m in cycle), file=sys.stderr)
        return 1
    up = upward_imports(g)
    if up:
        print("imports that point up the layers:\n  " + "\n  ".join(up), file=sys.stderr)
        return 1
    print(f"no import cycle and no upward import among {len(g)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
