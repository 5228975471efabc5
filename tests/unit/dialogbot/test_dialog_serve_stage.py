"""Which weights the serving stage loads: KServe's MODEL_DIR first; else, at `--stage serve`, the
checkpoint the operator chose (eval-gated promotion writes it into spec.model.uri; a refused
candidate is the latest of the spec's own run, so the run's latest must not win); else the run's
trained checkpoint; else spec.model."""

from __future__ import annotations

from pathlib import Path

import pytest

from glassbox_api.store import LocalStore
from glassbox_workloads.dialogbot import main
from glassbox_workloads.runtime.context import RunContext
from glassbox_workloads.runtime.spec import load_resource_doc

CHOSEN = "s3://b/runs/ns/dialogbot/db-1a2b3c4d/checkpoints/00000006"


def bot(model: dict) -> dict:
    return {"apiVersion": "glassbox.dev/v1alpha1", "kind": "DialogBot", "metadata": {"name": "db", "namespace": "ns"},
            "spec": {"model": model, "training": {"data": {"uri": "d.jsonl"}}}}


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, str]]:
    """(model uri, field) of each load; the run's own trained checkpoint is a folder named `own`."""
    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(main, "load_model", lambda spec, *, model, field, **kw: seen.append((model.uri, field)))
    monkeypatch.setattr(main, "_trained_weights", lambda resource, root: tmp_path / "own")
    return seen


@pytest.mark.parametrize("stage,model,want", [
    ("serve", {"uri": CHOSEN}, (CHOSEN, "spec.model.uri")),
    (None, {"uri": CHOSEN}, ("own", "spec.training")),                            # glassbox run: trains, serves its own
    ("serve", {"uri": "s3://b/models/base"}, ("own", "spec.training")),          # a base model, not a chosen checkpoint
])
def test_serve_stage_loads_the_checkpoint_the_operator_chose(loaded, tmp_path, stage, model, want):
    res = load_resource_doc(bot(model), "DialogBot", run_id="abc")
    main.serving_model(res, LocalStore(tmp_path), RunContext(kind="dialogbot", stage=stage))
    uri, field = loaded[0]
    assert (Path(uri).name if field == "spec.training" else uri, field) == want


def test_model_dir_wins_over_everything(loaded, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    res = load_resource_doc(bot({"uri": CHOSEN}), "DialogBot", run_id="abc")
    main.serving_model(res, LocalStore(tmp_path), RunContext(kind="dialogbot", stage="serve", model_dir=str(tmp_path / "m")))
    assert loaded == [(str(tmp_path / "m"), "MODEL_DIR")]
