"""Fixtures of the MetricEval tests."""

from __future__ import annotations

import sys
import types

import pytest

from glassbox_workloads.metrics.base import Scores


@pytest.fixture
def fake_lm(monkeypatch):
    """metrics.lm.perplexity stand-in (the real one is the metrics library's, tested there): per
    example, 100 over the loaded GPT-2's first embedding value, so a point names its checkpoint."""
    def perplexity(model, tokenizer, sources, references, kind="causal", batch_size=8, device="cpu", max_length=None):
        v = float(model.transformer.wte.weight[0, 0].detach())
        assert sources is None or len(sources) == len(references)
        return Scores([100.0 / v] * len(references), 100.0 / v)

    fake = types.SimpleNamespace(perplexity=perplexity)
    monkeypatch.setitem(sys.modules, "glassbox_workloads.metrics.lm", fake)
    import glassbox_workloads.metrics as metrics_pkg

    monkeypatch.setattr(metrics_pkg, "lm", fake, raising=False)
    return fake
