"""The optional paraphrase generator: any seq2seq or causal LM glassbox loads (spec.paraphrase.
generator), asked "paraphrase:\\n<sentence>\\n" and sampled at the spec's temperature (BertNet asked
GPT-3 at T=1 for 30 tokens)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from glassbox_api.kinds.kgharvest import KGHarvestSpec
from glassbox_api.store import ArtifactStore

from ..runtime import hfmodels
from ..runtime.errors import BadInput
from .prompts import Generator

FIELD = "spec.paraphrase.generator"


def _auto_class(path: Path) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM if AutoConfig.from_pretrained(path).is_encoder_decoder else AutoModelForCausalLM


def make_generator(model: Any, tokenizer: Any, *, max_new_tokens: int, temperature: float, seed: int) -> Generator:
    """text -> sampled continuation (the prompt itself removed for a causal LM)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))

    def generate(text: str) -> str:
        enc = tokenizer(text, return_tensors="pt")
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=temperature, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        ids = out[0] if encoder_decoder else out[0, enc["input_ids"].shape[1]:]
        return str(tokenizer.decode(ids, skip_special_tokens=True))

    return generate


def load_generator(spec: KGHarvestSpec, store: ArtifactStore, namespace: str,
                   base_dir: Optional[Path]) -> Optional[Generator]:
    """The generator of spec.paraphrase, or None (the given prompts only)."""
    p = spec.paraphrase
    if p.generator is None or p.use_init_prompts_only:
        return None
    source = hfmodels.resolve(p.generator, store=store, namespace=namespace, field=FIELD, base_dir=base_dir)
    if source.path is None:
        raise BadInput(FIELD, "a paraphrase generator from a random config would write noise",
                       "point generator.uri or generator.fromRun at trained weights, or drop the generator")
    loaded = hfmodels.load(p.generator, _auto_class(source.path), store=store, namespace=namespace, field=FIELD,
                           base_dir=base_dir)
    loaded.model.eval()
    return make_generator(loaded.model, loaded.tokenizer, max_new_tokens=p.max_new_tokens,
                          temperature=p.temperature, seed=p.seed)
