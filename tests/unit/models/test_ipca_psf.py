"""IPCA with pre-specified factors, and the reference's portfolio ``score()`` defect."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from pipelines.errors import ModelError
from pipelines.models import ipca, synthetic


def _with_psf(panel: synthetic.Panel, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """A market-like observed factor g (T × 1) and returns with a ``z'δ g`` term added."""
    rng = np.random.default_rng(seed)
    g = 0.01 + 0.04 * rng.standard_normal((panel.n_dates, 1))
    delta = 0.5 * rng.standard_normal(panel.z.shape[1])
    return g, panel.r + (panel.z @ delta) * g[panel.date_codes, 0]


@pytest.fixture(scope="module")
def panel() -> synthetic.Panel:
    return synthetic.planted_panel(300, 80, 8, 2, seed=2)


def _reference(panel: synthetic.Panel, r: np.ndarray, n_factors: int, intercept: bool, **fit):
    reference = pytest.importorskip("ipca")  # test-only dependency (the dev extra)
    index = pd.MultiIndex.from_arrays([panel.asset_codes, panel.date_codes])
    model = reference.InstrumentedPCA(n_factors=n_factors, intercept=intercept,
                                      max_iter=10_000, iter_tol=1e-12)
    quiet = io.StringIO()  # it prints progress bars and notes
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), \
            contextlib.redirect_stderr(quiet):
        warnings.simplefilter("ignore")
        model.fit(X=pd.DataFrame(panel.z, index=index), y=pd.Series(r, index=index),
                  data_type="portfolio", **fit)
    return model, pd.DataFrame(panel.z, index=index), pd.Series(r, index=index)


@pytest.mark.slow  # numba compiles the reference on first use
@pytest.mark.parametrize("intercept", [False, True])
def test_psf_fit_agrees_with_the_reference(panel: synthetic.Panel, intercept: bool) -> None:
    g, r = _with_psf(panel)
    # The reference counts pre-specified factors in n_factors: 2 latent + 1 observed = 3.
    ref, _, _ = _reference(panel, r, 3, intercept, PSF=g.T)
    ours = ipca.fit(ipca.moments(panel.z, r, panel.date_codes, panel.n_dates), 2,
                    intercept=intercept, psf=g, tol=1e-12)
    assert ours.converged
    np.testing.assert_allclose(ours.gamma_beta, ref.Gamma[:, :2], atol=1e-8)
    np.testing.assert_allclose(ours.factors, ref.Factors[:2].T, atol=1e-8)
    np.testing.assert_allclose(ours.gamma_delta[:, 0], ref.Gamma[:, 2], atol=1e-8)
    if intercept:
        np.testing.assert_allclose(ours.gamma_alpha, ref.Gamma[:, 3], atol=1e-8)
        # The reference's defect: it appends the constant row to Factors twice, so its
        # Factors (5 rows) no longer match its Gamma (4 columns).
        assert ref.Factors.shape[0] == 5 and ref.Gamma.shape[1] == 4
        np.testing.assert_array_equal(ref.Factors[3], ref.Factors[4])


def test_psf_identification_and_exact_fit() -> None:
    noiseless = synthetic.planted_panel(200, 60, 6, 2, r2=1.0 - 1e-12, missing=0.2, seed=4)
    g, r = _with_psf(noiseless)
    m = ipca.moments(noiseless.z, r, noiseless.date_codes, noiseless.n_dates)
    fit = ipca.fit(m, 2, psf=g, tol=1e-13)
    assert fit.gamma_delta is not None and fit.gamma_delta.shape == (6, 1)
    np.testing.assert_allclose(fit.gamma_beta.T @ fit.gamma_beta, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(fit.gamma_beta.T @ fit.gamma_delta, 0, atol=1e-12)
    assert ipca.r2(fit, noiseless.z, r, noiseless.date_codes) == pytest.approx(1, abs=1e-8)
    assert ipca.portfolio_r2(fit, m) == pytest.approx(1, abs=1e-8)
    # Without the observed factor two latent factors cannot fit the third source exactly.
    assert ipca.r2(ipca.fit(m, 2), noiseless.z, r, noiseless.date_codes) < 0.999
    # Predictive fit: means of both the latent and the observed factors.
    lam = fit.gamma_beta @ fit.factor_mean + fit.gamma_delta @ g.mean(axis=0)
    np.testing.assert_allclose(fit.expected_returns(noiseless.z), noiseless.z @ lam)


def test_bad_psf_is_refused(panel: synthetic.Panel) -> None:
    m = ipca.moments(panel.z, panel.r, panel.date_codes, panel.n_dates)
    with pytest.raises(ModelError, match="psf must be T×M"):
        ipca.fit(m, 2, psf=np.ones((panel.n_dates - 1, 1)))
    with pytest.raises(ModelError, match="finite"):
        ipca.fit(m, 2, psf=np.full((panel.n_dates, 1), np.nan))
    with pytest.raises(ModelError, match="exceed L"):
        ipca.fit(m, 7, intercept=True, psf=np.ones((panel.n_dates, 1)))


@pytest.mark.slow  # numba compiles the reference on first use
def test_reference_portfolio_score_is_centred_per_date_not_kps(panel: synthetic.Panel) -> None:
    ref, x, y = _reference(panel, panel.r, 2, False)
    m = ipca.moments(panel.z, panel.r, panel.date_codes, panel.n_dates)
    ours = ipca.fit(m, 2, tol=1e-12)
    actual = m.x  # T × L managed portfolios
    fitted = np.einsum("tlm,tm->tl", m.w, ours.loadings())
    kps = 1 - np.sum((actual - fitted) ** 2) / np.sum(actual**2)  # pooled, uncentred
    per_date = 1 - np.sum((actual - fitted) ** 2, axis=1) / np.sum(
        (actual - actual.mean(axis=1, keepdims=True)) ** 2, axis=1)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        theirs = ref.score(X=x, y=y, data_type="portfolio")
    assert theirs == pytest.approx(per_date.mean(), abs=1e-9)  # what the reference computes
    assert ipca.portfolio_r2(ours, m) == pytest.approx(kps, abs=1e-12)  # what KPS define
    print(f"reference score {theirs:.4f} vs KPS portfolio R² {kps:.4f}")
    assert abs(theirs - kps) > 0.05, (theirs, kps)
