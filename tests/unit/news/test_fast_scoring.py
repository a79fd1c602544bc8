"""The fast paths give the plain library's scores: VADER's ``polarity_scores`` and the
Loughran-McDonald counting loop as first written, on a few hundred varied texts."""

from __future__ import annotations

import random

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from pipelines.news import parallel, scoring
from pipelines.news.scoring import (
    SCORED_CHARS,
    VADER_CHARS,
    LoughranMcDonaldScorer,
    VaderScorer,
    lm_words,
)
from pipelines.news.vader_fast import FastVader

# Words that exercise every VADER rule: lexicon words, boosters and dampeners, negations
# (with and without an apostrophe), "no", "least", "but", "kind of", idioms and special
# cases, capitals, emoticons, emojis, punctuation; and LM positives, negatives, negations.
_WORDS = (
    "good great bad terrible awful excellent love hate happy sad strong weak profit loss "
    "beat miss downgrade upgrade improve improved gain decline lawsuit record growth risk "
    "very extremely barely slightly kind of sort really so this never not no none nor or "
    "without doubt isn't don't won't least at but the company said shares quarter revenue "
    "GREAT BAD VERY NOT Good! bad, great. :) :( :D <3 lol sux the shit bad ass badass "
    "kiss of death yeah right cut the mustard in the red upper hand 😁 💘 🚀 ?? !!! ! ? "
    "uncertainty liabilities litigation outperform beats rarely seldom despite nothing"
)
VOCAB = _WORDS.split()


def _texts(n: int, seed: int = 17) -> list[str]:
    rng = random.Random(seed)
    out = [
        "",
        "   ",
        "but",
        "no",
        "good",
        "Not bad at all",
        "At least it isn't a horrible book.",
        "The plot was good, but the characters are uncompelling and the dialog is not great.",
        "Catch utf-8 emoji such as 💘 and 💋 and 😁",
        "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
        "Sentiment analysis has never been this good!",
        "Without a doubt, an excellent idea.",
        "Roger Dodger is one of the least compelling variations on this theme.",
        "good " * 200,
    ]
    while len(out) < n:
        words = [rng.choice(VOCAB) for _ in range(rng.randint(1, 120))]
        sep = rng.choice([" ", "  ", "\n\n", ", "])
        out.append(sep.join(words))
    return out


TEXTS = _texts(400)


def test_fast_vader_equals_the_library_on_varied_texts() -> None:
    library, fast = SentimentIntensityAnalyzer(), FastVader()
    for text in TEXTS:
        assert fast.compound(text) == library.polarity_scores(text)["compound"], text


def test_vader_scorer_equals_the_library_on_the_lead() -> None:
    library = SentimentIntensityAnalyzer()
    expected = [library.polarity_scores(t[:VADER_CHARS])["compound"] for t in TEXTS]
    assert VaderScorer(workers=1).score(TEXTS) == expected


def _plain_lm(text: str) -> float:
    """The LM scorer's loop as it was before the fast path."""
    positive, negative = lm_words()
    words = __import__("re").findall(r"[a-z]+(?:'[a-z]+)?", text[:SCORED_CHARS].lower())
    pos = neg = 0
    for i, word in enumerate(words):
        if word in positive:
            negated = any(
                w in {"no", "not", "none", "neither", "never", "nobody"} or w.endswith("n't")
                for w in words[max(0, i - 3) : i]
            )
            neg, pos = (neg + 1, pos) if negated else (neg, pos + 1)
        elif word in negative:
            neg += 1
    return (pos - neg) / (pos + neg) if pos + neg else 0.0


def test_lm_scorer_equals_the_plain_loop() -> None:
    assert LoughranMcDonaldScorer(workers=1).score(TEXTS) == [_plain_lm(t) for t in TEXTS]


def test_duplicates_are_scored_once_and_keep_their_places() -> None:
    calls: list[list[str]] = []

    def score(texts: list[str]) -> list[float]:
        calls.append(texts)
        return [float(len(t)) for t in texts]

    assert parallel.map_unique(score, ["aa", "b", "aa", "ccc", "b"], workers=1) == [
        2.0,
        1.0,
        2.0,
        3.0,
        1.0,
    ]
    assert calls == [["aa", "b", "ccc"]]


@pytest.mark.slow  # starts a forkserver and two worker processes
def test_the_process_pool_gives_the_in_process_scores() -> None:
    texts = TEXTS[:200]
    for batch in (scoring._vader_batch, scoring._lm_batch):
        assert parallel._on_pool(batch, texts, 2) == batch(texts)  # None if the pool failed


def test_small_batches_and_daemons_stay_in_process() -> None:
    assert parallel.pool_workers(parallel.POOL_MIN_TEXTS - 1, 2) == 1
    assert parallel.pool_workers(parallel.POOL_MIN_TEXTS, 2) == 2
    assert parallel.pool_workers(parallel.POOL_MIN_TEXTS, 1) == 1
