"""The gate's limits come from the flat settings under their env names, and are checked
without I/O."""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.risk.gate import RiskReport, limit_checks
from pipelines.risk.limits import RiskLimits


def test_limits_take_the_env_names_and_an_unset_gross_limit_is_one(monkeypatch):
    monkeypatch.setenv("MAX_VAR", "0.02")
    monkeypatch.setenv("RISK_BREACH_ACTION", "scale")
    monkeypatch.setenv("SECTOR_MAX_WEIGHT", "0.3")
    limits = RiskLimits.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert (limits.max_var, limits.breach_action, limits.sector_max_weight) == (0.02, "scale", 0.3)
    assert limits.gross_leverage == 1.0
    assert (
        RiskLimits.from_settings(Settings(_env_file=None, gross_leverage=1.6)).gross_leverage == 1.6
    )  # type: ignore[call-arg]


def test_checks_name_each_breached_limit_and_the_ratio_that_scaling_uses():
    limits = RiskLimits.from_settings(Settings(_env_file=None, max_weight=0.1, max_var=0.02))  # type: ignore[call-arg]
    report = RiskReport(approved=True, max_weight=0.15, gross_exposure=0.9, var=0.01)
    breached = [c for c in limit_checks(limits, report) if c.breached]
    assert [c.message for c in breached] == ["weight 0.1500 above MAX_WEIGHT 0.1"]
    assert abs(breached[0].ratio - 1.5) < 1e-12
    kill = [c.message for c in limit_checks(limits, report, True, "manual") if c.breached]
    assert kill[0] == "kill switch is on (manual)"
