"""Instrumented PCA (Kelly, Pruitt & Su 2019, "Characteristics are covariances").

Model, for asset i with characteristics ``z_{i,t}`` (L-vector, known at t) and return
``r_{i,t+1}``::

    r_{i,t+1} = z_{i,t}' Γ_α + z_{i,t}' Γ_β f_{t+1} + ε_{i,t+1}

Everything is estimated from the *managed-portfolio moments*, computed once::

    x_{t+1} = Z_t' r_{t+1} / N_t      (L)        W_t = Z_t' Z_t / N_t      (L × L)

after which no step costs anything in N. Alternating least squares on the pooled panel
objective Σ_{i,t} ε² (each date weighted by N_t, as KPS and the reference package do):

* factors, all dates at once: ``f_{t+1} = (Γ_β' W_t Γ_β)⁻¹ Γ_β' (x_{t+1} − W_t Γ_α)``;
* Γ: ``Σ_t N_t (W_t ⊗ f̃ f̃') vec(Γ̃') = Σ_t N_t (x_{t+1} ⊗ f̃)`` with ``f̃ = [f; 1]`` when
  the intercept is estimated (``Γ̃ = [Γ_β, Γ_α]``).

Identification (KPS): ``Γ_β'Γ_β = I``, ``F'F`` diagonal with descending entries, positive
factor means, and ``Γ_α`` orthogonal to ``Γ_β`` (the part of Γ_α inside span(Γ_β) is moved
into the factors, which leaves every fitted value unchanged). Fits are therefore
deterministic and comparable across runs and implementations.

Conventions: arrays, not frames (but :func:`frame_moments` reads a feature frame as it
comes); ``dates`` index the characteristics' date t, and the factor stored for that row is
``f_{t+1}``; returns are simple returns in the units given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from pipelines.errors import ModelError

if TYPE_CHECKING:  # pandas only for frame_moments: the array path stays light to import
    import pandas as pd

_BLOCK_BYTES = 8 * 2**20  # padded workspace per block of dates (date-sorted rows)
_CHUNK_BYTES = 32 * 2**20  # rows (and returns) read per chunk (rows in any other order)
_MAX_PADDING = 2  # most cells per row in a chunk's grid by runs; sparser: sort by date
MAX_ITER, TOL = 5_000, 1e-10  # ALS defaults: iterations, largest change in Γ or F


@dataclass(frozen=True)
class Moments:
    """Managed-portfolio moments of a panel: ``x`` (T×L), ``w`` (T×L×L), ``counts`` (T)."""

    x: np.ndarray
    w: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True)
class IPCAFit:
    gamma_beta: np.ndarray  # L × K, orthonormal columns
    gamma_alpha: np.ndarray | None  # L, or None for the restricted model (Γ_α = 0)
    factors: np.ndarray  # T × K; row t is f_{t+1}
    iterations: int
    converged: bool
    gamma_delta: np.ndarray | None = None  # L × M loadings on pre-specified factors, if any
    psf: np.ndarray | None = None  # T × M pre-specified factors; row t is g_{t+1}

    @property
    def factor_mean(self) -> np.ndarray:
        """λ: the mean factor, used for predictive fits and forecasts."""
        return self.factors.mean(axis=0)

    def loadings(self, predictive: bool = False) -> np.ndarray:
        """T × L: ``Γ_α + Γ_β f_{t+1} + Γ_δ g_{t+1}`` per date (means of f and g if predictive)."""
        f = np.broadcast_to(self.factor_mean, self.factors.shape) if predictive else self.factors
        loadings = f @ self.gamma_beta.T
        if self.gamma_delta is not None and self.psf is not None:
            g = np.broadcast_to(self.psf.mean(axis=0), self.psf.shape) if predictive else self.psf
            loadings = loadings + g @ self.gamma_delta.T
        if self.gamma_alpha is not None:
            loadings = loadings + self.gamma_alpha
        return loadings

    def expected_returns(self, z: np.ndarray) -> np.ndarray:
        """Predictive fit ``z'(Γ_α + Γ_β λ + Γ_δ mean(g))`` for characteristics ``z`` (n × L)."""
        return z @ self.loadings(predictive=True)[0]


