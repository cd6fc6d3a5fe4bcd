"""Audit: no module of derive calls eval, exec, compile, sympify, parse_expr, lambdify,
yaml.load or yaml.unsafe_load, nor imports pickle or marshal (issue 8)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "derive"
BUILTINS = {"eval", "exec", "compile", "sympify", "parse_expr", "lambdify", "__import__", "parse_latex"}
ATTRIBUTES = {"sympify", "parse_expr", "lambdify", "parse_latex", "unsafe_load", "full_load"}
YAML_LOADERS = {"load", "load_all"}  # yaml.load / yaml.load_all (safe_load is what derive uses)
FORBIDDEN_MODULES = {"pickle", "marshal", "shelve", "dill"}


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_code_execution_paths(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            where = f"{path.name}:{node.lineno}"
            if isinstance(f, ast.Name):
                assert f.id not in BUILTINS, f"{where} calls {f.id}"
            elif isinstance(f, ast.Attribute):
                assert f.attr not in ATTRIBUTES, f"{where} calls .{f.attr}"
                owner = f.value.id if isinstance(f.value, ast.Name) else None
                assert not (owner == "yaml" and f.attr in YAML_LOADERS), f"{where} calls yaml.{f.attr}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not FORBIDDEN_MODULES & {n.split(".")[0] for n in names}, f"{path.name}:{node.lineno}"
