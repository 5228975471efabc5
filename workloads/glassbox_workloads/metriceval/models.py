"""The models a MetricEval's metrics use, loaded once each and only when a metric asks.

- `aligner:<direction>`: the CTC aligner of one direction (spec.aligner.directions.<direction>, else
  spec.aligner.model), through the library's ctc.load (BadInput naming the field when the model lacks
  the head the aligner type needs);
- `model`: the evaluated language model (spec.model), a causal or seq2seq LM with its tokenizer;
- `bertscore`: the BERTScore encoder (spec.bertscore.model) and its tokenizer.

A trained D aligner (spec.aligner.train) replaces spec.aligner.model by the folder it was saved to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.kinds.metriceval import MetricEvalSpec
from glassbox_api.store import ArtifactStore

from ..runtime import hfmodels
from ..runtime.errors import BadInput

LM_HEADS = ("lm_head", "cls.")
"""State-dict prefixes of a language-model head (lm_head: GPT-2, LLaMA, RoBERTa, BART; cls.: BERT):
they must come from the checkpoint, or the perplexity would be that of a random head."""

DIRECTIONS = ("doc_to_summ", "summ_to_ref", "fact_to_response", "fact_history_to_response")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


class Models:
    """Loads on demand and keeps what it loaded (one aligner per distinct model)."""

    def __init__(self, spec: MetricEvalSpec, *, store: Optional[ArtifactStore], namespace: str,
                 base_dir: Optional[Path], device: str = "cpu"):
        self.spec, self.store, self.namespace, self.base_dir, self.device = spec, store, namespace, base_dir, device
        self._loaded: dict[str, Any] = {}
        self.trained_aligner: Optional[Path] = None
        """Set when this run trained its D aligner: every direction without its own model uses it."""
        self.lm_override: Optional[Any] = None
        """(model, tokenizer) of the checkpoint being evaluated, when following a run."""

    def __call__(self, what: str) -> Any:
        if what == "model" and self.lm_override is not None:
            return self.lm_override
        if what not in self._loaded:
            self._loaded[what] = self._load(what)
        return self._loaded[what]

    def _load(self, what: str) -> Any:
        if what.startswith("aligner:"):
            return self._aligner(what.split(":", 1)[1])
        if what == "model":
            assert self.spec.model is not None
            return self.language_model(self.spec.model, "spec.model")
        if what == "bertscore":
            b = self.spec.bertscore
            assert b is not None
            from transformers import AutoModel

            loaded = hfmodels.load(b.model, AutoModel, store=self.store, namespace=self.namespace,
                                   field="spec.bertscore.model", base_dir=self.base_dir)
            return loaded.model.to(self.device).eval(), loaded.tokenizer
        raise KeyError(what)

    def aligner_model(self, direction: str) -> tuple[ModelSpec, str]:
        """The ModelSpec of a direction and the spec field that named it."""
        a = self.spec.aligner
        assert a is not None
        own = getattr(a.directions, direction)
        if own is not None:
            return own, f"spec.aligner.directions.{_camel(direction)}"
        if self.trained_aligner is not None:
            return ModelSpec(uri=str(self.trained_aligner)), "spec.aligner.train"
        return a.model, "spec.aligner.model"

    def _aligner(self, direction: str) -> Any:
        from ..metrics.ctc.load import load_aligner

        a = self.spec.aligner
        if a is None:
            raise BadInput("spec.aligner", "the CTC metrics need an aligner", "add spec.aligner")
        model, field = self.aligner_model(direction)
        key = f"aligner-model:{model.model_dump_json()}"
        if key not in self._loaded:  # one aligner per distinct model, whatever directions share it
            self._loaded[key] = load_aligner(a.type, model, store=self.store, namespace=self.namespace, field=field,
                                             layer=a.layer, device=self.device)
        return self._loaded[key]

    def language_model(self, model: ModelSpec, field: str) -> tuple[Any, Any]:
        """A causal LM (or a seq2seq one) from weights; random initialisation makes no sense to evaluate."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

        source = hfmodels.resolve(model, store=self.store, namespace=self.namespace, field=field,
                                  base_dir=self.base_dir)
        if source.path is None:
            raise BadInput(field, "perplexity evaluates trained weights, and this model is initialised at random",
                           "point spec.model at weights: uri or fromRun")
        config = AutoConfig.from_pretrained(source.path)
        auto = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
        loaded = hfmodels.load(ModelSpec(uri=str(source.path)), auto, field=field, require=LM_HEADS)
        return loaded.model.to(self.device).eval(), loaded.tokenizer