def moments(z: np.ndarray, r: np.ndarray, date_codes: np.ndarray, n_dates: int) -> Moments:
    """Managed-portfolio moments from stacked rows (characteristics, next returns, date ids).

    Rows may come in any order (date-sorted arrays, or entity-major as a feature store keeps
    them): they are gathered date by date straight into the padded workspace, never copied
    into date order first.
    """
    z = np.asarray(z, dtype=float)
    r = np.asarray(r, dtype=float)
    if z.ndim != 2 or r.shape != (z.shape[0],) or date_codes.shape != r.shape:
        raise ModelError("z must be n×L, r and date_codes length n")
    return _moments(z, r, np.asarray(date_codes), n_dates, constant=False)


def frame_moments(
    features: pd.DataFrame, returns: pd.Series, constant: bool = True, level: str = "session_date"
) -> tuple[Moments, pd.Index]:
    """Moments of a feature frame and its next returns, and the dates they are indexed by.

    ``features``: rows indexed by a MultiIndex with a ``level`` (the date t) level, in any
    order — e.g. (symbol, session_date), entity-major, with rows missing wherever an asset
    has no characteristics; ``returns``: aligned with ``features``' rows (r_{t+1}).
    ``constant``: append a constant instrument after the columns (KPS's convention), without
    materializing it. Same moments as :func:`moments` on ``[features, 1]`` with the date
    codes of the sorted dates, to the last bit; the frame's values are read in place when they
    are one float64 block.
    """
    import pandas as pd

    if len(returns) != len(features):
        raise ModelError(f"{len(returns)} returns for {len(features)} feature rows")
    index = features.index
    position = index.names.index(level)
    levels = index.levels[position] if isinstance(index, pd.MultiIndex) else None
    if levels is not None and levels.is_monotonic_increasing:
        codes = np.asarray(index.codes[position])  # already integer codes: no factorize
        used = np.bincount(codes, minlength=len(levels)) > 0
        date_codes = (np.cumsum(used) - 1)[codes]  # unused levels (a filtered frame) dropped
        dates = levels[used]
    else:
        date_codes, dates = pd.factorize(index.get_level_values(level), sort=True)
    z = features.to_numpy(dtype=float)
    r = returns.to_numpy(dtype=float)
    return _moments(z, r, date_codes, len(dates), constant), pd.Index(dates, name=level)


def _moments(
    z: np.ndarray, r: np.ndarray, date_codes: np.ndarray, n_dates: int, constant: bool
) -> Moments:
    counts = np.bincount(date_codes, minlength=n_dates).astype(float)
    if (counts == 0).any():
        raise ModelError(f"dates without assets: {np.flatnonzero(counts == 0)[:5].tolist()}")
    if np.any(date_codes[1:] < date_codes[:-1]):
        x, w = _chunked_products(z, r, date_codes, n_dates, constant)  # checks finiteness
    else:
        _require_finite(z, r)
        x, w = _padded_products(z, r, counts.astype(int), n_dates, constant)
    return Moments(x / counts[:, None], w / counts[:, None, None], counts)


def _require_finite(z: np.ndarray, r: np.ndarray) -> None:
    # A NaN or an infinity makes the sum non-finite: one pass without a mask the size of z
    # (a fifth of the moments' time on a large panel); the exact check runs only then.
    if not (np.isfinite(z.sum()) and np.isfinite(r.sum())) and not (
        np.isfinite(z).all() and np.isfinite(r).all()
    ):
        raise ModelError("characteristics and returns must be finite: drop or fill missing rows")


def _by_column(z: np.ndarray) -> bool:
    """Whether to read ``z`` a column at a time: a DataFrame's float block is column-major."""
    return bool(z.flags.f_contiguous and not z.flags.c_contiguous)


