"""The vendor's bar time as sent, read without guessing (shared by sources and the gate).

A source derives ``ts``/``session_date`` only from a time this module accepts; the gate
(:mod:`pipelines.validation.vendor`) quarantines every other row with the reason given here.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?(Z|z|[+-]\d\d:\d\d)$")
_NAIVE = re.compile(r"^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?)?$")


def _none(index: pd.Index) -> pd.Series:
    return pd.Series(None, index=index, dtype="object")


def vendor_times(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(UTC times, reason or None) of the vendor's raw time values.

    Accepted: RFC 3339 text with a UTC offset (``Z`` or ``±HH:MM``) that converts to UTC.
    Refused with a reason: a missing time, a non-text value (an epoch number), text without an
    offset (naive: ambiguous), text that is no RFC 3339 time, and one that cannot be converted
    (impossible date, hour or offset).
    """
    index = raw.index
    is_text = raw.map(lambda v: isinstance(v, str)).astype(bool)
    text = raw.where(is_text, "").astype("str")
    well_formed = is_text & text.str.fullmatch(_RFC3339.pattern)
    utc = pd.Series(pd.NaT, index=index, dtype="datetime64[ns, UTC]")
    if well_formed.any():
        parsed = pd.to_datetime(
            text[well_formed], format="ISO8601", utc=True, errors="coerce"
        ).astype("datetime64[ns, UTC]")
        utc.loc[well_formed] = parsed
    errors = _none(index)
    for i in np.flatnonzero(~well_formed.to_numpy() | utc.isna().to_numpy()):
        errors.iat[i] = _time_problem(raw.iat[i])
    return utc, errors


def _time_problem(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "the vendor sent no bar time (t is missing)"
    if not isinstance(value, str):
        return (
            f"the vendor's bar time {value!r} is {type(value).__name__}, not RFC 3339 text "
            "(an epoch number?): it is not guessed into a time"
        )
    if _NAIVE.fullmatch(value):
        return (
            f"the vendor's bar time {value!r} has no UTC offset (naive): which zone it is in "
            "is unknown, so it is not guessed"
        )
    if _RFC3339.fullmatch(value):
        return f"the vendor's bar time {value!r} cannot be converted to UTC (impossible value)"
    return f"the vendor's bar time {value!r} is not an RFC 3339 time"
