"""Shared pieces of the DialogBot tests: a word-level BART tokenizer and tiny model specs."""

from __future__ import annotations

import pytest

from glassbox_workloads.runtime import hfmodels

WORDS = "patient doctor : one two three four five six seven i have a fever cough get tested rest".split()


@pytest.fixture(scope="session")
def word_tokenizer():
    return hfmodels.train_tokenizer([" ".join(WORDS)] * 3, "bart", 200, level="word")
