"""Walk-forward splits: train on a window, trade the next period out of sample, roll.

Over the ``N`` sessions that have features, ``n_windows`` windows each hold a training part
and an out-of-sample (test) part in the ratio ``1 - oos_ratio : oos_ratio``; the test parts
are consecutive and do not overlap, so with window length ``L``
``N = (1 - oos_ratio)·L + n_windows·oos_ratio·L``. *Rolling* training keeps ``(1-oos_ratio)·L``
sessions; *expanding* training starts at the first session each time. With
``retrain_every = k`` a test part is cut into chunks of ``k`` sessions and the model is
refitted before each (monthly retraining is ``k = 21``). The last test part runs to the end.

Labels are next-session returns (horizon ``purge`` sessions). To trade session D (at its
open, on the close of the session before) a model may use the close through D-1 only, so a
feature dated d trains only if ``d + purge ≤ D - 1``: the *purge* drops the last training
dates whose labels would reach into the test period; the *embargo* drops ``embargo`` more
sessions before it, as a guard against serially correlated features.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from pipelines.backtest.data import BacktestInputError


@dataclass(frozen=True)
class WalkForward:
    n_windows: int = 12
    oos_ratio: float = 0.3
    scheme: Literal["rolling", "expanding"] = "rolling"
    retrain_every: int | None = None  # sessions; None: once per window
    purge: int = 1  # label horizon, sessions
    embargo: int = 0  # extra sessions left out before each test period


@dataclass(frozen=True)
class Fold:
    """One fit and the sessions it trades; it trains on feature dates [train_start, train_end]."""

    window: int
    train_start: date
    train_end: date
    test_start: date
    test_end: date
    train_sessions: int
    test_sessions: int


def folds(sessions: list[date], plan: WalkForward, min_train_sessions: int = 20) -> list[Fold]:
    """The folds over ``sessions`` (ascending: those with features); raises on a bad plan."""
    if plan.n_windows < 1:
        raise BacktestInputError(f"n_windows must be at least 1, got {plan.n_windows}")
    if not 0 < plan.oos_ratio < 1:
        raise BacktestInputError(f"oos_ratio must be in (0, 1), got {plan.oos_ratio}")
    if plan.scheme not in ("rolling", "expanding"):
        raise BacktestInputError(f"scheme must be rolling or expanding, got {plan.scheme!r}")
    if plan.retrain_every is not None and plan.retrain_every < 1:
        raise BacktestInputError(f"retrain_every must be at least 1, got {plan.retrain_every}")
    n = len(sessions)
    length = n / (1 - plan.oos_ratio + plan.n_windows * plan.oos_ratio)
    train_len = int(round((1 - plan.oos_ratio) * length))
    test_len = int((n - train_len) // plan.n_windows)
    usable_train = train_len - plan.purge - plan.embargo
    if test_len < 1 or usable_train < min_train_sessions:
        raise BacktestInputError(
            f"{n} sessions with features and a risk window give {plan.n_windows} windows of "
            f"{usable_train} "
            f"training and {test_len} test sessions (need at least {min_train_sessions} to "
            "train): widen the date range or use fewer windows"
        )
    result = []
    for w in range(plan.n_windows):
        first = train_len + w * test_len
        last = n - 1 if w == plan.n_windows - 1 else first + test_len - 1
        step = plan.retrain_every or (last - first + 1)
        for chunk in range(first, last + 1, step):
            chunk_end = min(chunk + step - 1, last)
            train_end = chunk - 1 - plan.purge - plan.embargo
            train_start = 0 if plan.scheme == "expanding" else max(0, train_end - usable_train + 1)
            result.append(
                Fold(
                    w,
                    sessions[train_start],
                    sessions[train_end],
                    sessions[chunk],
                    sessions[chunk_end],
                    train_end - train_start + 1,
                    chunk_end - chunk + 1,
                )
            )
    return result
