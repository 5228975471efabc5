"""The scorerservice entry: `python -m glassbox_workloads scorerservice --spec FILE [--stage train|serve]`.

Without `--stage` (glassbox run) it adapts the scorer when spec.adaptation is set, publishing like a
batch kind (`run:` and `manifest:` lines), then serves until SIGTERM (`serving: http://HOST:PORT`).
In a cluster the adaptation Job runs `--stage train` and the InferenceService `--stage serve`,
which loads the adapted checkpoint (KServe's storage initializer puts it in MODEL_DIR, else it is
read from the run manifest with sha256 checks).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.kinds.scorerservice import ScorerServiceSpec
from glassbox_api.manifest import read_manifest
from glassbox_api.podcontract import ExitCode
from glassbox_api.store import ArtifactStore, open_store

from ..runtime.context import RunContext
from ..runtime.errors import BadInput, report_failure
from ..runtime.lifecycle import OpenRun, RunIdentity, TrainingResult, run_training
from ..runtime.spec import Resource, load_or_report
from .generator import Generator, load_generator
from .model import Scorer, load_scorer
from .train import KIND, AdaptationWorkload

log = logging.getLogger("glassbox.scorer")


def adapt(resource: Resource, root: ArtifactStore, ctx: RunContext, generator: Optional[Generator]) -> TrainingResult:
    spec: ScorerServiceSpec = resource.spec
    store = root.sub(resource.run_prefix)
    who = RunIdentity(KIND, resource.name, resource.namespace, resource.uid)
    base_dir = ctx.spec_file.resolve().parent if ctx.spec_file else None
    work = AdaptationWorkload(spec, who, resource.raw_spec, root, base_dir, generator, ctx.force_cpu)
    say = (lambda msg: print(msg, flush=True)) if not ctx.quiet else (lambda msg: None)
    return run_training(work, OpenRun(store, read_manifest(store), True, ctx, say), who.fields())


def summary_lines(name: str, res: TrainingResult) -> list[str]:
    head = "already adapted" if res.already_complete else f"adapted in {res.steps} steps ({res.seconds:.1f} s)"
    out = [f"ScorerService {name}: {head}" + (f", loss {res.loss:.4f}" if res.loss is not None else "")]
    if res.evals:
        out.append("eval: " + " ".join(f"{k}={v:.4g}" for k, v in sorted(res.evals.items())))
    out.append(f"run:      {res.run_uri}")
    out.append(f"manifest: {res.run_uri.rstrip('/')}/manifest.json")
    return out


def _adapted_weights(resource: Resource, root: ArtifactStore) -> Path:
    """The adapted checkpoint of this resource's run, downloaded and sha256-checked into a temp folder."""
    store = root.sub(resource.run_prefix)
    m = read_manifest(store)
    if m is None or m.latest is None:
        raise BadInput("spec.adaptation", f"no adapted checkpoint in {store.uri()} yet",
                       "run the adaptation first (--stage train), or serve without --stage")
    dest = Path(tempfile.mkdtemp(prefix="glassbox-scorer-serve-"))
    for f in m.latest.files:
        store.get_file(f"{m.latest.path}/{f.path}", dest / f.path, sha256=f.sha256)
    return dest


def serving_scorer(resource: Resource, root: ArtifactStore, ctx: RunContext) -> Scorer:
    """The weights the server loads: MODEL_DIR (KServe's storage initializer), else the adapted
    checkpoint, else spec.model (which must then carry the regression head)."""
    spec: ScorerServiceSpec = resource.spec
    base_dir = ctx.spec_file.resolve().parent if ctx.spec_file else None
    model_dir = Path(ctx.model_dir) if ctx.model_dir else None
    if model_dir is not None and (model_dir / "config.json").is_file():
        model, field = ModelSpec.model_validate({"uri": str(model_dir)}), "MODEL_DIR"
    elif spec.adaptation is not None:
        model, field = ModelSpec.model_validate({"uri": str(_adapted_weights(resource, root))}), "spec.adaptation"
    else:
        model, field = spec.model, "spec.model"
    return load_scorer(model, max_length=spec.max_length, store=root, namespace=resource.namespace,
                       base_dir=base_dir, need_head=True, field=field, force_cpu=ctx.force_cpu)


def _generator(resource: Resource, root: ArtifactStore, ctx: RunContext) -> Optional[Generator]:
    g = resource.spec.generator
    if g is None:
        return None
    base_dir = ctx.spec_file.resolve().parent if ctx.spec_file else None
    return load_generator(g, store=root, namespace=resource.namespace, base_dir=base_dir,
                          api_key=ctx.openai_api_key, force_cpu=ctx.force_cpu)


def main(ctx: RunContext) -> int:
    assert ctx.spec_file is not None and ctx.store is not None
    resource = load_or_report(ctx.spec_file, "ScorerService", run_id=ctx.run_id)
    if resource is None:
        return ExitCode.INVALID_SPEC
    spec: ScorerServiceSpec = resource.spec
    try:
        root = open_store(ctx.store)
        generator: Any = None
        if spec.adaptation is not None and ctx.stage in (None, "train"):
            generator = _generator(resource, root, ctx) if spec.generator and spec.adaptation.generate_samples else None
            res = adapt(resource, root, ctx, generator)
            if not ctx.quiet:
                print("\n".join(summary_lines(resource.name, res)), flush=True)
        if ctx.stage == "train":
            return ExitCode.OK
        from .app import run_server

        return run_server(resource, ctx, lambda: serving_scorer(resource, root, ctx),
                          lambda: generator or _generator(resource, root, ctx))
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line and an exit code
        return report_failure(resource.kind, resource.name, exc)