def _padded_products(
    z: np.ndarray, r: np.ndarray, counts: np.ndarray, n_dates: int, constant: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``Σ z z'`` and ``Σ z r`` per date for date-sorted rows, without a loop over dates.

    Dates go in blocks of about :data:`_BLOCK_BYTES`: each block's rows are copied into a
    zero-padded dates × N_max × L buffer (reused), and one batched product gives all its
    dates' Z'Z (NumPy calls BLAS syrk per date: half the work of a general product). With
    ``constant`` the buffer's last column is 1 on real rows and 0 on padding: the constant
    instrument costs no copy of the panel. The products are small (L × N_t × L), so BLAS runs
    on one thread: its threads cost more than they save here, and much more when other
    processes hold the cores. Blocks keep the workspace at a few MB instead of a padded copy
    of the whole panel.
    """
    n_given = z.shape[1]
    n_chars = n_given + constant
    by_column = _by_column(z)
    widest = int(counts.max())
    starts = np.concatenate([[0], np.cumsum(counts)])
    filled = np.arange(widest)[None, :] < counts[:, None]  # dates × N_max: a real row?
    block = max(1, _BLOCK_BYTES // (8 * widest * n_chars))
    buffer_z = np.zeros((block, widest, n_chars))
    buffer_r = np.zeros((block, widest))
    x = np.empty((n_dates, n_chars))
    w = np.empty((n_dates, n_chars, n_chars))
    with threadpool_limits(1, user_api="blas"):
        for first in range(0, n_dates, block):
            last = min(n_dates, first + block)
            pz, pr = buffer_z[: last - first], buffer_r[: last - first]
            mask = filled[first:last]
            rows = slice(starts[first], starts[last])
            if by_column:
                for column in range(n_given):
                    pz[:, :, column][mask] = z[rows, column]
            else:
                pz[mask, :n_given] = z[rows]
            if constant:
                pz[:, :, n_given] = mask
            pr[mask] = r[rows]
            pz[~mask], pr[~mask] = 0.0, 0.0  # padding left from the previous block
            transposed = pz.transpose(0, 2, 1)
            np.matmul(transposed, pz, out=w[first:last])
            x[first:last] = np.matmul(transposed, pr[:, :, None])[:, :, 0]
    return x, w


def _chunked_products(
    z: np.ndarray, r: np.ndarray, date_codes: np.ndarray, n_dates: int, constant: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``Σ z z'`` and ``Σ z r`` per date for rows in any order (e.g. entity-major).

    Sorting the whole panel into date order first is a random gather of every row, most of
    a fit's time on a large panel. Instead the rows are read in contiguous chunks of about
    :data:`_CHUNK_BYTES`, each padded on its own into a grid of its dates × slots, one plane
    per column (:func:`_fill_grid`). Entity-major, a chunk is some assets × all their dates
    and each asset takes a slot (:func:`_chunk_grid`): the grid is dense and needs no sort.
    One batched product per chunk gives every date's Gram matrix of ``[z, 1, r]`` (the 1 with
    ``constant``), whose last row is ``Σ z r``, added to the dates' totals. The sums are the
    same as :func:`_padded_products`' up to the order of addition (a few units in the last
    place); that ``z`` and ``r`` are finite is read off the Gram's diagonal.

    Sizes: the more assets a date, the less the products cost per row. Chunks of 32 MB (~190
    assets a date on a 40-column panel) take a fifth less time than chunks of 8 MB, and
    twice 32 MB gains only 6% more. ``r`` costs one more column in each product instead of a
    matrix-vector product per date.
    """
    n_given = z.shape[1]
    width = n_given + constant + 1  # z's columns, the constant, the return
    chunk = max(1, _CHUNK_BYTES // (8 * width))
    gram = np.zeros((n_dates, width, width))
    products = np.empty_like(gram)
    # Every chunk's grid by runs fits; np.empty reserves, pages are taken as they are written.
    space = np.empty(_MAX_PADDING * min(chunk, len(r)) * width)
    # NaN or infinite values are refused below, without a RuntimeWarning from the products.
    with threadpool_limits(1, user_api="blas"), np.errstate(invalid="ignore"):
        for start in range(0, len(r), chunk):
            rows = slice(start, min(len(r), start + chunk))
            place, shape, dates = _chunk_grid(date_codes[rows])
            grid = _fill_grid(z[rows], r[rows], place, shape, constant, space)
            _add_gram(gram, grid, dates, products)
    # Σ v² is NaN or infinite if one of the column's values is (or if it overflows): a free
    # check, where a pass over z would add 6% to this function's time.
    if not np.isfinite(np.einsum("tjj->tj", gram)).all():
        _require_finite(z, r)
    return gram[:, -1, :-1], gram[:, :-1, :-1]


def _chunk_grid(codes: np.ndarray) -> tuple[np.ndarray, tuple[int, int], slice | np.ndarray]:
    """Each row's cell in a padded dates × slots grid (flattened), its shape, and its dates.

    Rows come in *runs* of strictly increasing dates (entity-major: one asset's rows, or the
    part of them in this chunk). Run k takes slot k on every date of the chunk, so a row's
    cell is arithmetic (no sort), and no two rows share a cell whatever the rows' order. That
    grid is dense when runs are long; with more than :data:`_MAX_PADDING` cells per row (rows
    in random order come in runs of a row or two), :func:`_date_grid` is used instead.
    """
    codes = codes.astype(np.intp, copy=False)  # a narrower dtype could overflow in the cells
    runs = np.zeros(len(codes), dtype=np.intp)
    np.cumsum(codes[1:] <= codes[:-1], out=runs[1:])  # a new run where dates do not increase
    n_runs = int(runs[-1]) + 1
    first, last = int(codes.min()), int(codes.max())
    span = last - first + 1
    if span * n_runs > _MAX_PADDING * len(codes):
        return _date_grid(codes)
    return (codes - first) * n_runs + runs, (span, n_runs), slice(first, last + 1)


def _date_grid(codes: np.ndarray) -> tuple[np.ndarray, tuple[int, int], slice | np.ndarray]:
    """As :func:`_chunk_grid`, for rows in any order: sorted by date, date d's rows take its
    first slots (as many slots as the busiest date has rows)."""
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    firsts = np.flatnonzero(np.diff(ordered, prepend=-1))  # each date's first row
    sizes = np.diff(np.append(firsts, len(ordered)))
    widest = int(sizes.max())
    place = np.empty(len(order), dtype=np.intp)
    place[order] = np.repeat(np.arange(len(firsts)) * widest - firsts, sizes) + np.arange(
        len(order)
    )
    dates = ordered[firsts]
    if dates[-1] - dates[0] + 1 == len(dates):  # consecutive dates: added to a slice in place
        return place, (len(dates), widest), slice(int(dates[0]), int(dates[-1]) + 1)
    return place, (len(dates), widest), dates


def _fill_grid(
    z: np.ndarray,
    r: np.ndarray,
    place: np.ndarray,
    shape: tuple[int, int],
    constant: bool,
    space: np.ndarray,
) -> np.ndarray:
    """A chunk's columns (``z``'s, the constant, ``r``) padded: columns × dates × slots.

    Each column is copied into a buffer that ends in a zero, then gathered into its plane,
    date after date: empty cells gather the zero and the constant is 1 only on rows, so no
    cell keeps a value from an earlier chunk. The copy is a sequential read (a column of a
    DataFrame's column-major block is contiguous); gathering straight from memory would read
    one stream per asset, slower. Each date's matrix (columns × slots) then has unit
    stride along the slots, as BLAS needs, without transposing the chunk. The grid is a view
    of ``space`` when it fits.
    """
    n_rows, n_given = z.shape
    width, cells = n_given + constant + 1, shape[0] * shape[1]
    flat = space[: width * cells] if width * cells <= space.size else np.empty(width * cells)
    planes = flat.reshape(width, cells)
    gather = np.full(cells, n_rows, dtype=np.intp)  # each cell's row; n_rows: empty
    gather[place] = np.arange(n_rows)
    source = np.zeros(n_rows + 1)
    for plane, values in zip([*planes[:n_given], planes[-1]], [*z.T, r], strict=True):
        source[:n_rows] = values
        # mode="clip": the indices are in range, and the default "raise" buffers ``out``.
        np.take(source, gather, out=plane, mode="clip")
    if constant:
        np.not_equal(gather, n_rows, out=planes[n_given])
    return planes.reshape(width, *shape)


def _add_gram(
    gram: np.ndarray, grid: np.ndarray, dates: slice | np.ndarray, products: np.ndarray
) -> None:
    """Add each date's Gram matrix of a padded grid (columns × dates × slots) to ``gram``.

    ``products``: a buffer with room for the grid's dates.
    """
    by_date = grid.transpose(1, 0, 2)  # each date's columns × slots
    out = products[: len(by_date)]
    # A batch of matrices times their transposes: NumPy calls BLAS syrk, half a product.
    np.matmul(by_date, by_date.transpose(0, 2, 1), out=out)
    gram[dates] += out


def fit(
    m: Moments,
    n_factors: int,
    intercept: bool = False,
    max_iter: int = MAX_ITER,
    tol: float = TOL,
    warm_start: IPCAFit | None = None,
    psf: np.ndarray | None = None,
) -> IPCAFit:
    """Estimate Γ and F by alternating least squares; normalized as KPS identify them.

    ``psf``: optional pre-specified (observable) factors, T × M with row t holding g_{t+1}
    (e.g. a market return): the model adds ``z'Γ_δ g_{t+1}`` with Γ_δ estimated alongside Γ_β.
    As for Γ_α, the part of Γ_δ inside span(Γ_β) is moved into the latent factors, so
    ``Γ_β'Γ_δ = 0`` (the reference package's convention).

    Every product here is small (at most (L·K̃)²), so BLAS runs on one thread: its threads
    only add synchronization, and spin for long when other processes hold the cores.
    """
    with threadpool_limits(1, user_api="blas"):
        return _fit(m, n_factors, intercept, max_iter, tol, warm_start, psf)


def _fit(
    m: Moments,
    n_factors: int,
    intercept: bool,
    max_iter: int,
    tol: float,
    warm_start: IPCAFit | None,
    psf: np.ndarray | None,
) -> IPCAFit:
    n_dates, n_chars = m.x.shape
    if not 0 < n_factors <= n_chars:
        raise ModelError(f"K={n_factors} factors need 1 ≤ K ≤ L={n_chars} characteristics")
    exog = _exogenous(psf, intercept, n_dates)
    if exog is not None and n_factors + exog.shape[1] > n_chars:
        raise ModelError(
            f"K={n_factors} factors plus {exog.shape[1]} pre-specified (or intercept) columns "
            f"exceed L={n_chars} characteristics: lower K"
        )
    thin = np.flatnonzero(m.counts < n_factors)
    if len(thin):
        raise ModelError(
            f"dates {thin[:5].tolist()} have fewer assets than K={n_factors} "
            "factors: drop those dates or lower K"
        )
    if not np.any(m.x):
        raise ModelError(
            "every managed-portfolio return is zero (returns are all zero): there is nothing to fit"
        )
    rank = np.linalg.matrix_rank(m.w.sum(axis=0))
    if rank < n_chars:
        raise ModelError(
            f"characteristics are collinear (rank {rank} < L={n_chars}): "
            "drop redundant characteristics"
        )
    gamma = _initial_gamma(m, n_factors, exog, warm_start)
    factors = _factor_step(m, gamma, n_factors, exog)
    iterations, change = 0, np.inf
    while change >= tol and iterations < max_iter:
        new_gamma = _gamma_step(m, factors, exog)
        new_factors = _factor_step(m, new_gamma, n_factors, exog)
        change = max(np.abs(new_gamma - gamma).max(), np.abs(new_factors - factors).max())
        gamma, factors, iterations = new_gamma, new_factors, iterations + 1
    return _normalize(gamma, factors, n_factors, exog, psf, intercept, iterations, change < tol)


def _exogenous(psf: np.ndarray | None, intercept: bool, n_dates: int) -> np.ndarray | None:
    """T × J observed regressors of the Γ step: the pre-specified factors, then a constant."""
    columns = []
    if psf is not None:
        psf = np.asarray(psf, dtype=float)
        if psf.ndim != 2 or psf.shape[0] != n_dates:
            raise ModelError(f"psf must be T×M with T={n_dates} dates, got shape {psf.shape}")
        if not np.isfinite(psf).all():
            raise ModelError("pre-specified factors must be finite on every date")
        columns.append(psf)
    if intercept:
        columns.append(np.ones((n_dates, 1)))
    return np.column_stack(columns) if columns else None


def _initial_gamma(m: Moments, k: int, exog: np.ndarray | None, warm: IPCAFit | None) -> np.ndarray:
    n_chars = m.x.shape[1]
    if warm is not None:
        beta = warm.gamma_beta
    else:  # the managed portfolios' leading principal directions
        u, _, _ = np.linalg.svd(m.x.T, full_matrices=False)
        beta = u[:, :k]
    if exog is None:
        return beta
    block = np.zeros((n_chars, exog.shape[1]))
    if warm is not None:
        known = [g for g in (warm.gamma_delta, warm.gamma_alpha) if g is not None]
        warm_block = np.column_stack(known) if known else block
        if warm_block.shape == block.shape:
            block = warm_block
    return np.column_stack([beta, block])


def _factor_step(m: Moments, gamma: np.ndarray, k: int, exog: np.ndarray | None) -> np.ndarray:
    beta = gamma[:, :k]
    if exog is None:
        target = m.x
    else:  # remove what the observed regressors explain: W_t (Γ_δ g_{t+1} + Γ_α)
        fixed = exog @ gamma[:, k:].T
        target = m.x - np.einsum("tlm,tm->tl", m.w, fixed)
    lhs = beta.T @ m.w @ beta  # T × K × K, one batched product
    rhs = target @ beta
    return np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]


def _gamma_step(m: Moments, factors: np.ndarray, exog: np.ndarray | None) -> np.ndarray:
    f = factors if exog is None else np.column_stack([factors, exog])
    n_chars, kk = m.x.shape[1], f.shape[1]
    weighted = f * m.counts[:, None]
    numerator = np.einsum("tl,tk->lk", m.x, weighted).reshape(n_chars * kk)
    # Σ_t W_t ⊗ (N_t f̃ f̃') as one (L²) × (T) × (K̃²) product, then reordered to (l,k),(m,j).
    outer = (weighted[:, :, None] * f[:, None, :]).reshape(len(f), kk * kk)
    summed = (m.w.reshape(len(f), n_chars * n_chars).T @ outer).reshape(n_chars, n_chars, kk, kk)
    denominator = summed.transpose(0, 2, 1, 3).reshape(n_chars * kk, n_chars * kk)
    return np.linalg.solve(denominator, numerator).reshape(n_chars, kk)


def _normalize(
    gamma: np.ndarray,
    factors: np.ndarray,
    k: int,
    exog: np.ndarray | None,
    psf: np.ndarray | None,
    intercept: bool,
    iterations: int,
    converged: bool,
) -> IPCAFit:
    beta, alpha, delta = gamma[:, :k], None, None
    if exog is not None:  # move the part of [Γ_δ, Γ_α] inside span(Γ_β) into the factors
        block = gamma[:, k:]
        inside = np.linalg.lstsq(beta, block, rcond=None)[0]  # K × J
        block = block - beta @ inside
        factors = factors + exog @ inside.T
        if intercept:
            alpha, block = block[:, -1], block[:, :-1]
        if psf is not None:
            delta = block
    chol = np.linalg.cholesky(beta.T @ beta)  # Γ'Γ = C C'
    beta = beta @ np.linalg.inv(chol.T)
    factors = factors @ chol
    eigvals, eigvecs = np.linalg.eigh(factors.T @ factors)
    rotation = eigvecs[:, np.argsort(eigvals)[::-1]]
    beta, factors = beta @ rotation, factors @ rotation
    signs = np.where(factors.mean(axis=0) < 0, -1.0, 1.0)
    psf_kept = None if psf is None else np.asarray(psf, dtype=float)
    return IPCAFit(beta * signs, alpha, factors * signs, iterations, converged, delta, psf_kept)


def _fitted(fit_: IPCAFit, z: np.ndarray, date_codes: np.ndarray, predictive: bool) -> np.ndarray:
    return np.einsum("nl,nl->n", z, fit_.loadings(predictive)[date_codes])


def r2(
    fit_: IPCAFit, z: np.ndarray, r: np.ndarray, date_codes: np.ndarray, predictive: bool = False
) -> float:
    """KPS total (or predictive, with λ in place of f) R² at the stock level: uncentred, pooled."""
    residual = r - _fitted(fit_, z, date_codes, predictive)
    return float(1 - np.sum(residual**2) / np.sum(r**2))


def portfolio_r2(fit_: IPCAFit, m: Moments, predictive: bool = False) -> float:
    """KPS total (or predictive) R² for the managed portfolios x_{t+1}: uncentred, pooled."""
    fitted = np.einsum("tlm,tm->tl", m.w, fit_.loadings(predictive))
    return float(1 - np.sum((m.x - fitted) ** 2) / np.sum(m.x**2))


def oos_expected_returns(
    z: np.ndarray,
    r: np.ndarray,
    date_codes: np.ndarray,
    n_dates: int,
    n_factors: int,
    first_date: int,
    intercept: bool = False,
    window: int | None = None,
) -> np.ndarray:
    """Out-of-sample forecasts for every row dated ``first_date`` or later.

    For date t the model is fitted on the pairs (z_s, r_{s+1}) with s < t (all of them, or the
    last ``window``), warm-started from the previous fit, and the forecast for z_t is
    ``z_t'(Γ_α + Γ_β λ_t)`` with λ_t the mean of the factors estimated through t. Returns an
    array aligned with the input rows, NaN before ``first_date``.
    """
    full = moments(z, r, date_codes, n_dates)
    forecasts = np.full(len(r), np.nan)
    previous: IPCAFit | None = None
    with threadpool_limits(1, user_api="blas"):
        for t in range(first_date, n_dates):
            start = 0 if window is None else max(0, t - window)
            past = Moments(full.x[start:t], full.w[start:t], full.counts[start:t])
            previous = _fit(past, n_factors, intercept, MAX_ITER, TOL, previous, None)
            rows = date_codes == t
            forecasts[rows] = previous.expected_returns(z[rows])
    return forecasts


@dataclass(frozen=True)
class BootstrapTest:
    statistic: float  # W_α = Γ_α'Γ_α of the unrestricted fit
    p_value: float
    draws: np.ndarray  # the statistic under the null, one per draw


def unit_t5(rng: np.random.Generator, size: int) -> np.ndarray:
    """Student-t(5) draws scaled to unit variance (a t(5) has variance 5/3)."""
    return rng.standard_t(5, size) * np.sqrt(3 / 5)


def bootstrap_alpha_test(
    m: Moments, n_factors: int, draws: int = 1_000, seed: int = 0, n_jobs: int = 1
) -> BootstrapTest:
    """KPS's residual bootstrap of H0: Γ_α = 0 (no characteristic-driven alpha).

    Statistic W_α = Γ_α'Γ_α of the unrestricted fit. The null's managed portfolios are rebuilt
    from the restricted fit (``W_t Γ_β f_t``); see :func:`_residual_bootstrap`.
    """
    unrestricted = fit(m, n_factors, intercept=True)
    restricted = fit(m, n_factors, intercept=False)
    assert unrestricted.gamma_alpha is not None

    def statistic(fitted: IPCAFit) -> float:
        assert fitted.gamma_alpha is not None
        return float(fitted.gamma_alpha @ fitted.gamma_alpha)

    null_x = np.einsum("tlm,tm->tl", m.w, restricted.factors @ restricted.gamma_beta.T)
    return _residual_bootstrap(m, unrestricted, null_x, statistic, draws, seed, n_jobs)


def bootstrap_beta_test(
    m: Moments,
    n_factors: int,
    characteristic: int,
    draws: int = 1_000,
    seed: int = 0,
    n_jobs: int = 1,
) -> BootstrapTest:
    """KPS's residual bootstrap of H0: characteristic ``l`` adds nothing to the betas.

    Statistic W_β,l = γ_l'γ_l, the squared norm of row l of Γ_β (invariant to the factors'
    rotation). The null's managed portfolios use the fit with that row set to zero.
    """
    fitted = fit(m, n_factors)
    zeroed = fitted.gamma_beta.copy()
    zeroed[characteristic] = 0.0
    null_x = np.einsum("tlm,tm->tl", m.w, fitted.factors @ zeroed.T)

    def statistic(refit: IPCAFit) -> float:
        row = refit.gamma_beta[characteristic]
        return float(row @ row)

    return _residual_bootstrap(m, fitted, null_x, statistic, draws, seed, n_jobs)


def _residual_bootstrap(
    m: Moments,
    alternative: IPCAFit,
    null_x: np.ndarray,
    statistic: Callable[[IPCAFit], float],
    draws: int,
    seed: int,
    n_jobs: int,
) -> BootstrapTest:
    """Draws of ``statistic`` under the null: ``null_x`` plus the alternative's residuals.

    Each draw adds, date by date, a residual of the alternative fit taken from a date drawn
    with replacement, times a t(5) multiplier scaled to unit variance, then refits the
    alternative model (warm-started). Seeds are spawned per draw, so the draws do not depend
    on ``n_jobs``.
    """
    from joblib import Parallel, delayed

    residuals = m.x - np.einsum("tlm,tm->tl", m.w, alternative.loadings())
    intercept = alternative.gamma_alpha is not None
    k = alternative.gamma_beta.shape[1]

    def one(seed_seq: np.random.SeedSequence) -> float:
        rng = np.random.default_rng(seed_seq)
        picked = rng.integers(0, len(m.x), len(m.x))
        q = unit_t5(rng, len(m.x))
        drawn = Moments(null_x + q[:, None] * residuals[picked], m.w, m.counts)
        return statistic(_fit(drawn, k, intercept, MAX_ITER, TOL, alternative, None))

    seeds = np.random.SeedSequence(seed).spawn(draws)
    # One BLAS thread per draw: in this process here, in joblib's workers by its own default.
    with threadpool_limits(1, user_api="blas"):
        null = np.array(Parallel(n_jobs=n_jobs)(delayed(one)(s) for s in seeds))
    observed = statistic(alternative)
    return BootstrapTest(observed, float(np.mean(null >= observed)), null)
