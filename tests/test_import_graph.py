"""The simulator package's import graph has no cycle and points down the layers of docs/design.md §2
(imports inside functions count too)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import load_script


def _script():
    return load_script("import_graph")


def test_the_package_has_no_import_cycle():
    ig = _script()
    g = ig.graph()
    assert (
        "simulator.engine.forecast" in g
        and "simulator.model.posterior" in g["simulator.engine.forecast"]
    )
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


def test_every_import_points_down_the_layers():
    """docs/design.md §2's layer order holds for every import of the package, and every module is
    in a layer."""
    ig = _script()
    g = ig.graph()
    for m in g:
        ig.layer_of(m)
    assert ig.upward_imports(g) == []


def test_a_planted_upward_import_is_found(tmp_path: Path):
    """The layer check can fail: a low module that imports (inside a function) from a higher one."""
    ig = _script()
    pkg = tmp_path / "pkg"
    for sub in ("io", "engine"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "engine" / "decide.py").write_text("from ..io.read import x\n")
    (pkg / "io" / "read.py").write_text("x = 1\n")
    layers = [("",), ("engine",), ("io",)]
    g = ig.graph(tmp_path, "pkg")
    assert ig.upward_imports(g, "pkg", layers) == []
    (pkg / "io" / "read.py").write_text("def y():\n    from ..engine import decide\n")
    assert ig.upward_imports(ig.graph(tmp_path, "pkg"), "pkg", layers) == [
        "pkg.io.read -> pkg.engine.decide"
    ]
    (pkg / "io" / "stray.py").write_text("")
    try:
        ig.layer_of("pkg.stray", "pkg", layers[1:])
    except KeyError as e:
        assert "pkg.stray" in str(e)
    else:
        raise AssertionError("a module outside every layer was accepted")
