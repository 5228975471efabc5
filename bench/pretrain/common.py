"""Shared pieces of the pretrain benchmarks: a bench model, synthetic data, a ratio table."""

from __future__ import annotations

import hashlib
import platform
import statistics
import sys
from datetime import date
from typing import Any, Sequence

import torch


def llama_config(vocab: int = 4096, hidden: int = 256, layers: int = 4, heads: int = 4, inter: int = 688,
                 seq: int = 256):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=seq,
                       rms_norm_eps=1e-6)


def synthetic_manifest(n_samples: int, seq: int, chunks: int = 1, seed: int = 0) -> dict[str, Any]:
    """A data manifest for random tokens (what DataPlan needs to order them)."""
    m = {"version": 1, "seq_length": seq, "sample_length": seq + 1, "chunks": chunks, "hold_out": 0,
         "seed": seed, "sources": [{"name": "random", "weight": 1.0, "samples": n_samples}],
         "samples": n_samples}
    m["digest"] = hashlib.sha256(repr(sorted(m.items())).encode()).hexdigest()
    return m


def random_tokens(n: int, seq: int, vocab: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (n, seq + 1), generator=g, dtype=torch.int32)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    import os

    return f"{os.cpu_count()}-core {cpu}{gpu}, torch {torch.__version__}, Python {platform.python_version()}"


def table(title: str, rows: Sequence[tuple[str, str, str, str]], header=("metric", "glassbox", "baseline", "ratio")) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    line = lambda r: "| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths)) + " |"  # noqa: E731
    out = [f"### {title}", "", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def header(cmd: str, runs: int) -> str:
    return f"date {date.today().isoformat()} | machine {machine()} | command `{cmd}` | runs {runs}"


def argv() -> str:
    return "python " + " ".join(sys.argv)
