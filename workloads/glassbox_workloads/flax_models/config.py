"""One typed config for the three Flax families, with HF config.json conversion both ways."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional

ARCHITECTURES = ("llama", "gpt2", "bart")


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a llama / gpt2 / bart model (HF semantics)."""

    architecture: str = "llama"
    """llama (decoder, RMSNorm, RoPE, SwiGLU), gpt2 (decoder, LayerNorm, learned positions) or bart."""
    vocab_size: int = 256
    """Vocabulary size."""
    hidden_size: int = 64
    """Width of the residual stream."""
    intermediate_size: int = 172
    """Width of the MLP."""
    num_layers: int = 2
    """Transformer blocks (for bart: encoder and decoder each)."""
    num_heads: int = 4
    """Attention heads."""
    num_kv_heads: Optional[int] = None
    """Key/value heads (grouped-query attention, llama only); defaults to num_heads."""
    max_position_embeddings: int = 512
    """Longest sequence."""
    norm_eps: float = 1e-6
    """RMSNorm / LayerNorm epsilon."""
    tie_word_embeddings: bool = False
    """Output head shares the input embedding."""
    rope_theta: float = 10000.0
    """RoPE base (llama)."""
    pad_token_id: int = 0
    """Padding token."""
    bos_token_id: int = 1
    """Start of sequence."""
    eos_token_id: int = 2
    """End of sequence."""
    decoder_start_token_id: Optional[int] = None
    """bart: first decoder input; defaults to eos_token_id as in HF BART."""
    scale_embedding: bool = False
    """bart: multiply embeddings by sqrt(hidden_size)."""
    dtype: str = "float32"
    """Compute dtype (parameters stay float32)."""
    extra: dict = field(default_factory=dict, compare=False)
    """HF config keys this class does not model, kept for the round trip."""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture {self.architecture!r} has no Flax model; one of {ARCHITECTURES}")
        if self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be a multiple of num_heads")
        if self.num_heads % self.kv_heads:
            raise ValueError("num_kv_heads must divide num_heads")

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def start_token_id(self) -> int:
        return self.eos_token_id if self.decoder_start_token_id is None else self.decoder_start_token_id

    def with_(self, **kw: Any) -> "ModelConfig":
        return replace(self, **kw)

    # ---- HF config.json -------------------------------------------------------------------

    def to_hf(self) -> dict[str, Any]:
        """The config.json transformers would write for the same model."""
        c = self
        common = {"vocab_size": c.vocab_size, "tie_word_embeddings": c.tie_word_embeddings,
                  "pad_token_id": c.pad_token_id, "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id}
        if c.architecture == "llama":
            out = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": c.hidden_size,
                   "intermediate_size": c.intermediate_size, "num_hidden_layers": c.num_layers,
                   "num_attention_heads": c.num_heads, "num_key_value_heads": c.kv_heads,
                   "max_position_embeddings": c.max_position_embeddings, "rms_norm_eps": c.norm_eps,
                   "hidden_act": "silu", "head_dim": c.head_dim,
                   "rope_parameters": {"rope_type": "default", "rope_theta": c.rope_theta}}
        elif c.architecture == "gpt2":
            out = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": c.hidden_size,
                   "n_inner": c.intermediate_size, "n_layer": c.num_layers, "n_head": c.num_heads,
                   "n_positions": c.max_position_embeddings, "layer_norm_epsilon": c.norm_eps,
                   "activation_function": "gelu_new"}
        else:
            out = {"model_type": "bart", "architectures": ["BartForConditionalGeneration"], "d_model": c.hidden_size,
                   "encoder_layers": c.num_layers, "decoder_layers": c.num_layers,
                   "encoder_attention_heads": c.num_heads, "decoder_attention_heads": c.num_heads,
                   "encoder_ffn_dim": c.intermediate_size, "decoder_ffn_dim": c.intermediate_size,
                   "max_position_embeddings": c.max_position_embeddings, "activation_function": "gelu",
                   "scale_embedding": c.scale_embedding, "decoder_start_token_id": c.start_token_id,
                   "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0}
        return {**c.extra, **common, **out}

    @classmethod
    def from_hf(cls, hf: dict[str, Any]) -> "ModelConfig":
        """Read a transformers config.json (llama, gpt2 or bart)."""
        mt = hf.get("model_type")

        def tok(name: str, default: int) -> int:
            v = hf.get(name)
            if isinstance(v, list):
                v = v[0] if v else None
            return default if v is None else int(v)

        common = dict(vocab_size=hf["vocab_size"], pad_token_id=tok("pad_token_id", 0),
                      bos_token_id=tok("bos_token_id", 1), eos_token_id=tok("eos_token_id", 2))
        if mt == "llama":
            rope = hf.get("rope_parameters") or {}
            theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
            if rope.get("rope_type", "default") not in ("default", None):
                raise ValueError(f"rope_type {rope['rope_type']!r} is not supported")
            return cls(architecture="llama", hidden_size=hf["hidden_size"], intermediate_size=hf["intermediate_size"],
                       num_layers=hf["num_hidden_layers"], num_heads=hf["num_attention_heads"],
                       num_kv_heads=hf.get("num_key_value_heads"), max_position_embeddings=hf["max_position_embeddings"],
                       norm_eps=hf.get("rms_norm_eps", 1e-6), tie_word_embeddings=hf.get("tie_word_embeddings", False),
                       rope_theta=float(theta), **common)
        if mt == "gpt2":
            d = hf["n_embd"]
            common["bos_token_id"] = tok("bos_token_id", 50256)
            common["eos_token_id"] = tok("eos_token_id", 50256)
            common["pad_token_id"] = tok("pad_token_id", common["eos_token_id"])
            return cls(architecture="gpt2", hidden_size=d, intermediate_size=hf.get("n_inner") or 4 * d,
                       num_layers=hf["n_layer"], num_heads=hf["n_head"], max_position_embeddings=hf["n_positions"],
                       norm_eps=hf.get("layer_norm_epsilon", 1e-5), tie_word_embeddings=hf.get("tie_word_embeddings", True),
                       **common)
        if mt == "bart":
            if hf.get("encoder_layers") != hf.get("decoder_layers"):
                raise ValueError("bart with different encoder and decoder depths is not supported")
            if hf.get("activation_function", "gelu") != "gelu":
                raise ValueError("bart: only activation_function gelu is supported")
            return cls(architecture="bart", hidden_size=hf["d_model"], intermediate_size=hf["encoder_ffn_dim"],
                       num_layers=hf["encoder_layers"], num_heads=hf["encoder_attention_heads"],
                       max_position_embeddings=hf["max_position_embeddings"], norm_eps=1e-5,
                       tie_word_embeddings=hf.get("tie_word_embeddings", True),
                       scale_embedding=hf.get("scale_embedding", False),
                       decoder_start_token_id=hf.get("decoder_start_token_id"), **common)
        raise ValueError(f"model_type {mt!r} has no Flax model here; one of {ARCHITECTURES}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tiny_config(architecture: str = "llama", **kw: Any) -> ModelConfig:
    """A 2-layer debug model that trains in seconds on a CPU."""
    base = dict(architecture=architecture, vocab_size=128, hidden_size=32, intermediate_size=64, num_layers=2,
                num_heads=4, max_position_embeddings=128)
    if architecture == "llama":
        base["num_kv_heads"] = 2
    if architecture in ("gpt2", "bart"):
        base["norm_eps"] = 1e-5
        base["tie_word_embeddings"] = True
    base.update(kw)
    return ModelConfig(**base)
