"""The kill switch, as the risk package names it: it lives in :mod:`pipelines.controls` (which
execution reads too, so that neither package imports the other for it)."""

from __future__ import annotations

from pipelines.controls import (
    assert_trading_allowed,
    incident_engine,
    kill_switch_status,
    set_kill_switch,
)

__all__ = [
    "assert_trading_allowed",
    "incident_engine",
    "kill_switch_status",
    "set_kill_switch",
]
