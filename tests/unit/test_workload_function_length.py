"""No function in the workloads is over 80 lines (DESIGN.md section 9: the training step split by
role, one run lifecycle; long functions are where behaviour hides)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ROOT / "workloads" / "glassbox_workloads"
LIMIT = 80


def long_functions(package: Path, limit: int = LIMIT) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    out.append(f"{path.relative_to(package.parent)}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_workload_function_is_over_80_lines():
    too_long = long_functions(WORKLOADS)
    assert not too_long, f"split these (at most {LIMIT} lines each): {too_long}"


def test_the_check_sees_a_long_function(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text("def f():\n" + "    x = 1\n" * LIMIT + "\ndef g():\n    return 1\n")
    assert [s.split()[1] for s in long_functions(pkg)] == ["f"]
