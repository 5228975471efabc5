"""Chunked scoring: each chunk is published and recorded in the manifest before the next starts, a
restarted run scores only the chunks its manifest does not list, and a failure loses nothing that was
already published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glassbox_api.kinds.metriceval import MetricEvalSpec
from glassbox_api.manifest import read_manifest
from glassbox_api.store import ChecksumMismatch, LocalStore
from glassbox_workloads.metrics.base import ExampleError, Scores
from glassbox_workloads.metriceval import registry
from glassbox_workloads.metriceval.examples import Examples
from glassbox_workloads.metriceval.ledger import Ledger
from glassbox_workloads.metriceval.scoring import corpus_results, score_chunks
from glassbox_workloads.runtime.errors import BadInput

IDENTITY = {"kind": "MetricEval", "name": "m", "namespace": "default", "uid": "u1"}


def examples(n: int = 10) -> Examples:
    return Examples(ids=[f"e{i}" for i in range(n)], outputs=[f"text number {i}" for i in range(n)],
                    where=[f"line {i + 1} of ex.jsonl" for i in range(n)])


class Counting:
    """A per-example metric (the output's length) that records which examples it saw, and can fail."""

    def __init__(self, fail_on: str | None = None, bad_example: str | None = None):
        self.seen: list[str] = []
        self.fail_on, self.bad_example = fail_on, bad_example

    def __call__(self, ex: Examples, env: registry.Env) -> Scores:
        if self.fail_on in ex.ids:
            raise RuntimeError("the node went away")
        if self.bad_example in ex.ids:
            raise ExampleError(ex.ids.index(self.bad_example), "references", "the reference is empty")
        self.seen += ex.ids
        vals = [float(len(t)) for t in ex.outputs]
        return Scores(vals, sum(vals) / len(vals))


def env() -> registry.Env:
    return registry.Env(MetricEvalSpec.model_validate({"task": "generation", "metrics": ["rouge-l"], "data": {"uri": "x"}}))


def test_chunks_are_recorded_and_a_restart_scores_only_the_rest(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = Counting(fail_on="e7")
    d = registry.MetricDef("len", first)
    with pytest.raises(RuntimeError):
        score_chunks(examples(), [d], env(), Ledger(store, IDENTITY, 10), chunk_size=3)
    m = read_manifest(store)
    assert m is not None and [c["index"] for c in m.final["chunks"]] == [0, 1] and m.final["examplesScored"] == 6
    assert first.seen == [f"e{i}" for i in range(6)]

    second = Counting()
    rows = score_chunks(examples(), [registry.MetricDef("len", second)], env(), Ledger(store, IDENTITY, 10), chunk_size=3)
    assert second.seen == ["e6", "e7", "e8", "e9"]  # chunks 0 and 1 came back from the store
    assert [r["id"] for r in rows] == [f"e{i}" for i in range(10)]
    assert rows[7] == {"id": "e7", "len": float(len("text number 7"))}
    assert read_manifest(store).final["examplesScored"] == 10


def test_a_chunk_file_that_no_longer_matches_its_sha256_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    score_chunks(examples(4), [registry.MetricDef("len", Counting())], env(), Ledger(store, IDENTITY, 4), chunk_size=2)
    (tmp_path / "chunks" / "00000.jsonl").write_text(json.dumps({"id": "e0", "len": 0.0}) + "\n")
    with pytest.raises(ChecksumMismatch):
        score_chunks(examples(4), [registry.MetricDef("len", Counting())], env(), Ledger(store, IDENTITY, 4), chunk_size=2)


def test_bad_example_in_a_later_chunk_names_its_line_and_keeps_what_was_published(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    d = registry.MetricDef("len", Counting(bad_example="e5"))
    with pytest.raises(BadInput) as err:
        score_chunks(examples(), [d], env(), Ledger(store, IDENTITY, 10), chunk_size=4)
    assert err.value.field == "spec.data" and "line 6 of ex.jsonl" in str(err.value) and "(len)" in str(err.value)
    m = read_manifest(store)
    (chunk,) = m.final["chunks"]
    assert (chunk["start"], chunk["end"]) == (0, 4)
    store.verify(chunk["path"], chunk["sha256"], chunk["size"])  # still there, still whole


def test_corpus_values_from_per_example_ones_or_recomputed_and_set_level(tmp_path: Path) -> None:
    ledger = Ledger(LocalStore(tmp_path), IDENTITY, 4)
    ex = examples(4)
    mean = registry.MetricDef("len", Counting())
    recompute = registry.MetricDef("rc", lambda e, v: Scores([0.0] * len(e), 42.0), corpus="recompute")
    setlevel = registry.MetricDef("set", lambda e, v: Scores(None, float(len(e))), corpus="set")
    rows = score_chunks(ex, [mean, recompute, setlevel], env(), ledger, chunk_size=3)
    assert all("set" not in r for r in rows)
    got = corpus_results(ex, [mean, recompute, setlevel], env(), rows, ledger)
    assert got == {"len": pytest.approx(sum(len(t) for t in ex.outputs) / 4), "rc": 42.0, "set": 4.0}
