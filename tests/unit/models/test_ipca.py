"""IPCA against known answers, its identification, and the reference package ``ipca`` 0.6.7."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pipelines.errors import ModelError
from pipelines.models import ipca, synthetic


@pytest.fixture(scope="module")
def small() -> synthetic.Panel:
    return synthetic.planted_panel(300, 80, 8, 2, seed=2)


def _reference_fit(panel: synthetic.Panel, k: int, intercept: bool):
    reference = pytest.importorskip("ipca")  # test-only dependency (the dev extra)
    index = pd.MultiIndex.from_arrays([panel.asset_codes, panel.date_codes])
    model = reference.InstrumentedPCA(n_factors=k, intercept=intercept, max_iter=10_000,
                                      iter_tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X=pd.DataFrame(panel.z, index=index), y=pd.Series(panel.r, index=index),
                         data_type="portfolio")


@pytest.mark.slow  # the reference compiles with numba on first use (~20 s)
@pytest.mark.parametrize("intercept", [False, True])
def test_agrees_with_the_reference_package(small: synthetic.Panel, intercept: bool) -> None:
    ref = _reference_fit(small, 2, intercept)
    ours = ipca.fit(ipca.moments(small.z, small.r, small.date_codes, small.n_dates), 2,
                    intercept=intercept, tol=1e-12)
    np.testing.assert_allclose(ours.gamma_beta, ref.Gamma[:, :2], atol=1e-8)
    np.testing.assert_allclose(ours.factors, ref.Factors[:2].T, atol=1e-8)
    if intercept:
        np.testing.assert_allclose(ours.gamma_alpha, ref.Gamma[:, 2], atol=1e-8)


def test_recovers_a_planted_structure() -> None:
    panel = synthetic.planted_panel(1000, 240, 20, 3, r2=0.2, seed=1)
    fit = ipca.fit(ipca.moments(panel.z, panel.r, panel.date_codes, panel.n_dates), 3)
    assert fit.converged
    assert synthetic.projection_r2(fit.gamma_beta, panel.gamma_beta) >= 0.99


def test_kps_identification_holds(small: synthetic.Panel) -> None:
    fit = ipca.fit(ipca.moments(small.z, small.r, small.date_codes, small.n_dates), 2,
                   intercept=True)
    np.testing.assert_allclose(fit.gamma_beta.T @ fit.gamma_beta, np.eye(2), atol=1e-12)
    second = fit.factors.T @ fit.factors
    assert abs(second[0, 1]) < 1e-10 and second[0, 0] > second[1, 1]
    assert (fit.factor_mean > 0).all()
    np.testing.assert_allclose(fit.gamma_beta.T @ fit.gamma_alpha, 0, atol=1e-12)


def test_noise_free_panel_is_fitted_exactly() -> None:
    panel = synthetic.planted_panel(200, 60, 6, 2, r2=1.0 - 1e-12, missing=0.2, seed=4)
    m = ipca.moments(panel.z, panel.r, panel.date_codes, panel.n_dates)
    fit = ipca.fit(m, 2, tol=1e-13)
    assert ipca.r2(fit, panel.z, panel.r, panel.date_codes) == pytest.approx(1, abs=1e-8)
    assert ipca.portfolio_r2(fit, m) == pytest.approx(1, abs=1e-8)


def test_r2_definitions_are_uncentred_and_pooled(small: synthetic.Panel) -> None:
    m = ipca.moments(small.z, small.r, small.date_codes, small.n_dates)
    fit = ipca.fit(m, 2)
    loadings = fit.factors @ fit.gamma_beta.T
    fitted = np.einsum("nl,nl->n", small.z, loadings[small.date_codes])
    by_hand = 1 - np.sum((small.r - fitted) ** 2) / np.sum(small.r**2)
    assert ipca.r2(fit, small.z, small.r, small.date_codes) == pytest.approx(by_hand)
    predicted = small.z @ (fit.gamma_beta @ fit.factor_mean)
    by_hand = 1 - np.sum((small.r - predicted) ** 2) / np.sum(small.r**2)
    assert ipca.r2(fit, small.z, small.r, small.date_codes, predictive=True) == pytest.approx(
        by_hand)
    np.testing.assert_allclose(fit.expected_returns(small.z), predicted)


def test_moments_match_a_per_date_computation(small: synthetic.Panel) -> None:
    m = ipca.moments(small.z, small.r, small.date_codes, small.n_dates)
    for t in (0, 41, small.n_dates - 1):
        rows = small.date_codes == t
        zt, rt = small.z[rows], small.r[rows]
        np.testing.assert_allclose(m.x[t], zt.T @ rt / rows.sum())
        np.testing.assert_allclose(m.w[t], zt.T @ zt / rows.sum())


def test_row_order_does_not_matter(small: synthetic.Panel) -> None:
    shuffled = np.random.default_rng(0).permutation(len(small.r))
    sorted_m = ipca.moments(small.z, small.r, small.date_codes, small.n_dates)
    shuffled_m = ipca.moments(small.z[shuffled], small.r[shuffled], small.date_codes[shuffled],
                              small.n_dates)
    np.testing.assert_allclose(shuffled_m.x, sorted_m.x, atol=1e-15)
    np.testing.assert_allclose(shuffled_m.w, sorted_m.w, atol=1e-15)


def test_bad_inputs_are_refused_with_the_reason(small: synthetic.Panel) -> None:
    m = ipca.moments(small.z, small.r, small.date_codes, small.n_dates)
    with pytest.raises(ModelError, match="K=9"):
        ipca.fit(m, 9)
    collinear = np.column_stack([small.z, small.z[:, 0]])
    with pytest.raises(ModelError, match="collinear"):
        ipca.fit(ipca.moments(collinear, small.r, small.date_codes, small.n_dates), 2)
    with pytest.raises(ModelError, match="dates without assets"):
        ipca.moments(small.z, small.r, small.date_codes, small.n_dates + 1)
    broken = small.z.copy()
    broken[3, 2] = np.nan
    with pytest.raises(ModelError, match="finite"):
        ipca.moments(broken, small.r, small.date_codes, small.n_dates)


def test_dates_with_too_few_assets_and_zero_returns_are_refused(small: synthetic.Panel) -> None:
    keep = (small.date_codes != 7) | (np.arange(len(small.r)) % 300 == 0)  # date 7: ~1 asset
    thin = ipca.moments(small.z[keep], small.r[keep], small.date_codes[keep], small.n_dates)
    assert thin.counts[7] < 2
    with pytest.raises(ModelError, match="fewer assets than K=2"):
        ipca.fit(thin, 2)
    zero = ipca.moments(small.z, np.zeros_like(small.r), small.date_codes, small.n_dates)
    with pytest.raises(ModelError, match="all zero"):
        ipca.fit(zero, 2)


def _feature_store_layout(panel: synthetic.Panel) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """The panel as the feature store returns it: (symbol, session_date) rows, entity-major,
    missing not at random (late listings, and low values of the first characteristic), the
    constant not stored. Also the kept rows' positions in the (date-sorted) panel."""
    first_date = (panel.asset_codes * 7) % (panel.n_dates // 3)  # staggered listing dates
    keep = (panel.date_codes >= first_date[panel.asset_codes]) & (panel.z[:, 0] > -0.4)
    kept = np.flatnonzero(keep)
    entity_major = kept[np.lexsort((panel.date_codes[kept], panel.asset_codes[kept]))]
    index = pd.MultiIndex.from_arrays(
        [
            pd.Index([f"S{a:04d}" for a in panel.asset_codes[entity_major]], name="symbol"),
            pd.DatetimeIndex(pd.Timestamp("2020-01-01") + pd.to_timedelta(
                panel.date_codes[entity_major], "D"), name="session_date"),
        ]
    )
    columns = [f"c{i}" for i in range(panel.z.shape[1] - 1)]  # the last column is the constant
    features = pd.DataFrame(panel.z[entity_major, :-1], index=index, columns=columns)
    returns = pd.Series(panel.r[entity_major], index=index)
    return features, returns, kept


def test_the_feature_store_layout_gives_the_same_gamma_as_sorted_arrays(
    small: synthetic.Panel,
) -> None:
    features, returns, kept = _feature_store_layout(small)
    assert features.index.get_level_values("symbol").is_monotonic_increasing
    from_frame, dates = ipca.frame_moments(features, returns)
    codes, uniques = np.unique(small.date_codes[kept], return_inverse=True)
    from_arrays = ipca.moments(small.z[kept], small.r[kept], uniques, len(codes))
    assert len(dates) == len(codes) and dates.is_monotonic_increasing
    # The same sums, added in another order (chunks of rows instead of whole dates).
    np.testing.assert_allclose(from_frame.x, from_arrays.x, rtol=0, atol=1e-15)
    np.testing.assert_allclose(from_frame.w, from_arrays.w, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(from_frame.counts, from_arrays.counts)
    gamma_frame = ipca.fit(from_frame, 2, tol=1e-12).gamma_beta
    np.testing.assert_allclose(gamma_frame, ipca.fit(from_arrays, 2, tol=1e-12).gamma_beta,
                               rtol=0, atol=1e-12)


def test_a_filtered_frame_drops_its_unused_dates(small: synthetic.Panel) -> None:
    features, returns, _ = _feature_store_layout(small)
    late = features.index.get_level_values("session_date") >= pd.Timestamp("2020-02-01")
    m, dates = ipca.frame_moments(features[late], returns[late])
    assert dates[0] == pd.Timestamp("2020-02-01") and len(m.counts) == len(dates)
    assert (m.counts > 0).all()


def _per_date(z: np.ndarray, r: np.ndarray, codes: np.ndarray, n_dates: int):
    """The moments the simple way: z_t'r_t / N_t and z_t'z_t / N_t, a date at a time."""
    x, w = np.empty((n_dates, z.shape[1])), np.empty((n_dates, z.shape[1], z.shape[1]))
    for t in range(n_dates):
        zt, rt = z[codes == t], r[codes == t]
        x[t], w[t] = zt.T @ rt / len(rt), zt.T @ zt / len(rt)
    return x, w


def _assert_per_date(m: ipca.Moments, z: np.ndarray, r: np.ndarray, codes: np.ndarray) -> None:
    x, w = _per_date(z, r, codes, len(m.counts))
    np.testing.assert_allclose(m.x, x, rtol=0, atol=1e-15)
    np.testing.assert_allclose(m.w, w, rtol=0, atol=1e-15)


@pytest.fixture
def date_grids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Chunks of ~900 rows (boundaries inside assets); returns the sizes of those that fall
    back to sorting by date."""
    monkeypatch.setattr(ipca, "_CHUNK_BYTES", 64_000)
    sorted_chunks: list[int] = []
    by_date = ipca._date_grid

    def spy(codes: np.ndarray):  # noqa: ANN202
        sorted_chunks.append(len(codes))
        return by_date(codes)

    monkeypatch.setattr(ipca, "_date_grid", spy)
    return sorted_chunks


def test_entity_major_chunks_need_no_sort(small: synthetic.Panel, date_grids: list[int]) -> None:
    features, returns, kept = _feature_store_layout(small)
    _, codes = np.unique(small.date_codes[kept], return_inverse=True)
    codes = codes[np.lexsort((small.date_codes[kept], small.asset_codes[kept]))]
    z = np.column_stack([features.to_numpy(), np.ones(len(features))])
    from_frame, _ = ipca.frame_moments(features, returns)  # column-major, constant appended
    _assert_per_date(from_frame, z, returns.to_numpy(), codes)
    from_arrays = ipca.moments(z, returns.to_numpy(), codes, codes.max() + 1)  # row-major
    np.testing.assert_array_equal(from_arrays.w, from_frame.w)  # the same sums, bit for bit
    np.testing.assert_array_equal(from_arrays.x, from_frame.x)
    assert len(returns) > 10 * 900 and date_grids == []


def test_rows_in_random_order_are_sorted_by_date_chunk_by_chunk(
    small: synthetic.Panel, date_grids: list[int]
) -> None:
    shuffled = np.random.default_rng(1).permutation(len(small.r))
    z, r, codes = small.z[shuffled], small.r[shuffled], small.date_codes[shuffled]
    _assert_per_date(ipca.moments(z, r, codes, small.n_dates), z, r, codes)
    assert sum(date_grids) == len(r)


def test_newest_dates_first_are_not_taken_for_runs(
    small: synthetic.Panel, date_grids: list[int]
) -> None:
    # Rows of one date in a row are separate runs (a run's dates strictly increase): else
    # they would share cells.
    newest_first = np.argsort(-small.date_codes, kind="stable")
    z, r, codes = small.z[newest_first], small.r[newest_first], small.date_codes[newest_first]
    _assert_per_date(ipca.moments(z, r, codes, small.n_dates), z, r, codes)
    assert date_grids  # (a chunk of a single date is dense by runs: a row per slot)


def test_a_panel_can_mix_both_grids(small: synthetic.Panel, date_grids: list[int]) -> None:
    entity_major = np.lexsort((small.date_codes, small.asset_codes))
    half = len(entity_major) // 2
    rows = np.concatenate([entity_major[:half], np.random.default_rng(2).permutation(
        entity_major[half:])])
    z, r, codes = small.z[rows], small.r[rows], small.date_codes[rows]
    _assert_per_date(ipca.moments(z, r, codes, small.n_dates), z, r, codes)
    assert 0 < sum(date_grids) < len(r)


def test_narrow_date_codes_do_not_overflow_the_grid() -> None:
    panel = synthetic.planted_panel(600, 80, 4, 1, seed=3)  # one chunk of 600 × 80 cells
    rows = np.lexsort((panel.date_codes, panel.asset_codes))
    z, r, codes = panel.z[rows], panel.r[rows], panel.date_codes[rows].astype(np.int16)
    _assert_per_date(ipca.moments(z, r, codes, panel.n_dates), z, r, codes)


def test_non_finite_values_are_refused_in_any_row_order(small: synthetic.Panel) -> None:
    entity_major = np.lexsort((small.date_codes, small.asset_codes))
    z, r, codes = small.z[entity_major], small.r[entity_major], small.date_codes[entity_major]
    broken_z, broken_r = z.copy(), r.copy()
    broken_z[5, 1] = np.nan
    broken_r[7], z[7] = np.inf, 0.0  # no characteristic would carry this return's infinity
    for bad_z, bad_r in ((broken_z, r), (z, broken_r)):
        with warnings.catch_warnings(), pytest.raises(ModelError, match="finite"):
            warnings.simplefilter("error")  # refused as such, not with a RuntimeWarning
            ipca.moments(bad_z, bad_r, codes, small.n_dates)
    huge = z * 1e200  # finite, only the squares overflow: allowed, as for sorted rows
    with np.errstate(over="ignore"):
        assert np.isinf(ipca.moments(huge, r, codes, small.n_dates).w).any()
