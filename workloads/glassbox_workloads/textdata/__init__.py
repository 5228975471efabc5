"""Language data the workloads ship instead of downloading at run time.

NLTK's English stop-word list (179 words, the list BertNet and CTC filter with) is not packaged on
any registry (NLTK fetches it from its data server), so it is vendored here and pinned by length and
sha256: a silently edited or substituted list (spaCy's, scikit-learn's and PyPI `stop-words` are all
different lists) fails loudly instead of changing harvested tuples and metric values.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

NLTK_ENGLISH_FILE = "nltk_english_stopwords.txt"
NLTK_ENGLISH_COUNT = 179
NLTK_ENGLISH_SHA256 = "019f104ba2ed07436d05f9cdd3383034ad66014edc27fc651f837e1a038b6451"


@lru_cache(maxsize=None)
def nltk_english_stopwords() -> frozenset[str]:
    """NLTK's English stop words (lower case, apostrophes as in NLTK: `don't`, `don`)."""
    raw = resources.files(__package__).joinpath(NLTK_ENGLISH_FILE).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    words = raw.decode("utf-8").split()
    if digest != NLTK_ENGLISH_SHA256 or len(words) != NLTK_ENGLISH_COUNT or len(set(words)) != len(words):
        raise RuntimeError(f"{NLTK_ENGLISH_FILE} is not NLTK's English list ({len(words)} words, sha256 {digest}); "
                           "restore it from the repository")
    return frozenset(words)
