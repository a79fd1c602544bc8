"""IPCA out of sample and the bootstrap test of Γ_α = 0, with the reference's defects pinned."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pipelines.models import ipca, synthetic


@pytest.fixture(scope="module")
def panel() -> synthetic.Panel:
    return synthetic.planted_panel(300, 80, 8, 2, seed=5)


def test_oos_forecasts_use_only_the_past(panel: synthetic.Panel) -> None:
    first = 60
    forecasts = ipca.oos_expected_returns(panel.z, panel.r, panel.date_codes, panel.n_dates, 2,
                                          first)
    assert np.isnan(forecasts[panel.date_codes < first]).all()
    assert np.isfinite(forecasts[panel.date_codes >= first]).all()
    # Scrambling the returns realized after date 70 leaves every forecast through 70 unchanged
    # (the forecast at t only sees pairs (z_s, r_{s+1}) with s < t).
    scrambled = panel.r.copy()
    later = panel.date_codes >= 70
    scrambled[later] = np.random.default_rng(0).permutation(scrambled[later])
    again = ipca.oos_expected_returns(panel.z, scrambled, panel.date_codes, panel.n_dates, 2,
                                      first)
    through = (panel.date_codes >= first) & (panel.date_codes <= 70)
    np.testing.assert_allclose(again[through], forecasts[through], atol=1e-12)


def test_oos_forecast_equals_a_fresh_fit_on_the_past(panel: synthetic.Panel) -> None:
    t = 65
    forecasts = ipca.oos_expected_returns(panel.z, panel.r, panel.date_codes, panel.n_dates, 2, t)
    past = panel.date_codes < t
    fresh = ipca.fit(ipca.moments(panel.z[past], panel.r[past], panel.date_codes[past], t), 2)
    rows = panel.date_codes == t
    np.testing.assert_allclose(forecasts[rows], fresh.expected_returns(panel.z[rows]), atol=1e-8)


def test_unit_t5_multipliers_have_unit_variance() -> None:
    rng = np.random.default_rng(0)
    raw = rng.standard_t(5, 1_000_000)
    assert raw.var() == pytest.approx(5 / 3, rel=0.02)  # what the reference multiplies by
    assert ipca.unit_t5(rng, 1_000_000).var() == pytest.approx(1.0, rel=0.02)


def test_bootstrap_accepts_the_null_and_rejects_a_planted_alpha() -> None:
    null = synthetic.planted_panel(300, 80, 8, 2, seed=5)
    planted = synthetic.planted_panel(300, 80, 8, 2, seed=5, alpha=0.01)
    for panel, rejects in ((null, False), (planted, True)):
        m = ipca.moments(panel.z, panel.r, panel.date_codes, panel.n_dates)
        result = ipca.bootstrap_alpha_test(m, 2, draws=100, seed=3)
        assert (result.p_value < 0.05) is rejects, result.p_value


def test_bootstrap_is_reproducible_and_independent_of_workers(panel: synthetic.Panel) -> None:
    m = ipca.moments(panel.z, panel.r, panel.date_codes, panel.n_dates)
    serial = ipca.bootstrap_alpha_test(m, 2, draws=40, seed=11)
    parallel = ipca.bootstrap_alpha_test(m, 2, draws=40, seed=11, n_jobs=2)
    np.testing.assert_array_equal(serial.draws, parallel.draws)
    assert serial.p_value == parallel.p_value


def _reference(panel: synthetic.Panel):
    reference = pytest.importorskip("ipca")
    index = pd.MultiIndex.from_arrays([panel.asset_codes, panel.date_codes])
    x, y = pd.DataFrame(panel.z, index=index), pd.Series(panel.r, index=index)
    model = reference.InstrumentedPCA(n_factors=2, intercept=False, iter_tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X=x, y=y), x, y


@pytest.mark.slow  # numba compiles the reference on first use
def test_reference_defects_that_this_project_does_not_have(panel: synthetic.Panel) -> None:
    ref, x, y = _reference(panel)
    last = panel.date_codes == panel.n_dates - 1
    # predictOOS(mean_factor=False) returns one number for a whole cross-section ...
    assert np.size(ref.predictOOS(X=x[last], y=y[last], mean_factor=False)) == 1
    # ... where ours gives one forecast per asset.
    ours = ipca.oos_expected_returns(panel.z, panel.r, panel.date_codes, panel.n_dates, 2,
                                     panel.n_dates - 1)
    assert np.isfinite(ours[last]).sum() == last.sum() > 1
    # fit(Gamma=..., Factors=...) cannot warm-start the reference ...
    with pytest.raises(UnboundLocalError, match="Factor_Old"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X=x, y=y, Gamma=ref.Gamma, Factors=ref.Factors)
    # ... while a warm start here converges at once to the same fit.
    m = ipca.moments(panel.z, panel.r, panel.date_codes, panel.n_dates)
    cold = ipca.fit(m, 2)
    warm = ipca.fit(m, 2, warm_start=cold)
    assert warm.iterations <= 2
    np.testing.assert_allclose(warm.gamma_beta, cold.gamma_beta, atol=1e-9)


def test_beta_test_tells_a_pricing_characteristic_from_noise() -> None:
    panel = synthetic.planted_panel(300, 80, 8, 2, seed=6)
    noise = np.random.default_rng(1).random(len(panel.r)) - 0.5  # unrelated to returns
    z = np.column_stack([panel.z, noise])
    m = ipca.moments(z, panel.r, panel.date_codes, panel.n_dates)
    strongest = int(np.argmax(np.sum(panel.gamma_beta**2, axis=1)))
    priced = ipca.bootstrap_beta_test(m, 2, strongest, draws=100, seed=2)
    unpriced = ipca.bootstrap_beta_test(m, 2, z.shape[1] - 1, draws=100, seed=2)
    assert priced.p_value < 0.05 < unpriced.p_value
