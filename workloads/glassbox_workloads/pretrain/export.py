"""Models from a spec, and checkpoints in the Hugging Face layout (from_pretrained loads each one).

A checkpoint directory holds: config.json, generation_config.json, model.safetensors, the tokenizer
files (tokenizer.json, tokenizer_config.json...), and, to resume exactly, the optimizer and RNG
states (resume_state.py: safetensors + JSON, no pickle) and trainer_state.json (step, data cursor,
loss, global batch).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Optional

import torch

from glassbox_api.kinds.common import ModelSpec

from .data import EOD, PAD
from .resume_state import save_optimizer, save_rng

TRAINER_STATE = "trainer_state.json"
WEIGHTS_FILE = "model.safetensors"


def build_config(model_spec: ModelSpec, *, vocab_size: int, eod_id: int, pad_id: Optional[int], seq_length: int):
    """A transformers config for random initialisation from spec.model (llama or gpt2)."""
    c = model_spec.config
    arch = model_spec.architecture
    if c is None:
        raise ValueError("model.config is required to initialise a model at random")
    vocab = c.vocab_size or vocab_size
    if vocab < vocab_size:
        raise ValueError(f"model.config.vocabSize {vocab} is smaller than the tokenizer's {vocab_size}")
    if max(c.max_position_embeddings, 0) < seq_length:
        raise ValueError(f"maxPositionEmbeddings {c.max_position_embeddings} < seqLength {seq_length}")
    if arch == "llama":
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=vocab, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
            num_hidden_layers=c.num_layers, num_attention_heads=c.num_heads,
            num_key_value_heads=c.num_kv_heads or c.num_heads,
            max_position_embeddings=c.max_position_embeddings, rms_norm_eps=c.rms_norm_eps,
            tie_word_embeddings=c.tie_word_embeddings, bos_token_id=eod_id, eos_token_id=eod_id,
            pad_token_id=pad_id,
        )
    if arch == "gpt2":
        from transformers import GPT2Config

        return GPT2Config(
            vocab_size=vocab, n_embd=c.hidden_size, n_inner=c.intermediate_size, n_layer=c.num_layers,
            n_head=c.num_heads, n_positions=c.max_position_embeddings, layer_norm_epsilon=c.rms_norm_eps,
            tie_word_embeddings=c.tie_word_embeddings, bos_token_id=eod_id, eos_token_id=eod_id,
            pad_token_id=pad_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        )
    raise ValueError(f"PretrainRun trains causal LMs (llama, gpt2), not {arch!r}")


def build_model(config, seed: int):
    """Random init under a fixed seed: every rank builds identical weights."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def hf_tokenizer(tok, seq_length: int):
    """The trained `tokenizers` object as a transformers fast tokenizer with its special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOD, bos_token=EOD, pad_token=PAD if tok.token_to_id(PAD) is not None else None,
        model_max_length=seq_length,
    )


def rng_state() -> dict[str, Any]:
    st: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def write_checkpoint(
    out: Path,
    *,
    model,
    state_dict: dict[str, torch.Tensor],
    tokenizer,
    trainer_state: dict[str, Any],
    optimizer_state: Optional[dict[str, Any]] = None,
    rng: Optional[dict[str, Any]] = None,
) -> Path:
    """Write one checkpoint directory in the HF layout plus the resume state."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per checkpoint would bury the training output
    out.mkdir(parents=True, exist_ok=True)
    dtypes = {v.dtype for v in state_dict.values() if v.is_floating_point()}  # save_pretrained empties the dict
    model.save_pretrained(out, state_dict=state_dict)
    _config_names_saved_dtype(out, dtypes)
    tokenizer.save_pretrained(out)
    # Resume state as safetensors + JSON, never pickle: a checkpoint from the store is data.
    if optimizer_state is not None:
        save_optimizer(optimizer_state, out)
    if rng is not None:
        save_rng(rng, out)
    (out / TRAINER_STATE).write_text(json.dumps(trainer_state, indent=2, sort_keys=True) + "\n")
    return out


def _config_names_saved_dtype(out: Path, dtypes: set[torch.dtype]) -> None:
    """config.json's dtype is the one the weights file holds.

    save_pretrained writes the module's dtype, which is bf16 where the module is a bf16 copy
    (DeepSpeed's bf16, paramDtype bf16) while the file holds the fp32 master: from_pretrained
    would then round the published weights on load."""
    cfg_path = out / "config.json"
    if len(dtypes) != 1 or not cfg_path.is_file():
        return
    name = str(dtypes.pop()).removeprefix("torch.")
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("dtype") != name:
        cfg["dtype"] = name
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def load_pretrained(path: str | Path):
    """(model, tokenizer) from a checkpoint directory, through transformers' own loaders."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def download_checkpoint(run_store, entry, dest: Path, *, only: Optional[set[str]] = None) -> Path:
    """Fetch a published checkpoint's files, each verified against its manifest sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in entry.files:
        if only is None or f.path in only:
            run_store.get_file(f"{entry.path}/{f.path}", dest / f.path, sha256=f.sha256)
    return dest
