"""Bad input through the MetricEval program: exit 4 (permanent) with one line naming the field or the
example line, and nothing already published lost; a model without the head a metric needs is
refused naming the spec field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.kinds.metriceval import MetricEvalSpec
from glassbox_api.manifest import read_manifest
from glassbox_api.podcontract import ExitCode
from glassbox_api.store import LocalStore
from glassbox_workloads.metriceval.main import main
from glassbox_workloads.metriceval.models import Models
from glassbox_workloads.runtime.context import RunContext
from glassbox_workloads.runtime.errors import BadInput


def write_spec(tmp_path: Path, rows: list[dict], **spec) -> Path:
    data = tmp_path / "ex.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "MetricEval", "metadata": {"name": "bad"},
           "spec": {"task": "generation", "metrics": ["rouge-l", "dist-1"], "data": {"uri": str(data)},
                    "chunkSize": 2, "resources": {"backend": "local"}, **spec}}
    p = tmp_path / "meval.json"
    p.write_text(json.dumps(doc))
    return p


def run(tmp_path: Path, spec_file: Path) -> int:
    return main(RunContext(kind="metriceval", spec_file=spec_file, store=str(tmp_path / "store"), quiet=True))


def rows(n: int) -> list[dict]:
    return [{"id": f"e{i}", "output": f"the output text {i}", "references": [f"a reference {i}"]} for i in range(n)]


@pytest.mark.parametrize("change, words", [
    (lambda r: r[2].pop("output"), ["line 3 of ex.jsonl", "no field 'output'"]),
    (lambda r: r[3].update(output=""), ["line 4 of ex.jsonl", "'output'", "empty"]),
    (lambda r: r[1].update(references=[]), ["line 2 of ex.jsonl", "'references'"]),
])
def test_bad_example_exits_4_naming_the_line_and_field(tmp_path: Path, capsys, change, words) -> None:
    data = rows(5)
    change(data)
    assert run(tmp_path, write_spec(tmp_path, data)) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "spec.data" in err
    for w in words:
        assert w in err


def test_a_failure_after_published_chunks_keeps_them_and_the_fixed_rerun_resumes(tmp_path: Path, capsys) -> None:
    spec_file = write_spec(tmp_path, rows(6))
    assert run(tmp_path, spec_file) == ExitCode.OK
    (run_dir,) = (tmp_path / "store" / "default" / "metriceval").iterdir()
    m = read_manifest(LocalStore(run_dir))
    assert m.state == "completed" and [c["index"] for c in m.final["chunks"]] == [0, 1, 2]
    for name in ("scores", "summary"):
        e = m.final["outputs"][name]
        LocalStore(run_dir).verify(e["path"], e["sha256"], e["size"])
    assert [json.loads(l)["id"] for l in (run_dir / "scores.jsonl").read_text().splitlines()] == [f"e{i}" for i in range(6)]
    assert json.loads((run_dir / "summary.json").read_text())["results"].keys() == {"rouge-l", "dist-1"}
    before = (run_dir / "manifest.json").stat().st_mtime_ns
    assert run(tmp_path, spec_file) == ExitCode.OK  # again: already complete, nothing written
    assert (run_dir / "manifest.json").stat().st_mtime_ns == before


def test_an_unknown_metric_for_the_task_is_refused_before_anything_runs(tmp_path: Path, capsys) -> None:
    p = write_spec(tmp_path, rows(2), metrics=["consistency"])
    assert run(tmp_path, p) == ExitCode.INVALID_SPEC  # the API refuses it (no aligner, wrong task)
    assert "spec.aligner" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def _encoder(tmp_path: Path) -> Path:
    """A tiny BERT encoder without any head, saved in HF layout."""
    from transformers import BertConfig, BertModel

    from glassbox_workloads.runtime import hfmodels

    tok = hfmodels.train_tokenizer(["a b c d e f g"] * 4, "bert", 40)
    model = BertModel(BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=64))
    return hfmodels.save(model, tok, tmp_path / "encoder")


def test_a_model_without_the_needed_head_is_bad_input_naming_the_field(tmp_path: Path) -> None:
    enc = _encoder(tmp_path)
    spec = MetricEvalSpec.model_validate({
        "task": "summarization", "metrics": ["consistency", "perplexity"], "data": {"uri": "x"},
        "aligner": {"type": "discriminative", "model": {"uri": str(enc)}}, "model": {"uri": str(enc)}})
    models = Models(spec, store=None, namespace="default", base_dir=None)
    with pytest.raises(BadInput) as err:
        models("aligner:doc_to_summ")
    assert err.value.field.startswith("spec.aligner.model") and "head" in str(err.value)
    with pytest.raises(BadInput) as err:
        models("model")
    assert err.value.field.startswith("spec.model") and "head" in str(err.value)
    spec = spec.model_copy(update={"model": spec.model.model_copy(update={"uri": None, "architecture": "gpt2"})})
    with pytest.raises(BadInput, match="initialised at random"):
        Models(spec, store=None, namespace="default", base_dir=None).language_model(ModelSpec(architecture="gpt2"), "spec.model")


def test_summary_lines_end_with_the_contract_lines_and_survive_a_curve_without_values() -> None:
    from glassbox_workloads.metriceval.main import summary_lines
    from glassbox_workloads.metriceval.program import EvalResult

    res = EvalResult(run_uri="s3://b/r", examples=2, results={"rouge-l": 0.5, "perplexity": None},
                     curve={"metric": "perplexity", "points": 0}, outputs={"scores": {"path": "scores.jsonl"}})
    lines = summary_lines("x", res)
    assert lines[-2:] == ["run:      s3://b/r", "manifest: s3://b/r/manifest.json"]
    assert "scores:   s3://b/r/scores.jsonl" in lines and any(l.strip() == "perplexity     -" for l in lines)
    res.curve = {"metric": "perplexity", "points": 2, "latest": 3.0, "checkpoint": "step-2", "best": 2.0,
                 "bestCheckpoint": "step-1"}
    assert "curve: 2 checkpoints; latest step-2 perplexity 3; best step-1 2" in summary_lines("x", res)
