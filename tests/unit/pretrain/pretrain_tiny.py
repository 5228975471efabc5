"""Tiny PretrainRun specs (2-layer LLaMA, stdlib corpus) shared by the pretrain tests."""

from __future__ import annotations

import copy
from typing import Any

from glassbox_api.kinds.pretrainrun import PretrainRunSpec
from glassbox_workloads.runtime.spec import Resource

TINY: dict[str, Any] = {
    "model": {
        "architecture": "llama",
        "config": {"hiddenSize": 32, "intermediateSize": 64, "numLayers": 2, "numHeads": 4,
                   "numKvHeads": 2, "maxPositionEmbeddings": 64},
    },
    "data": {
        "sources": [{"name": "json", "uri": "stdlib://json"}],
        "seqLength": 32,
        "chunks": 3,
        "holdOut": 4,
        "seed": 7,
        "tokenizer": {"train": {"vocabSize": 300}},
    },
    "training": {"microBatchSize": 4, "gradientAccumulationSteps": 2, "maxSteps": 12, "warmupSteps": 3,
                 "precision": "fp32", "deterministic": True, "optimizer": {"lr": 3e-3, "minLr": 3e-4}},
    "checkpoint": {"everySteps": 4},
    "analysis": {"perplexity": True, "memorization": {"enabled": True, "samples": 4, "promptTokens": 8,
                                                       "generateTokens": 8}},
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def tiny_raw(**over: Any) -> dict[str, Any]:
    return merge(TINY, over)


def tiny_spec(**over: Any) -> PretrainRunSpec:
    return PretrainRunSpec.model_validate(tiny_raw(**over))


def resource(spec: PretrainRunSpec, name: str = "tiny", uid: str = "0123456789abcdef") -> Resource:
    raw = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return Resource("PretrainRun", name, "default", uid, spec, raw)


