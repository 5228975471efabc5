"""No function in the operator is over 80 lines: passes read as a sequence of named steps
(reconcile: observe, compute, act; status: one function per situation)."""

from __future__ import annotations

import ast
from pathlib import Path

import glassbox_operator

LIMIT = 80
PKG = Path(glassbox_operator.__file__).resolve().parent


def test_no_operator_function_over_the_limit():
    long = []
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > LIMIT:
                    long.append(f"{path.relative_to(PKG)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []
