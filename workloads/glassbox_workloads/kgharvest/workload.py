"""The KGHarvest run: open the run folder, get the masked LM (from weights, or trained from its
config on spec.pretrain's corpus and published as the run's checkpoint), harvest each relation not
yet published, publish it at once, and finish with kg.jsonl.

Restarts skip what is published: relations listed in the manifest (or with their entry.json), and
the pretrained model (loaded from the run's checkpoint instead of trained again). In an Indexed Job
(resources.workers > 1 on backend job) pod i harvests relation i only.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.kgharvest import KGHarvestSpec
from glassbox_api.manifest import CheckpointEntry, Manifest, RunRecord, checkpoint_dir, read_manifest, spec_digest
from glassbox_api.store import ArtifactStore, join_key, open_store

from ..runtime import hfmodels
from ..runtime.context import RunContext
from ..runtime.publisher import CheckpointPublisher, ensure_run_record
from ..runtime.spec import Resource
from .corpus import pretrain_mlm, read_corpus
from .harvest import harvest_relation
from .mlm import MaskedLM
from .paraphraser import load_generator
from .publish import complete, publish_relation, published_entries, write_manifest

KIND = "KGHarvest"
MLM_HEADS = ("cls.", "lm_head.")
"""State-dict prefixes of the BERT and RoBERTa masked-LM heads: they must come from the checkpoint."""
RECORDED = ("model", "pretrain", "relations", "paraphrase", "promptWeights", "search")
"""Spec fields that decide the harvest: a resumed run must have the same ones (run.json's digest)."""


@dataclass
class RelationDone:
    name: str
    tuples: int
    prompts: int
    top: list[tuple[tuple[str, ...], float]] = field(default_factory=list)
    skipped: bool = False
    """Published by an earlier attempt (or another pod)."""


@dataclass
class HarvestResult:
    run_uri: str
    relations: list[RelationDone]
    complete: bool
    seconds: float
    model: str
    pretrain_loss: Optional[float] = None


def my_relations(spec: KGHarvestSpec, ctx: RunContext) -> list[str]:
    """Every relation, or in an Indexed Job (several workers) the one of this pod's index."""
    names = [r.name for r in spec.relations]
    index = ctx.jax.job_completion_index
    if spec.resources.workers > 1 and index is not None:
        return names[index:index + 1]
    return names


def _record(resource: Resource) -> RunRecord:
    import torch
    import transformers

    decided = {k: v for k, v in resource.raw_spec.items() if k in RECORDED}
    return RunRecord(kind=KIND, name=resource.name, namespace=resource.namespace, uid=resource.uid,
                     spec=resource.raw_spec, spec_digest=spec_digest(decided),
                     seeds={"pretrain": resource.spec.pretrain.seed} if resource.spec.pretrain else {},
                     environment={"torch": torch.__version__, "transformers": transformers.__version__,
                                  "python": sys.version.split()[0]})


def _download_checkpoint(run: ArtifactStore, entry: CheckpointEntry) -> Path:
    dest = Path(tempfile.mkdtemp(prefix="glassbox-kg-model-"))
    for f in entry.files:
        run.get_file(join_key(entry.path, f.path), dest / f.path, sha256=f.sha256)
    return dest


def _pretrained(resource: Resource, run: ArtifactStore, manifest: Manifest, base_dir: Optional[Path],
                say) -> tuple[Any, Any, str, Optional[float]]:
    """The model trained on spec.pretrain's corpus: the run's checkpoint if published, else trained
    now and published as checkpoints/<steps> before any relation is harvested."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    spec = resource.spec
    cfg = spec.pretrain
    if manifest.latest is not None:
        path = _download_checkpoint(run, manifest.latest)
        say(f"model: the run's pretrained checkpoint {manifest.latest.path} (not trained again)")
        return (AutoModelForMaskedLM.from_pretrained(path), AutoTokenizer.from_pretrained(path),
                run.uri(manifest.latest.path), manifest.latest.loss)
    lines = read_corpus(cfg.corpus, base_dir)
    loaded = hfmodels.load(spec.model, AutoModelForMaskedLM, field="spec.model", tokenizer_texts=lines,
                           vocab_size=cfg.vocab_size, seed=cfg.seed, tokenizer_level=cfg.tokenizer,
                           model_max_length=max(cfg.sequence_length, 64))
    tiny_cpu_threads(loaded.model)
    t0 = time.time()
    say(f"pretrain: {cfg.steps} steps on {len(lines)} lines, vocabulary {len(loaded.tokenizer)}")
    loss = pretrain_mlm(loaded.model, loaded.tokenizer, lines, cfg,
                        on_step=lambda s, l: say(f"  step {s}/{cfg.steps} loss {l:.3f}") if s % 100 == 0 else None)
    staging = Path(tempfile.mkdtemp(prefix="glassbox-kg-ckpt-"))
    hfmodels.save(loaded.model, loaded.tokenizer, staging)
    entry = CheckpointEntry(step=cfg.steps, tokens=0, loss=loss, path=checkpoint_dir(cfg.steps), resumable=False)
    pub = CheckpointPublisher(run, manifest=manifest)
    pub.submit(staging, entry)
    pub.close()
    say(f"pretrain: loss {loss:.3f} in {time.time() - t0:.0f} s, published {run.uri(entry.path)}")
    return loaded.model, loaded.tokenizer, run.uri(entry.path), loss


def load_mlm(resource: Resource, run: ArtifactStore, root: ArtifactStore, manifest: Manifest,
             base_dir: Optional[Path], say) -> tuple[MaskedLM, str, Optional[float]]:
    """The masked LM to harvest from, with its MLM head (an encoder without one is BadInput)."""
    from transformers import AutoModelForMaskedLM

    spec = resource.spec
    if spec.pretrain is not None:
        model, tok, where, loss = _pretrained(resource, run, manifest, base_dir, say)
        tiny_cpu_threads(model)
        return MaskedLM(model, tok, device=_device()), where, loss
    loaded = hfmodels.load(spec.model, AutoModelForMaskedLM, store=root, namespace=resource.namespace,
                           field="spec.model", require=MLM_HEADS, base_dir=base_dir)
    tiny_cpu_threads(loaded.model)
    return MaskedLM(loaded.model, loaded.tokenizer, device=_device()), loaded.source.description, None


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


TINY_PARAMS = 5_000_000


def tiny_cpu_threads(model: Any) -> None:
    """One intra-op thread for a tiny model on CPU: its matmuls are smaller than the cost of
    synchronising threads (measured on a busy 2-core host: 2 ms a batch with one thread, 70 ms with two)."""
    import torch

    if _device() == "cpu" and sum(p.numel() for p in model.parameters()) < TINY_PARAMS:
        torch.set_num_threads(1)


def _identity(resource: Resource) -> Manifest:
    return Manifest(kind=KIND, name=resource.name, namespace=resource.namespace, uid=resource.uid)


def run(resource: Resource, ctx: RunContext, base_dir: Optional[Path] = None) -> HarvestResult:
    """One attempt of a harvest (this pod's relations), publishing each relation when it is done."""
    t0 = time.time()
    say = (lambda msg: None) if ctx.quiet else (lambda msg: print(msg, flush=True))
    root = open_store(ctx.store)
    run_store = root.sub(resource.run_prefix)
    spec: KGHarvestSpec = resource.spec
    names = [r.name for r in spec.relations]
    mine = my_relations(spec, ctx)
    base = _identity(resource)
    manifest = read_manifest(run_store) or base
    done = published_entries(run_store, manifest, names)
    todo = [n for n in mine if n not in done]
    results = [RelationDone(n, done[n]["tuples"], done[n]["prompts"], skipped=True) for n in mine if n in done]
    if not todo:
        final = complete(run_store, base, names)
        say(f"already harvested: {', '.join(mine)}")
        return HarvestResult(run_store.uri(), results, final is not None, time.time() - t0, "-")
    ensure_run_record(run_store, _record(resource))
    if spec.pretrain is not None:
        write_manifest(run_store, base, names, stage="pretrain", currentRelation=todo[0])
    mlm, where, loss = load_mlm(resource, run_store, root, read_manifest(run_store) or base, base_dir, say)
    generate = load_generator(spec, root, resource.namespace, base_dir)
    by_name = {r.name: r for r in spec.relations}
    for name in todo:
        stage = lambda s, n=name: write_manifest(run_store, base, names, currentRelation=n, stage=s)  # noqa: E731
        h = harvest_relation(mlm, by_name[name], spec, generate=generate, stage=stage)
        publish_relation(run_store, h)
        write_manifest(run_store, base, names)
        results.append(RelationDone(name, len(h.tuples), sum(1 for w in h.prompts if w.weight > 0),
                                    top=[(e, s) for e, s, _ in h.tuples[:5]]))
        say(f"relation {name}: {len(h.tuples)} tuples, {results[-1].prompts} weighted prompts, "
            f"{h.forward_rows} forward rows -> {run_store.uri(f'relations/{name}/')}")
        ctx.faults.after_step(len(done) + len(results) - sum(r.skipped for r in results))
    final = complete(run_store, base, names)
    return HarvestResult(run_store.uri(), results, final is not None, time.time() - t0, where, loss)
