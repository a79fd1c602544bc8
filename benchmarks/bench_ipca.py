"""IPCA fit time and peak memory: this project vs the reference package ``ipca`` 0.6.7.

    .venv/bin/python benchmarks/bench_ipca.py                 # both sizes
    .venv/bin/python benchmarks/bench_ipca.py --size small    # N=1000, T=240, L=20, K=3
    .venv/bin/python benchmarks/bench_ipca.py --size large    # N=3000, T=600, L=40, K=5

Each size's planted panel (10% of rows missing) is generated once in its own process and
saved to a temporary file; then this project's fit and the reference's fit each run in a
fresh process that loads it, so each peak RSS (``getrusage`` max RSS) belongs to one fit of
one size: the loaded input plus that implementation's workspace. Both fit the restricted
model to the same tolerance. Ours is timed as the median of three runs (moments + ALS); the
reference once, warm (after a small fit has compiled its numba kernels), both with its default
BLAS threads and with one, and the faster of the two is compared. The table shows both
times (wall and CPU), the ratios, both peaks, and the largest difference between the two
normalized Γ.

On the small panel the script also times a 1,000-draw bootstrap of Γ_α = 0 and a sequence of
120 warm-started out-of-sample refits (ours only: the reference has no warm start).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SIZES = {"small": (1000, 240, 20, 3), "large": (3000, 600, 40, 5)}
TOL = 1e-8


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _current_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _generate(size: str, data: Path) -> None:
    from pipelines.models import synthetic

    n, t, l_chars, k = SIZES[size]
    panel = synthetic.planted_panel(n, t, l_chars, k, seed=1)
    np.savez(
        data,
        z=panel.z,
        r=panel.r,
        date_codes=panel.date_codes,
        asset_codes=panel.asset_codes,
        gamma=panel.gamma_beta,
        n_dates=panel.n_dates,
    )


def _load(data: Path) -> dict:
    with np.load(data) as stored:
        return {name: stored[name] for name in stored.files}


def _ours(size: str, data: Path, out: Path, extras: bool) -> dict:
    from pipelines.models import ipca

    panel = _load(data)
    loaded = _current_mb()
    k, n_dates = SIZES[size][3], int(panel["n_dates"])
    times, cpu, fit = [], [], None
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        moments = ipca.moments(panel["z"], panel["r"], panel["date_codes"], n_dates)
        fit = ipca.fit(moments, k, tol=TOL)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    assert fit is not None
    np.save(out, fit.gamma_beta)
    result = {
        "seconds": statistics.median(times),
        "cpu": statistics.median(cpu),
        "peak_mb": _peak_mb(),
        "loaded_mb": loaded,
        "iterations": fit.iterations,
    }
    if extras:
        start = time.perf_counter()
        boot = ipca.bootstrap_alpha_test(moments, k, 1_000, 0, 2)
        result["bootstrap_s"] = time.perf_counter() - start
        result["bootstrap_p"] = boot.p_value
        start = time.perf_counter()
        ipca.oos_expected_returns(panel["z"], panel["r"], panel["date_codes"], n_dates, k, 120)
        result["oos_s"] = time.perf_counter() - start
    return result


def _reference_fit(z, r, date_codes, asset_codes, k: int):
    import pandas as pd
    from ipca import InstrumentedPCA

    index = pd.MultiIndex.from_arrays([asset_codes, date_codes])
    model = InstrumentedPCA(n_factors=k, intercept=False, max_iter=10_000, iter_tol=TOL)
    quiet = io.StringIO()  # the reference prints progress bars on both streams
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
    ):
        warnings.simplefilter("ignore")
        return model.fit(X=pd.DataFrame(z, index=index), y=pd.Series(r, index=index))


def _reference(size: str, data: Path, out: Path) -> dict:
    from pipelines.models import synthetic

    warm = synthetic.planted_panel(50, 20, 4, 1, seed=9)  # compile numba first
    _reference_fit(warm.z, warm.r, warm.date_codes, warm.asset_codes, 1)
    panel = _load(data)
    loaded = _current_mb()
    k = SIZES[size][3]
    start, start_cpu = time.perf_counter(), time.process_time()
    model = _reference_fit(panel["z"], panel["r"], panel["date_codes"], panel["asset_codes"], k)
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    np.save(out, model.Gamma[:, :k])
    return {"seconds": seconds, "cpu": cpu, "peak_mb": _peak_mb(), "loaded_mb": loaded}


def _worker(*args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    if done.returncode != 0:
        raise SystemExit(f"worker {args[:3]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


def _run_size(size: str, workdir: Path) -> dict:
    from pipelines.models import synthetic

    data = workdir / f"{size}.npz"
    _worker("--worker", "generate", "--size", size, "--data", str(data))
    ours = _worker(
        "--worker",
        "ours",
        "--size",
        size,
        "--data",
        str(data),
        "--out",
        str(workdir / f"{size}-ours.npy"),
        *(["--extras"] if size == "small" else []),
    )
    ref = _worker(
        "--worker",
        "reference",
        "--size",
        size,
        "--data",
        str(data),
        "--out",
        str(workdir / f"{size}-ref.npy"),
    )
    # The reference again with single-threaded BLAS: on a busy machine its BLAS threads spin,
    # which would flatter the ratio; the table compares against its faster configuration.
    ref1 = _worker(
        "--worker",
        "reference",
        "--size",
        size,
        "--data",
        str(data),
        "--out",
        str(workdir / f"{size}-ref1.npy"),
        env=ONE_THREAD,
    )
    ours_gamma = np.load(workdir / f"{size}-ours.npy")
    ref_gamma = np.load(workdir / f"{size}-ref.npy")
    truth = _load(data)["gamma"]
    return {
        "ours": ours,
        "ref": min(ref, ref1, key=lambda run: run["seconds"]),
        "ref_threads": (ref["seconds"], ref1["seconds"]),
        "max_dgamma": float(np.abs(ours_gamma - ref_gamma).max()),
        "projection_r2": synthetic.projection_r2(ours_gamma, truth),
        "input_mb": (data.stat().st_size) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=[*SIZES, "all"], default="all")
    parser.add_argument("--worker", choices=["generate", "ours", "reference"], help="internal")
    parser.add_argument("--data", type=Path, help="internal")
    parser.add_argument("--out", type=Path, help="internal")
    parser.add_argument("--extras", action="store_true", help="internal")
    args = parser.parse_args()
    if args.worker == "generate":
        _generate(args.size, args.data)
        return
    if args.worker == "ours":
        print(json.dumps(_ours(args.size, args.data, args.out, args.extras)))
        return
    if args.worker == "reference":
        print(json.dumps(_reference(args.size, args.data, args.out)))
        return

    sizes = list(SIZES) if args.size == "all" else [args.size]
    print(
        f"{'N':>5} {'T':>4} {'L':>3} {'K':>2} {'ours s':>8} {'ipca s':>8} {'ratio':>6} "
        f"{'ours cpu':>8} {'ipca cpu':>8} {'ratio':>6} "
        f"{'ours MB':>8} {'ipca MB':>8} {'input MB':>8} {'max |dΓ|':>9} {'proj R²':>8}"
    )
    extras = None
    with tempfile.TemporaryDirectory(prefix="bench_ipca_") as tmp:
        for size in sizes:
            n, t, l_chars, k = SIZES[size]
            row = _run_size(size, Path(tmp))
            ours, ref = row["ours"], row["ref"]
            print(
                f"{n:>5} {t:>4} {l_chars:>3} {k:>2} {ours['seconds']:>8.3f} "
                f"{ref['seconds']:>8.2f} {ref['seconds'] / ours['seconds']:>5.0f}x "
                f"{ours['cpu']:>8.3f} {ref['cpu']:>8.2f} {ref['cpu'] / ours['cpu']:>5.0f}x "
                f"{ours['peak_mb']:>8,.0f} {ref['peak_mb']:>8,.0f} {row['input_mb']:>8,.0f} "
                f"{row['max_dgamma']:>9.1e} {row['projection_r2']:>8.4f}",
                flush=True,
            )
            default, single = row["ref_threads"]
            print(
                f"      reference wall time with default BLAS threads {default:.2f} s, "
                f"with one {single:.2f} s (the table uses the faster)",
                flush=True,
            )
            if "bootstrap_s" in ours:
                extras = ours
    if extras is not None:
        print(
            f"bootstrap W_alpha, 1,000 draws, 2 workers (N=1000, T=240, L=20, K=3): "
            f"{extras['bootstrap_s']:.1f} s, p = {extras['bootstrap_p']:.3f}"
        )
        print(
            f"out-of-sample refits, one per period for periods 120-239 "
            f"(120 warm-started fits): {extras['oos_s']:.1f} s"
        )
    print(
        "s: wall clock; cpu: CPU time of the process, all threads (less sensitive to other "
        "load on the machine); peak MB: max RSS of the process that loaded the input and ran "
        "that one fit; input MB: the saved panel (z, r, codes)"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
