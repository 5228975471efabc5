"""The dialogbot entry: `python -m glassbox_workloads dialogbot --spec FILE [--stage train|serve]`.

Without `--stage` (glassbox run) it trains when spec.training is set, publishing like a batch kind
(`run:` and `manifest:` lines), then serves until SIGTERM (`serving: http://HOST:PORT`). In a
cluster the training Job runs `--stage train` and the InferenceService `--stage serve`, which loads
MODEL_DIR (KServe's storage initializer put the checkpoint the operator chose there), else the
run's published (best) checkpoint, read with sha256 checks, else spec.model as it is.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.kinds.dialogbot import DialogBotSpec
from glassbox_api.manifest import read_manifest
from glassbox_api.podcontract import ExitCode
from glassbox_api.store import ArtifactStore, open_store

from ..runtime.context import RunContext
from ..runtime.errors import BadInput, report_failure
from ..runtime.lifecycle import OpenRun, RunIdentity, TrainingResult, run_training
from ..runtime.spec import Resource, load_or_report
from ..serving.batching import Batcher
from ..serving.metrics import ServingMetrics
from ..serving.server import LOCAL_HOST, POD_HOST, ServeOptions, serve
from .model import DialogModel, load_model
from .train import KIND, DialogTrainingWorkload

log = logging.getLogger("glassbox.dialogbot")


def _base_dir(ctx: RunContext) -> Optional[Path]:
    return ctx.spec_file.resolve().parent if ctx.spec_file else None


def train(resource: Resource, root: ArtifactStore, ctx: RunContext) -> TrainingResult:
    store = root.sub(resource.run_prefix)
    who = RunIdentity(KIND, resource.name, resource.namespace, resource.uid)
    work = DialogTrainingWorkload(resource.spec, who, resource.raw_spec, root, _base_dir(ctx), ctx.force_cpu)
    say = (lambda msg: print(msg, flush=True)) if not ctx.quiet else (lambda msg: None)
    return run_training(work, OpenRun(store, read_manifest(store), True, ctx, say), who.fields())


def summary_lines(name: str, res: TrainingResult) -> list[str]:
    head = "already trained" if res.already_complete else f"trained, best checkpoint at step {res.steps} ({res.seconds:.1f} s)"
    out = [f"DialogBot {name}: {head}" + (f", loss {res.loss:.4f}" if res.loss is not None else "")]
    if res.evals:
        out.append("test: " + " ".join(f"{k}={v:.4g}" for k, v in sorted(res.evals.items())))
    out.append(f"run:      {res.run_uri}")
    out.append(f"manifest: {res.run_uri.rstrip('/')}/manifest.json")
    return out


def _trained_weights(resource: Resource, root: ArtifactStore) -> Path:
    """The run's published checkpoint, downloaded and sha256-checked into a temp folder."""
    store = root.sub(resource.run_prefix)
    m = read_manifest(store)
    if m is None or m.latest is None:
        raise BadInput("spec.training", f"no trained checkpoint in {store.uri()} yet",
                       "run the training first (--stage train), or serve without --stage")
    dest = Path(tempfile.mkdtemp(prefix="glassbox-dialogbot-serve-"))
    for f in m.latest.files:
        store.get_file(f"{m.latest.path}/{f.path}", dest / f.path, sha256=f.sha256)
    return dest


def chosen_checkpoint(spec: DialogBotSpec, ctx: RunContext) -> Optional[str]:
    """At `--stage serve` the operator writes the checkpoint it chose to serve into spec.model.uri (a
    refused candidate's run is this spec's own run: its latest is not what serves); None otherwise."""
    uri = spec.model.uri
    return uri if ctx.stage == "serve" and uri and "/checkpoints/" in uri else None


def serving_model(resource: Resource, root: ArtifactStore, ctx: RunContext) -> DialogModel:
    """MODEL_DIR, else the checkpoint the operator chose, else the trained checkpoint, else
    spec.model (weights it must have)."""
    spec: DialogBotSpec = resource.spec
    model_dir = Path(ctx.model_dir) if ctx.model_dir else None
    if model_dir is not None and (model_dir / "config.json").is_file():
        model, field = ModelSpec.model_validate({"uri": str(model_dir)}), "MODEL_DIR"
    elif spec.training is not None and chosen_checkpoint(spec, ctx):
        model, field = spec.model, "spec.model.uri"
    elif spec.training is not None:
        model, field = ModelSpec.model_validate({"uri": str(_trained_weights(resource, root))}), "spec.training"
    else:
        model, field = spec.model, "spec.model"
    return load_model(spec, model=model, field=field, store=root, namespace=resource.namespace,
                      base_dir=_base_dir(ctx), force_cpu=ctx.force_cpu)


def run_server(resource: Resource, ctx: RunContext, root: ArtifactStore) -> int:
    # Here, not at module level: the service needs the serve extra (FastAPI, KServe), which the
    # training stage's image (torch) does not carry; only the serving image does.
    from .service import Conversation, DialogState, make_model, router

    spec: DialogBotSpec = resource.spec
    holder: dict[str, DialogModel] = {}

    def forward(convs: list[Conversation]) -> list[str]:
        return holder["dm"].replies([h for h, _ in convs], spec.decoding, [d for _, d in convs])

    metrics = ServingMetrics(resource.name, "replies")
    state = DialogState(resource.name, Batcher(forward, 8, on_batch=metrics.batch), spec.serving.disclaimer,
                        spec.serving.log_patient_text, metrics)
    model: Any = make_model(state)

    def load() -> None:
        holder["dm"] = serving_model(resource, root, ctx)

    def ready() -> None:
        state.ready = model.ready = True

    host = ctx.host or (POD_HOST if ctx.stage == "serve" else LOCAL_HOST)
    options = ServeOptions(host=host, port=8080 if ctx.port is None else ctx.port)
    return serve([model], load=load, ready=ready, routers=[router(state)], options=options)


def main(ctx: RunContext) -> int:
    assert ctx.spec_file is not None and ctx.store is not None
    resource = load_or_report(ctx.spec_file, "DialogBot", run_id=ctx.run_id)
    if resource is None:
        return ExitCode.INVALID_SPEC
    spec: DialogBotSpec = resource.spec
    try:
        root = open_store(ctx.store)
        if spec.training is not None and ctx.stage in (None, "train"):
            res = train(resource, root, ctx)
            if not ctx.quiet:
                print("\n".join(summary_lines(resource.name, res)), flush=True)
        if ctx.stage == "train":
            return ExitCode.OK
        return run_server(resource, ctx, root)
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line and an exit code
        return report_failure(resource.kind, resource.name, exc)
