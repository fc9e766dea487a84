"""The simulator package's import graph has no cycle (imports inside functions count too)."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

from conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location(
        "import_graph", ROOT / "scripts" / "import_graph.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_package_has_no_import_cycle():
    ig = _script()
    g = ig.graph()
    assert "simulator.forecast" in g and "simulator.posterior" in g["simulator.forecast"]
    assert ig.find_cycle(g) is None


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path):
    """The check itself can fail: two modules that import each other, one of them only inside a
    function, and a relative import from a subpackage."""
    ig = _script()
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("from .c import x\n")
    (pkg / "c.py").write_text(
        textwrap.dedent(
            """
            def x():
                from .sub.d import y
                return y
            """
        )
    )
    (pkg / "sub" / "d.py").write_text("from ..a import z\n")
    g = ig.graph(tmp_path, "pkg")
    assert g["pkg.c"] == {"pkg.sub.d"}
    cycle = ig.find_cycle(g)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) == {"pkg.a", "pkg.b", "pkg.c", "pkg.sub.d"}
    (pkg / "sub" / "d.py").write_text("")
    assert ig.find_cycle(ig.graph(tmp_path, "pkg")) is None
