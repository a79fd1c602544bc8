"""IPCA fit time: this project vs the reference package ``ipca`` 0.6.7, on the same panels.

    .venv/bin/python benchmarks/bench_ipca.py            # N=1000, T=240, L=20, K=3
    .venv/bin/python benchmarks/bench_ipca.py --large    # adds N=3000, T=600, L=40, K=5

Also times a 1,000-draw bootstrap of Γ_α = 0 and a sequence of 120 warm-started
out-of-sample refits (ours only: the reference has no warm start, see the tests).
The reference is timed warm (after a small fit has compiled its numba kernels). Both fit the
restricted model to the same tolerance; the table shows both times, the ratio and the largest
difference between the two normalized Γ estimates. Peak memory is this process's max RSS,
so run one size per process to read it for that size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import time
import warnings

import numpy as np
import pandas as pd

from pipelines.models import ipca, synthetic

TOL = 1e-8


def _reference(panel: synthetic.Panel, k: int):
    from ipca import InstrumentedPCA

    index = pd.MultiIndex.from_arrays([panel.asset_codes, panel.date_codes])
    model = InstrumentedPCA(n_factors=k, intercept=False, max_iter=10_000, iter_tol=TOL)
    quiet = io.StringIO()  # the reference prints progress bars on both streams
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
    ):
        warnings.simplefilter("ignore")
        return model.fit(X=pd.DataFrame(panel.z, index=index), y=pd.Series(panel.r, index=index))


def _ours(panel: synthetic.Panel, k: int) -> ipca.IPCAFit:
    moments = ipca.moments(panel.z, panel.r, panel.date_codes, panel.n_dates)
    return ipca.fit(moments, k, tol=TOL)


def _time(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also N=3000, T=600, L=40, K=5")
    sizes = [(1000, 240, 20, 3)]
    if parser.parse_args().large:
        sizes.append((3000, 600, 40, 5))
    _reference(synthetic.planted_panel(50, 20, 4, 1, seed=9), 1)  # compile numba first
    print(
        f"{'N':>5} {'T':>4} {'L':>3} {'K':>2} {'ours s':>8} {'ipca s':>8} {'ratio':>7} "
        f"{'max |dΓ|':>9} {'proj R²':>8}"
    )
    for n, t, l_chars, k in sizes:
        panel = synthetic.planted_panel(n, t, l_chars, k, seed=1)
        ours_s, ours = _time(_ours, panel, k)
        ref_s, ref = _time(_reference, panel, k)
        diff = np.abs(ours.gamma_beta - ref.Gamma[:, :k]).max()
        proj = synthetic.projection_r2(ours.gamma_beta, panel.gamma_beta)
        print(
            f"{n:>5} {t:>4} {l_chars:>3} {k:>2} {ours_s:>8.3f} {ref_s:>8.2f} "
            f"{ref_s / ours_s:>6.0f}x {diff:>9.1e} {proj:>8.4f}"
        )
    panel = synthetic.planted_panel(1000, 240, 20, 3, seed=1)
    moments = ipca.moments(panel.z, panel.r, panel.date_codes, panel.n_dates)
    boot_s, boot = _time(ipca.bootstrap_alpha_test, moments, 3, 1_000, 0, 2)
    print(f"bootstrap W_alpha, 1,000 draws, 2 workers (N=1000, T=240, L=20, K=3): "
          f"{boot_s:.1f} s, p = {boot.p_value:.3f}")
    oos_s, _ = _time(ipca.oos_expected_returns, panel.z, panel.r, panel.date_codes,
                     panel.n_dates, 3, 120)
    print(f"out-of-sample refits, one per period for periods 120-239 (120 warm-started fits): "
          f"{oos_s:.1f} s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
