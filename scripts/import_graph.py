"""The import graph of the simulator package, and a check that it has no cycle.

Every import counts, also those inside functions and under ``TYPE_CHECKING``: an import deferred
to run time still ties the two modules together. Parsed with ``ast``, nothing is imported.

    python scripts/import_graph.py            # prints the graph; exit 1 (and the cycle) if cyclic
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "simulator"


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
    print(f"no import cycle among {len(g)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
