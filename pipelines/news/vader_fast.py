"""VADER's compound score computed as ``vaderSentiment`` 3.3.2 computes it, in linear time.

``SentimentIntensityAnalyzer.polarity_scores`` lower-cases the whole word list again inside
its negation and idiom checks, once per lexicon word and preceding position: its cost grows
with the square of the words, and it rebuilds the text character by character to replace
emojis. :func:`compound` follows the same rules in the same order (boosters, "kind of",
"no", capitals, the three preceding words, negations, idioms, "least", "but", "!" and "?")
on a word list lower-cased once, and skips the emoji pass when the text holds no emoji. It
reuses the library's own lexicon, constants and scalar functions, so a new lexicon file
changes both alike; ``tests/unit/news/test_vader_fast.py`` checks it gives the library's
score on varied texts. The result is the library's ``compound``: in ``[-1, 1]``, rounded to
4 decimals.
"""

from __future__ import annotations

from typing import Any

from vaderSentiment import vaderSentiment as vs

_NEGATE = frozenset(vs.NEGATE)
_OR_NOR = ("or", "nor")


class FastVader:
    """The compound score of one analyzer's lexicon (see the module docstring)."""

    def __init__(self, analyzer: Any | None = None) -> None:
        self.analyzer = analyzer or vs.SentimentIntensityAnalyzer()
        self.lexicon: dict[str, float] = self.analyzer.lexicon
        self.emojis: dict[str, str] = self.analyzer.emojis
        self._emoji_chars = frozenset(k for k in self.emojis if len(k) == 1)

    def compound(self, text: str) -> float:
        """VADER's ``compound`` of ``text`` (``polarity_scores(text)["compound"]``)."""
        if not self._emoji_chars.isdisjoint(text):
            text = self._replace_emojis(text)
        text = text.strip()
        words = [vs.SentiText._strip_punc_if_word(w) for w in text.split()]
        lowers = [w.lower() for w in words]
        cap_diff = vs.allcap_differential(words)
        sentiments: list[float] = []
        last = len(words) - 1
        for i, low in enumerate(lowers):
            if low in vs.BOOSTER_DICT or (low == "kind" and i < last and lowers[i + 1] == "of"):
                sentiments.append(0)
            elif low in self.lexicon:
                sentiments.append(self._valence(words, lowers, i, cap_diff))
            else:
                sentiments.append(0)
        if "but" in lowers:
            sentiments = vs.SentimentIntensityAnalyzer._but_check(words, sentiments)
        return float(self.analyzer.score_valence(sentiments, text)["compound"])

    def _replace_emojis(self, text: str) -> str:
        # The library's loop, kept as written: descriptions joined with its spacing rule.
        out, prev_space = [], True
        for ch in text:
            if ch in self.emojis:
                if not prev_space:
                    out.append(" ")
                out.append(self.emojis[ch])
                prev_space = False
            else:
                out.append(ch)
                prev_space = ch == " "
        return "".join(out)

    def _valence(self, words: list[str], lowers: list[str], i: int, cap_diff: bool) -> float:
        lexicon, low = self.lexicon, lowers[i]
        valence = lexicon[low]
        if low == "no" and i != len(words) - 1 and lowers[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and lowers[i - 1] == "no")
            or (i > 1 and lowers[i - 2] == "no")
            or (i > 2 and lowers[i - 3] == "no" and lowers[i - 1] in _OR_NOR)
        ):
            valence = lexicon[low] * vs.N_SCALAR
        if cap_diff and words[i].isupper():
            valence = valence + vs.C_INCR if valence > 0 else valence - vs.C_INCR
        for start_i in range(3):
            if i > start_i and lowers[i - (start_i + 1)] not in lexicon:
                s = vs.scalar_inc_dec(words[i - (start_i + 1)], valence, cap_diff)
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = _negation(valence, lowers, start_i, i)
                if start_i == 2:
                    valence = _idioms(valence, lowers, i)
        return _least(valence, lowers, i, lexicon)


def _negated(word: str) -> bool:
    return word in _NEGATE or "n't" in word


def _negation(valence: float, lowers: list[str], start_i: int, i: int) -> float:
    """The library's ``_negation_check`` on an already lower-cased word list."""
    if start_i == 0:
        if _negated(lowers[i - 1]):
            valence = valence * vs.N_SCALAR
    elif start_i == 1:
        if lowers[i - 2] == "never" and lowers[i - 1] in ("so", "this"):
            valence = valence * 1.25
        elif lowers[i - 2] == "without" and lowers[i - 1] == "doubt":
            pass
        elif _negated(lowers[i - 2]):
            valence = valence * vs.N_SCALAR
    else:
        if (lowers[i - 3] == "never" and lowers[i - 2] in ("so", "this")) or lowers[i - 1] in (
            "so",
            "this",
        ):
            valence = valence * 1.25
        elif lowers[i - 3] == "without" and (lowers[i - 2] == "doubt" or lowers[i - 1] == "doubt"):
            pass
        elif _negated(lowers[i - 3]):
            valence = valence * vs.N_SCALAR
    return valence


def _idioms(valence: float, lowers: list[str], i: int) -> float:
    """The library's ``_special_idioms_check`` (called only with ``i > 2``)."""
    w3, w2, w1, w0 = lowers[i - 3], lowers[i - 2], lowers[i - 1], lowers[i]
    onezero, twoonezero = f"{w1} {w0}", f"{w2} {w1} {w0}"
    twoone, threetwoone, threetwo = f"{w2} {w1}", f"{w3} {w2} {w1}", f"{w3} {w2}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in vs.SPECIAL_CASES:
            valence = vs.SPECIAL_CASES[seq]
            break
    if len(lowers) - 1 > i:
        zeroone = f"{w0} {lowers[i + 1]}"
        if zeroone in vs.SPECIAL_CASES:
            valence = vs.SPECIAL_CASES[zeroone]
    if len(lowers) - 1 > i + 1:
        zeroonetwo = f"{w0} {lowers[i + 1]} {lowers[i + 2]}"
        if zeroonetwo in vs.SPECIAL_CASES:
            valence = vs.SPECIAL_CASES[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in vs.BOOSTER_DICT:
            valence = valence + vs.BOOSTER_DICT[n_gram]
    return valence


def _least(valence: float, lowers: list[str], i: int, lexicon: dict[str, float]) -> float:
    """The library's ``_least_check``."""
    if i > 1 and lowers[i - 1] not in lexicon and lowers[i - 1] == "least":
        if lowers[i - 2] != "at" and lowers[i - 2] != "very":
            valence = valence * vs.N_SCALAR
    elif i > 0 and lowers[i - 1] not in lexicon and lowers[i - 1] == "least":
        valence = valence * vs.N_SCALAR
    return valence
