"""Every function of the package fits on a screen: at most 80 lines (docs/design.md §2; the
complexity limit, 15, is ruff's C901 in pyproject.toml)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

MAX_LINES = 80


def long_functions(package: Path, limit: int = MAX_LINES) -> list[str]:
    """'path:line name (n lines)' for every function or method longer than ``limit`` lines."""
    out = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append(
                        f"{path.relative_to(package.parent)}:{node.lineno} {node.name} ({n} lines)"
                    )
    return out


def test_no_function_is_longer_than_80_lines():
    assert long_functions(ROOT / "simulator") == []


def test_a_long_function_is_found(tmp_path: Path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (pkg / "a.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n")
    assert long_functions(pkg) == [f"pkg/a.py:5 long ({MAX_LINES + 1} lines)"]
