from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # planted.py, serve_tiny.py

TINY = {"architecture": "roberta", "config": {"hiddenSize": 32, "intermediateSize": 64, "numLayers": 2, "numHeads": 2,
                                             "maxPositionEmbeddings": 64}}
TEXTS = [f"say {w}" for w in ("apple", "river", "stone", "the cat sat on the mat")] * 5 + ["apple", "river", "stone"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Two shared cores: torch's default thread pool only adds contention to these tiny models."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
