"""The LLM that makes the candidates Cappy ranks: a model glassbox loads itself, or an external
OpenAI-compatible endpoint. Either returns, per prompt, the candidates of every decoding strategy
in the spec's order (beam4 first by default), which is the order ties are broken in."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.kinds.scorerservice import Generator as GeneratorSpec
from glassbox_api.kinds.scorerservice import Strategy
from glassbox_api.store import ArtifactStore

from ..runtime import hfmodels
from ..runtime.errors import BadInput

log = logging.getLogger("glassbox.scorer.generator")

DEFAULT_TOP_K = 50
"""HF generate's top_k default, which the authors' sampling strategies ran with (Strategy.top_k unset)."""


@dataclass(frozen=True)
class Candidate:
    """One generated response and the strategy that made it."""

    text: str
    strategy: str


class Generator(Protocol):
    def generate(self, prompts: Sequence[str]) -> list[list[Candidate]]:
        """Per prompt, the candidates of every strategy in order."""


def sampling_kwargs(s: Strategy) -> dict[str, Any]:
    """transformers generate() arguments of one strategy (num_return_sequences = count)."""
    if not s.sample:
        return {"do_sample": False, "num_beams": s.num_beams, "num_return_sequences": s.count}
    return {"do_sample": True, "num_beams": 1, "num_return_sequences": s.count,
            "temperature": s.temperature if s.temperature is not None else 1.0,
            "top_k": s.top_k if s.top_k is not None else DEFAULT_TOP_K,
            "top_p": s.top_p if s.top_p is not None else 1.0}


class HFGenerator:
    """A causal or seq2seq transformers model, generating on this process's device."""

    def __init__(self, spec: GeneratorSpec, model: Any, tokenizer: Any, device: Any):
        self.spec, self.model, self.tokenizer, self.device = spec, model, tokenizer, device
        self.seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
        if not self.seq2seq:
            tokenizer.padding_side = tokenizer.truncation_side = "left"  # keep the end of a long prompt
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    def _one(self, prompt: str) -> list[Candidate]:
        import torch

        g = self.spec
        enc = self.tokenizer([prompt], truncation=True, max_length=g.max_source_length, return_tensors="pt").to(self.device)
        start = 0 if self.seq2seq else enc["input_ids"].shape[1]
        out: list[Candidate] = []
        torch.manual_seed(g.seed)  # the same prompt gets the same candidates
        with torch.inference_mode():
            for s in g.strategies:
                seqs = self.model.generate(**enc, **sampling_kwargs(s), min_new_tokens=g.min_new_tokens,
                                           max_new_tokens=g.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
                out += [Candidate(self.tokenizer.decode(q[start:], skip_special_tokens=True).strip(), s.name) for q in seqs]
        return out

    def generate(self, prompts: Sequence[str]) -> list[list[Candidate]]:
        self.model.eval()
        return [self._one(p) for p in prompts]


class OpenAIGenerator:
    """An OpenAI-compatible `/completions` endpoint: one request per prompt and strategy.

    A beam strategy is sent as greedy decoding (temperature 0), the only deterministic mode every
    such server has; top_k goes as the extra field vLLM and TGI read."""

    def __init__(self, spec: GeneratorSpec, api_key: Optional[str] = None):
        assert spec.endpoint is not None
        self.spec, self.endpoint, self.api_key = spec, spec.endpoint, api_key

    def _request(self, prompt: str, s: Strategy) -> list[str]:
        body: dict[str, Any] = {"model": self.endpoint.model, "prompt": prompt, "n": s.count,
                                "max_tokens": self.spec.max_new_tokens, "seed": self.spec.seed}
        if s.sample:
            kw = sampling_kwargs(s)
            body.update(temperature=kw["temperature"], top_p=kw["top_p"], top_k=kw["top_k"])
        else:
            body["temperature"] = 0.0
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.endpoint.url.rstrip("/") + "/completions", json.dumps(body).encode(), headers)
        try:
            with urllib.request.urlopen(req, timeout=self.endpoint.timeout_seconds) as resp:
                choices = json.loads(resp.read())["choices"]
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            raise RuntimeError(f"generator endpoint {self.endpoint.url} failed: {exc}") from exc
        return [str(c.get("text", "")).strip() for c in sorted(choices, key=lambda c: c.get("index", 0))]

    def generate(self, prompts: Sequence[str]) -> list[list[Candidate]]:
        return [[Candidate(t, s.name) for s in self.spec.strategies for t in self._request(p, s)] for p in prompts]


def load_generator(spec: GeneratorSpec, *, store: Optional[ArtifactStore] = None, namespace: str = "default",
                   base_dir: Optional[Path] = None, api_key: Optional[str] = None, force_cpu: bool = False,
                   field: str = "spec.generator") -> Generator:
    """The generator a spec names: an endpoint client, or a model loaded with the head its config says."""
    if spec.endpoint is not None:
        return OpenAIGenerator(spec, api_key)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from .model import pick_device

    assert spec.model is not None
    src = hfmodels.resolve(spec.model, store=store, namespace=namespace, field=f"{field}.model", base_dir=base_dir)
    if src.path is None:
        raise BadInput(f"{field}.model", "a generator must be trained weights, not a random initialisation",
                       "set generator.model.uri or generator.model.fromRun")
    seq2seq = bool(getattr(AutoConfig.from_pretrained(src.path), "is_encoder_decoder", False))
    local = ModelSpec.model_validate({"uri": str(src.path)})
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    loaded = hfmodels.load(local, auto, field=f"{field}.model")
    device = pick_device(force_cpu)
    log.info("generator %s loaded (%s)", src.description, "seq2seq" if seq2seq else "causal")
    return HFGenerator(spec, loaded.model.to(device), loaded.tokenizer, device)
