"""The vendored stop-word list is NLTK's English list, exactly."""

import pytest

from glassbox_workloads import textdata


def test_nltk_english_stopwords_has_nltks_179_words():
    words = textdata.nltk_english_stopwords()
    assert len(words) == 179
    assert {"the", "a", "don't", "don", "wouldn't", "ma", "ain", "y"} <= words
    # Words of other lists (scikit-learn's, spaCy's) that NLTK's does not have.
    assert not {"everything", "one", "also", "first", "amongst", "thereby"} & words


def test_an_edited_stopword_list_is_refused(monkeypatch, tmp_path):
    textdata.nltk_english_stopwords.cache_clear()
    monkeypatch.setattr(textdata, "NLTK_ENGLISH_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="not NLTK's English list"):
        textdata.nltk_english_stopwords()
    textdata.nltk_english_stopwords.cache_clear()
