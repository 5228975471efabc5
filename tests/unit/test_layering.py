"""The dependency rules of DESIGN.md section 1 hold by test, not by hope."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "glassbox_api": ROOT / "api" / "glassbox_api",
    "glassbox_operator": ROOT / "operator" / "glassbox_operator",
    "glassbox_workloads": ROOT / "workloads" / "glassbox_workloads",
}
# glassbox_api may use the standard library, pydantic and the minio SDK only.
API_ALLOWED = set(sys.stdlib_module_names) | {"pydantic", "pydantic_core", "minio", "urllib3", "certifi", "glassbox_api"}
# (urllib3 and certifi come with the minio SDK: its HTTP client and CA bundle.)
FORBIDDEN = {
    "glassbox_operator": {"glassbox_workloads", "torch", "jax", "jaxlib", "flax", "optax", "ray", "deepspeed", "transformers", "tokenizers", "safetensors"},
    "glassbox_workloads": {"glassbox_operator", "kopf", "kubernetes"},
}


def imports_of(package: Path) -> dict[str, set[str]]:
    """Top-level module names imported by each file, relative imports excluded."""
    out: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
                if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    names.add(node.args[0].value.split(".")[0])
        out[str(path.relative_to(package.parent))] = names
    return out


def test_no_package_is_named_operator():
    # A top-level package called `operator` would shadow the standard library module.
    for root in ("api", "operator", "workloads"):
        assert not (ROOT / root / "operator").exists()


def test_api_depends_on_pydantic_and_minio_only():
    bad = {f: sorted(n - API_ALLOWED) for f, n in imports_of(PACKAGES["glassbox_api"]).items() if n - API_ALLOWED}
    assert not bad, f"glassbox_api imports outside its allowance: {bad}"


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_forbidden_imports(package):
    bad = {f: sorted(n & FORBIDDEN[package]) for f, n in imports_of(PACKAGES[package]).items() if n & FORBIDDEN[package]}
    assert not bad, f"{package} breaks the layering: {bad}"


def test_scanner_sees_imports(tmp_path):
    # The rules above can fail: every import form a file may use is seen.
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "import torch.nn\nfrom kopf import on\nfrom . import sibling\nimport importlib\n"
        "importlib.import_module('jax.numpy')\n"
    )
    assert imports_of(pkg) == {"p/m.py": {"torch", "kopf", "importlib", "jax"}}


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the dev extra"
    res = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Contracts: 4 kept, 0 broken" in res.stdout
