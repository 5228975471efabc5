"""Resume state without pickle: a checkpoint from the store is data, never code.

The optimizer and RNG states are written as safetensors (every tensor) plus JSON (everything else:
param groups, step counters that are plain numbers, Python's random state), so loading them runs no
code from the file. Checkpoints of earlier versions (optimizer.pt, rng.pt) still resume, through
`torch.load(weights_only=True)`: torch's restricted unpickler, which builds only tensors and plain
containers and refuses any other global. A file that fails either way is bad input naming the file.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..runtime.errors import BadInput

OPTIMIZER_TENSORS, OPTIMIZER_JSON = "optimizer.safetensors", "optimizer.json"
RNG_TENSORS, RNG_JSON = "rng.safetensors", "rng.json"
LEGACY_OPTIMIZER, LEGACY_RNG = "optimizer.pt", "rng.pt"
FORMAT = 1
SEP = "\u241f"  # parameter names contain dots; this never appears in one
FIELD = "checkpoint (resume state)"
FIX = "delete the run's latest checkpoint entry from manifest.json to resume from an earlier one, or start a new run"


def _tuples(obj: Any) -> Any:
    """JSON has no tuples: tagged, so they come back as tuples (optimizer betas, random's state)."""
    if isinstance(obj, tuple):
        return {"__tuple__": [_tuples(v) for v in obj]}
    if isinstance(obj, list):
        return [_tuples(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _tuples(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"resume state holds a {type(obj).__name__}, which has no JSON form")


def _untuple(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tuple__"}:
            return tuple(_untuple(v) for v in obj["__tuple__"])
        return {k: _untuple(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_untuple(v) for v in obj]
    return obj


# ---- optimizer ---------------------------------------------------------------------------------
def save_optimizer(state: dict[str, Any], out: Path) -> None:
    """{"state": {param: {key: tensor | number}}, "param_groups": [...]} as safetensors + JSON."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param, entry in state.get("state", {}).items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param}{SEP}{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param), {})[key] = value
    save_file(tensors, str(out / OPTIMIZER_TENSORS))
    doc = {"format": FORMAT, "param_groups": state.get("param_groups", []), "scalars": scalars,
           "params": sorted({str(p) for p in state.get("state", {})})}
    (out / OPTIMIZER_JSON).write_text(json.dumps(_tuples(doc), sort_keys=True) + "\n", encoding="utf-8")


def load_optimizer(d: Path) -> dict[str, Any]:
    if not (d / OPTIMIZER_JSON).exists() and (d / LEGACY_OPTIMIZER).exists():
        return _legacy(d / LEGACY_OPTIMIZER)
    doc = _json(d / OPTIMIZER_JSON)
    tensors = _tensors(d / OPTIMIZER_TENSORS)
    state: dict[str, dict[str, Any]] = {p: dict(doc.get("scalars", {}).get(p, {})) for p in doc.get("params", [])}
    for name, t in tensors.items():
        param, sep, key = name.rpartition(SEP)
        if not sep or param not in state:
            raise BadInput(FIELD, f"{d / OPTIMIZER_TENSORS}: tensor {name!r} belongs to no listed parameter", FIX)
        state[param][key] = t
    return {"state": state, "param_groups": doc.get("param_groups", [])}


# ---- RNG ---------------------------------------------------------------------------------------
def save_rng(rng: dict[str, Any], out: Path) -> None:
    """{"torch": ByteTensor, "cuda": [ByteTensor...], "python": random.getstate()}."""
    tensors = {"torch": rng["torch"].contiguous()}
    for i, t in enumerate(rng.get("cuda") or []):
        tensors[f"cuda{SEP}{i}"] = t.contiguous()
    save_file(tensors, str(out / RNG_TENSORS))
    doc = {"format": FORMAT, "python": rng["python"], "cuda": len(rng.get("cuda") or [])}
    (out / RNG_JSON).write_text(json.dumps(_tuples(doc)) + "\n", encoding="utf-8")


def load_rng(d: Path) -> dict[str, Any]:
    if not (d / RNG_JSON).exists() and (d / LEGACY_RNG).exists():
        return _legacy(d / LEGACY_RNG)
    doc = _json(d / RNG_JSON)
    tensors = _tensors(d / RNG_TENSORS)
    out: dict[str, Any] = {"torch": tensors.get("torch"), "python": doc.get("python")}
    if doc.get("cuda"):
        out["cuda"] = [tensors[f"cuda{SEP}{i}"] for i in range(int(doc["cuda"]))]
    try:
        if out["torch"] is None or out["torch"].dtype != torch.uint8:
            raise ValueError("no uint8 torch state")
        random.Random().setstate(out["python"])  # checked on a throwaway generator
    except (TypeError, ValueError, KeyError) as exc:
        raise BadInput(FIELD, f"{d / RNG_JSON}: not an RNG state ({exc})", FIX) from None
    return out


# ---- reading -----------------------------------------------------------------------------------
def _json(p: Path) -> dict[str, Any]:
    try:
        doc = _untuple(json.loads(p.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise BadInput(FIELD, f"{p}: unreadable ({exc})", FIX) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadInput(FIELD, f"{p}: not a resume state of format {FORMAT}", FIX)
    return doc


def _tensors(p: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(p))
    except (OSError, SafetensorError, ValueError) as exc:
        raise BadInput(FIELD, f"{p}: not a safetensors file ({exc})", FIX) from None


def _legacy(p: Path) -> Any:
    """A resume state of an earlier version: tensors and plain containers only (no code runs)."""
    try:
        return torch.load(p, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(FIELD, f"{p}: refused to load (only tensors and plain data may be in a checkpoint; "
                              f"{first})", FIX) from None

