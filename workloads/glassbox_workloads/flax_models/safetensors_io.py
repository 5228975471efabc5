"""Read and write the safetensors format with numpy (bf16 included, via ml_dtypes).

The format is an 8-byte little-endian header length, a JSON header {name: {dtype, shape,
data_offsets}} and the raw little-endian bytes. Reading from an in-memory buffer lets checkpoints
come straight from the artifact store without torch.
"""

from __future__ import annotations

import json
import struct
from typing import Mapping, Optional

import ml_dtypes
import numpy as np

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


def load(data: bytes | memoryview) -> dict[str, np.ndarray]:
    """All tensors of a safetensors buffer (arrays are copies, safe to keep)."""
    buf = memoryview(data)
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(bytes(buf[8 : 8 + n]).decode("utf-8"))
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"tensor {name}: unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        dt = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(buf[base + start : base + end], dtype=dt).reshape(info["shape"])
        out[name] = arr.astype(dt.newbyteorder("="), copy=True)
    return out


def metadata(data: bytes | memoryview) -> dict[str, str]:
    buf = memoryview(data)
    (n,) = struct.unpack("<Q", buf[:8])
    return json.loads(bytes(buf[8 : 8 + n]).decode("utf-8")).get("__metadata__", {}) or {}


def dump(tensors: Mapping[str, np.ndarray], meta: Optional[Mapping[str, str]] = None) -> bytes:
    """Serialise tensors (sorted by name, 8-byte aligned header as the reference writer does)."""
    header: dict[str, object] = {}
    if meta:
        header["__metadata__"] = {str(k): str(v) for k, v in meta.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])  # not ascontiguousarray: it turns 0-d into 1-d
        dt = np.dtype(arr.dtype)
        if dt not in _NAMES:
            raise ValueError(f"tensor {name}: unsupported dtype {dt}")
        raw = arr.astype(dt.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NAMES[dt], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)
