"""training.compile: the step runs through torch.compile (inductor), trains what eager mode trains to
rounding, and publishes checkpoints under the model's own parameter names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from glassbox_api.manifest import read_manifest
from glassbox_api.store import LocalStore
from glassbox_workloads.pretrain.train import TrainHooks, run_pretrain
from pretrain_tiny import resource, tiny_spec


def run(root: Path, compile: bool):
    spec = tiny_spec(training={"maxSteps": 4, "compile": compile, "deterministic": False}, checkpoint={"everySteps": 4},
                     analysis={"perplexity": True, "memorization": {"enabled": False}})
    res = run_pretrain(resource(spec), LocalStore(root), hooks=TrainHooks(quiet=True))
    run = LocalStore(root).sub(resource(spec).run_prefix)
    m = read_manifest(run)
    return res, m, load_file(run.root / m.latest.path / "model.safetensors")


@pytest.mark.slow
def test_compiled_steps_match_eager_ones(tmp_path: Path) -> None:
    eager, m_e, w_e = run(tmp_path / "eager", False)
    compiled, m_c, w_c = run(tmp_path / "compiled", True)
    assert compiled.steps == eager.steps == 4
    assert w_c.keys() == w_e.keys() and not any("_orig_mod" in k for k in w_c)
    assert m_c.latest.loss == pytest.approx(m_e.latest.loss, rel=1e-4)
    for k in w_e:
        torch.testing.assert_close(w_c[k], w_e[k], rtol=1e-3, atol=1e-5)
