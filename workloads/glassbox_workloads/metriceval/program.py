"""One MetricEval run: load and check the examples, (train the D aligner,) score them chunk by chunk,
(follow a training run's checkpoints,) and publish scores.jsonl, summary.json and curve.jsonl.

Everything published is listed in the run's manifest.json (ledger.py) before the run goes on, so a
failed attempt loses nothing: the next one resumes after the last recorded chunk and curve point.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from glassbox_api.kinds.metriceval import LM_METRICS, MetricEvalSpec
from glassbox_api.manifest import RunRecord, spec_digest
from glassbox_api.store import ArtifactStore

from ..runtime.context import RunContext
from ..runtime.errors import BadInput
from ..runtime.publisher import PublishError, ensure_run_record
from ..runtime.spec import Resource
from . import examples as examples_mod
from . import registry
from .follow import Follower, curve_state, find_source
from .ledger import Ledger
from .models import Models
from .scoring import corpus_results, publish_results, score_chunks, summary

# Spec fields that may change between attempts without changing what the run computes.
VOLATILE = ("resources", "storage", "suspend", "failurePolicy")


@dataclass
class EvalResult:
    run_uri: str
    examples: int = 0
    results: dict[str, Any] = field(default_factory=dict)
    curve: Optional[dict[str, Any]] = None
    already_complete: bool = False
    resumed_chunks: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)


def guarded_spec(raw: dict[str, Any]) -> dict[str, Any]:
    """The part of the spec a resumed attempt must share with the first one (not the operator's runUri)."""
    spec = {k: v for k, v in raw.items() if k not in VOLATILE}
    fr = (spec.get("model") or {}).get("fromRun")
    if isinstance(fr, dict) and "runUri" in fr:
        spec["model"] = {**spec["model"], "fromRun": {k: v for k, v in fr.items() if k != "runUri"}}
    return spec


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("glassbox", "torch", "transformers", "rouge-score", "sacrebleu", "nltk", "bert-score"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def record(resource: Resource, ctx: RunContext) -> RunRecord:
    env = _versions()
    spec: MetricEvalSpec = resource.spec
    seeds = {"alignerTraining": spec.aligner.train.seed} if spec.aligner and spec.aligner.train else {}
    return RunRecord(kind=resource.kind, name=resource.name, namespace=resource.namespace, uid=resource.uid,
                     spec=resource.raw_spec, spec_digest=spec_digest(guarded_spec(resource.raw_spec)),
                     code_version=ctx.code_version or env.get("glassbox", ""), image=ctx.image, seeds=seeds,
                     environment=env)


def _device(ctx: RunContext) -> str:
    import torch

    return "cuda" if torch.cuda.is_available() and not ctx.force_cpu else "cpu"


def _identity(resource: Resource) -> dict[str, str]:
    return {"kind": resource.kind, "name": resource.name, "namespace": resource.namespace, "uid": resource.uid}


def run(resource: Resource, root: ArtifactStore, ctx: RunContext, say: Callable[[str], None] = lambda m: None) -> EvalResult:
    """Score the resource's examples into its run folder under root."""
    spec: MetricEvalSpec = resource.spec
    store = root.sub(resource.run_prefix)
    base_dir = ctx.spec_file.resolve().parent if ctx.spec_file else None
    defs = registry.resolve(spec)
    follow = spec.follows_checkpoints()
    curve_defs = [d for d in defs if follow and d.name in LM_METRICS]
    scored = [d for d in defs if d not in curve_defs]
    ex = examples_mod.load(spec.data, spec.fields, registry.needs(defs), base_dir)
    ledger = Ledger(store, _identity(resource), len(ex))
    result = EvalResult(run_uri=store.uri())
    if ledger.was_complete:
        say(f"already complete: {len(ex)} examples scored")
        return _finished(result, ledger, already=True)
    try:
        ensure_run_record(store, record(resource, ctx))
    except PublishError as exc:
        raise BadInput("spec", str(exc), "create a new MetricEval for the changed spec") from exc
    result.resumed_chunks = len(ledger.chunks())
    ledger.commit(results=ledger.final.get("results", {}))
    models = Models(spec, store=root, namespace=resource.namespace, base_dir=base_dir, device=_device(ctx))
    if spec.aligner is not None and spec.aligner.train is not None:
        from .aligner_training import train_aligner

        train_aligner(spec, ex, models, ledger, say, base_dir)
    env = registry.Env(spec, load=models)
    rows = score_chunks(ex, scored, env, ledger, spec.chunk_size, say)
    results = corpus_results(ex, scored, env, rows, ledger)
    ledger.commit(results=results)
    curve_rows, curve = None, None
    if follow:
        curve_rows, curve = _follow(spec, root, resource.namespace, ex, curve_defs, env, models, ledger, say)
        results[spec.curve.metric] = curve.get("latest")
    publish_results(ledger, rows, summary(ex, results, rows, curve), curve_rows)
    ledger.complete(results=results, examplesScored=len(ex))
    return _finished(result, ledger)


def _follow(spec: MetricEvalSpec, root: ArtifactStore, namespace: str, ex: examples_mod.Examples,
            defs: list[registry.MetricDef], env: registry.Env, models: Models, ledger: Ledger,
            say: Callable[[str], None]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The curve: every checkpoint of the followed run, evaluated by the LM metrics."""
    from glassbox_api.kinds.common import ModelSpec

    from .scoring import _compute, _number

    source, name = find_source(spec, root, namespace)

    def evaluate(model_dir: Path, entry: Any) -> dict[str, Any]:
        models.lm_override = models.language_model(ModelSpec(uri=str(model_dir)), "spec.model.fromRun")
        try:
            out = {}
            for d in defs:
                ledger.note(currentMetric=f"{d.name}@step-{entry.step}")
                out[d.name] = _number(_compute(d, ex, env).corpus)
            return out
        finally:
            models.lm_override = None

    def commit(points: list[dict[str, Any]], state: dict[str, Any]) -> None:
        ledger.commit(curvePoints=points, curve=state)

    follower = Follower(source, name, spec.curve, evaluate, commit, points=ledger.curve(), say=say)
    points = follower.run()
    return points, curve_state(points, spec.curve)


def _finished(result: EvalResult, ledger: Ledger, already: bool = False) -> EvalResult:
    final = ledger.final
    result.examples = final.get("examplesTotal", 0)
    result.results = dict(final.get("results") or {})
    result.curve = final.get("curve")
    result.outputs = dict(final.get("outputs") or {})
    result.already_complete = already
    return result
