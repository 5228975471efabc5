"""spec.aligner.train: the D aligner trained here, from weak supervision built automatically, and
published as a checkpoint of this run before the metrics score with it.

The weak supervision is CTC's (metrics.ctc.weak): each training text is masked along a phrase tree,
the masks are refilled, and a refilled word is labelled 1 (hallucinated) iff its filling differs
from the original. The refiller is the rule-based one (random words of the texts' own vocabulary):
the authors' BART infiller is not installable offline. Training texts are, per example, its source
(document or input sentence) judged against itself (summarization: CTC's "output: an extract of the
document, context: the document"), or for dialog its references against knowledge and history.

The trained aligner is `checkpoints/<steps>/` in Hugging Face layout, listed in the manifest with its
sha256 and its validation numbers (token F1 and ROC-AUC of the hallucinated class); a restarted
run that finds it there loads it instead of training again.
"""

from __future__ import annotations

import math
import random
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from glassbox_api.kinds.metriceval import MetricEvalSpec
from glassbox_api.manifest import CheckpointEntry, FileEntry, checkpoint_dir
from glassbox_api.store import sha256_file

from ..runtime import hfmodels
from ..runtime.errors import BadInput
from .examples import Examples, read_rows
from .ledger import Ledger
from .models import Models

VAL_FRACTION = 0.1
"""Held out for validation, as the authors split 90/10."""


def training_pairs(spec: MetricEvalSpec, ex: Examples, base_dir: Optional[Path]) -> list[tuple[str, str]]:
    """(text to hallucinate, its context) pairs."""
    from ..metrics.text import sent_tokenize

    t = spec.aligner.train if spec.aligner else None
    assert t is not None
    if t.data is not None:
        rows = read_rows(t.data, base_dir)
        texts = [r.data.get(t.text_field) for r in rows]
        if not all(isinstance(x, str) and x.strip() for x in texts):
            bad = next(r.where for r, x in zip(rows, texts) if not (isinstance(x, str) and x.strip()))
            raise BadInput("spec.aligner.train.data", f"{bad} has no text in field {t.text_field!r}",
                           "set aligner.train.textField to the field holding each text")
    elif spec.task == "dialog" and ex.references and ex.knowledge:
        return [(r, f"{k}\n\n\n{h}" if ex.sources else k) for rs, k, h in
                zip(ex.references, ex.knowledge, ex.sources or [""] * len(ex)) for r in rs]
    else:
        texts = ex.sources or ex.outputs
    pairs = []
    for doc in texts:
        sentences = sent_tokenize(doc) or [doc]
        pairs += [(s, doc) for s in sentences if len(s.split()) >= 3]
    return pairs


def _published(ledger: Ledger) -> Optional[CheckpointEntry]:
    return ledger.manifest.latest


def _download(ledger: Ledger, entry: CheckpointEntry) -> Path:
    dest = Path(tempfile.mkdtemp(prefix="glassbox-aligner-"))
    for f in entry.files:
        ledger.store.get_file(f"{entry.path}/{f.path}", dest / f.path, sha256=f.sha256)
    return dest


def _publish(ledger: Ledger, folder: Path, steps: int, evals: dict[str, float]) -> CheckpointEntry:
    """Upload the saved aligner, verify every file, then list it in the manifest (the commit point)."""
    path = checkpoint_dir(steps)
    files = []
    for p in sorted(x for x in folder.rglob("*") if x.is_file()):
        rel = p.relative_to(folder).as_posix()
        digest = sha256_file(p)
        info = ledger.store.put_file(f"{path}/{rel}", p, sha256=digest)
        ledger.store.verify(f"{path}/{rel}", digest, info.size)
        files.append(FileEntry(path=rel, sha256=digest, size=info.size))
    entry = CheckpointEntry(step=steps, tokens=0, path=path, files=files, resumable=False,
                            evals={k: float(v) for k, v in evals.items() if isinstance(v, (int, float))})
    ledger.add_checkpoint(entry)
    return entry


def train_aligner(spec: MetricEvalSpec, ex: Examples, models: Models, ledger: Ledger,
                  say: Callable[[str], None], base_dir: Optional[Path] = None) -> CheckpointEntry:
    """Train (or, on a restart, fetch) the D aligner; Models uses it for every direction without its own."""
    done = _published(ledger)
    if done is not None:
        models.trained_aligner = _download(ledger, done)
        say(f"D aligner already trained: {ledger.uri(done.path)}")
        return done
    from ..metrics.ctc import train as ctc_train
    from ..metrics.ctc import weak
    from ..metrics.ctc.load import load_aligner
    from ..metrics.text import is_stopword

    assert spec.aligner is not None and spec.aligner.train is not None
    t = spec.aligner.train
    pairs = training_pairs(spec, ex, base_dir)
    if not pairs:
        raise BadInput("spec.aligner.train", "no text of three words or more to build weak supervision from",
                       "give the examples longer sources, or point aligner.train.data at texts")
    rng = random.Random(t.seed)
    drawn = [pairs[rng.randrange(len(pairs))] for _ in range(t.examples)]
    # Refills are content words of the texts' own vocabulary (a masked span is never a stop word).
    vocabulary = sorted({w for text, ctx in pairs for w in (text + " " + ctx).split()
                         if w.isalpha() and not is_stopword(w)})
    built = weak.build_examples(drawn, weak.RandomWordRefiller(vocabulary), seed=t.seed)
    n_val = max(1, int(len(built) * VAL_FRACTION))
    if len(built) < 2 * n_val:
        raise BadInput("spec.aligner.train", f"only {len(built)} weakly supervised examples could be built",
                       "raise aligner.train.examples, or train on longer texts")
    ledger.commit(currentMetric="aligner training")
    aligner = load_aligner("discriminative", spec.aligner.model, store=models.store, namespace=models.namespace,
                           field="spec.aligner.model", trained=False, device=models.device, seed=t.seed,
                           tokenizer_texts=[f"{a} {b}" for a, b in pairs])
    # batchSize examples per optimizer step, as one batch (the authors' 1 x 16 accumulation is the same
    # step with a sixteenth of the memory and much more time).
    config = ctc_train.TrainConfig(lr=t.learning_rate, batch_size=t.batch_size, accumulation=1,
                                   epochs=t.epochs, seed=t.seed)
    aligner, evals = ctc_train.train_discriminative(aligner, built[n_val:], built[:n_val], config)
    steps = t.epochs * math.ceil((len(built) - n_val) / t.batch_size)
    folder = hfmodels.save(aligner.model, aligner.tokenizer, Path(tempfile.mkdtemp(prefix="glassbox-aligner-")))
    entry = _publish(ledger, folder, steps, evals)
    models.trained_aligner = folder
    say(f"D aligner trained on {len(built) - n_val} weak examples: " +
        ", ".join(f"{k} {v:.3g}" for k, v in entry.evals.items()))
    return entry
