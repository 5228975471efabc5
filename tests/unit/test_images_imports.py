"""Each image carries only its family's packages (images/*.Dockerfile): the torch image has no serve
extra (KServe, FastAPI: the serving image adds them), the jax image no torch, the operator image no
ML framework. So each program must import without what its image leaves out -- checked here in a
fresh interpreter where those packages cannot be imported, without building any image (the real
images are checked on the real node by tests/real/test_images_import_as_uid_65532.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# image -> (modules its programs start from, packages the image does not carry)
SPLITS = {
    "torch": (["glassbox_workloads.pretrain.main", "glassbox_workloads.kgharvest.main", "glassbox_workloads.metriceval.main",
               "glassbox_workloads.scorer.main", "glassbox_workloads.dialogbot.main"],
              ["kserve", "fastapi"]),
    "jax": (["glassbox_workloads.finetune.main"], ["torch", "transformers", "kserve", "fastapi", "bert_score"]),
    "operator": (["glassbox_operator.cli", "glassbox_operator.main", "glassbox_ui.app"],
                 ["torch", "jax", "numpy", "transformers", "glassbox_workloads"]),
}


def import_without(modules: list[str], absent: list[str]) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(f"""
        import importlib, importlib.abc, sys
        class Absent(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {absent!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (not in this image)", name=name)
        sys.meta_path.insert(0, Absent())
        for m in {modules!r}:
            importlib.import_module(m)
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("image", sorted(SPLITS))
def test_programs_import_without_the_packages_their_image_leaves_out(image: str) -> None:
    modules, absent = SPLITS[image]
    proc = import_without(modules, absent)
    assert proc.returncode == 0, f"{image} image: {proc.stderr[-3000:]}"


def test_the_check_fails_when_a_program_needs_a_left_out_package() -> None:
    proc = import_without(["glassbox_workloads.dialogbot.service"], ["fastapi"])
    assert proc.returncode != 0 and "not in this image" in proc.stderr
