"""Fixtures of the pretrain tests; the tiny spec helpers live in pretrain_tiny.py."""

from __future__ import annotations

import pytest

from pretrain_tiny import tiny_spec


@pytest.fixture(scope="session")
def tiny_data():
    """Prepared data of the tiny spec (tokenized once per session)."""
    from glassbox_workloads.pretrain.data import prepare

    return prepare(tiny_spec().data)
