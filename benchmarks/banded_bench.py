"""Banded ridge: cortexscale's BandedRidgeCV against himalaya's MultipleKernelRidgeCV random search, in one run.

Cases (``--cases``):
  two:   bands of 1024 + 256 Gaussian features
  three: bands of 512 + 256 + 128 features, the third smooth (cumulative sums, z-scored)
Both: n_train 2000, 400 test samples, 4000 targets, 5 contiguous folds, 10 alphas
(10^0..10^5), the same ratio candidates for both contenders (the simplex corners, its
centre, then Dirichlet draws; 20 by default), ``neg_mse`` selection and no intercept,
the setting in which the two choose identical penalties. Each target draws its own
band weights, so different targets prefer different ratios.

    python benchmarks/banded_bench.py
    python benchmarks/banded_bench.py --cases two --candidates 20 --targets 4000

Contenders: ``ours`` (BandedRidgeCV, exact float32 scores), ``ours_screened`` (the same with
``select_precision="bf16"``), ``ours_warm`` (``alpha_search="warm_start"``: each candidate's alphas
walked from the nearest earlier candidate's choice) and ``himalaya_torch`` (MultipleKernelRidgeCV, solver
"random_search", on precomputed linear kernels; building the kernels is timed).

Every contender runs in its own subprocess on identical data; printed: wall time,
peak resident memory, the ratio against himalaya, the mean test r, the worst and
mean |delta r| against ours, the share of targets choosing the same ratio and alpha, and the share of
(candidate, alpha, target) scores computed.
Results are also written as JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from _results import run_worker, write_results

CASES = {"two": (1024, 256), "three": (512, 256, 128)}
N_TRAIN, N_TEST, N_FOLDS = 2000, 400, 5
ALPHAS = np.logspace(0, 5, 10)
CONTENDERS = ["ours", "ours_screened", "ours_warm", "himalaya_torch"]
OUR_SEARCH = {"ours": ("fp32", "grid"), "ours_screened": ("bf16", "grid"), "ours_warm": ("fp32", "warm_start")}


def make_data(sizes, n_targets: int, seed: int = 0):
    """Features (n, sum(sizes)) band after band, responses (n, t); train rows then test rows."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    blocks = []
    for b, size in enumerate(sizes):
        X = rng.standard_normal((n, size))
        if b == 2:
            X = np.cumsum(X, axis=0)
            X = (X - X.mean(0)) / X.std(0)
        blocks.append(X)
    mix = rng.dirichlet(np.full(len(sizes), 0.5), n_targets).T
    signal = sum(X @ rng.standard_normal((X.shape[1], n_targets)) / np.sqrt(X.shape[1]) * np.sqrt(w)
                 for X, w in zip(blocks, mix))
    snr = rng.uniform(0.1, 0.8, n_targets)
    Y = signal * snr + rng.standard_normal((n, n_targets))
    return np.hstack(blocks).astype(np.float32), Y.astype(np.float32)


def _test_r(Y_test, pred):
    a = Y_test - Y_test.mean(0)
    b = pred - pred.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def run_contender(name: str, data_file: str, out_file: str) -> None:
    """Fit one contender on the saved data; write timing, memory, choices and test r."""
    from cortexscale.encoding import check_cv

    d = np.load(data_file)
    X, Y, sizes, gammas = d["X"], d["Y"], [int(s) for s in d["sizes"]], d["gammas"]
    splits = check_cv(N_FOLDS, N_TRAIN)
    tr, te = slice(0, N_TRAIN), slice(N_TRAIN, None)
    import torch  # noqa: F401  (imported before the clock starts, for both contenders)

    t0 = time.perf_counter()
    if name.startswith("ours"):
        from cortexscale.encoding import BandedRidgeCV

        select, search = OUR_SEARCH[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = BandedRidgeCV(bands=sizes, grid=gammas, alphas=ALPHAS, cv=splits, scoring="neg_mse",
                                  fit_intercept=False, backend="torch", select_precision=select,
                                  alpha_search=search, progress=False).fit(X[tr], Y[tr])
        pred, deltas = model.predict(X[te]), model.deltas_
        scored = model.n_scored_ / (len(gammas) * len(ALPHAS) * Y.shape[1])
    elif name == "himalaya_torch":
        from himalaya.backend import set_backend
        from himalaya.kernel_ridge import MultipleKernelRidgeCV

        backend = set_backend("torch", on_error="raise")
        edges = np.r_[0, np.cumsum(sizes)]
        bands = [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]
        Ks = np.stack([X[tr, s] @ X[tr, s].T for s in bands])
        Ks_test = np.stack([X[te, s] @ X[tr, s].T for s in bands])
        params = dict(n_iter=gammas, alphas=ALPHAS, progress_bar=False)
        model = MultipleKernelRidgeCV(kernels="precomputed", solver="random_search", solver_params=params,
                                      cv=splits, fit_intercept=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model.fit(Ks, Y[tr])
        pred = np.asarray(backend.to_numpy(model.predict(Ks_test)))
        deltas = np.asarray(backend.to_numpy(model.deltas_))
        scored = 1.0
    else:
        raise ValueError(f"unknown contender {name!r}; choose from {CONTENDERS}")
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.savez(out_file, r=_test_r(Y[te], pred), deltas=np.asarray(deltas, dtype=np.float64))
    Path(out_file + ".json").write_text(json.dumps({"wall_s": wall, "peak_mb": peak_kb / 1024, "scored": scored}))


def bench_case(case: str, n_targets: int, n_candidates: int, workdir: Path) -> dict:
    from cortexscale.encoding import band_ratio_candidates

    sizes = CASES[case]
    X, Y = make_data(sizes, n_targets)
    gammas = band_ratio_candidates(len(sizes), n_candidates, random_state=0)
    data_file = str(workdir / f"data_{case}.npz")
    np.savez(data_file, X=X, Y=Y, sizes=np.asarray(sizes), gammas=gammas)
    results = {}
    for name in CONTENDERS:
        out = str(workdir / f"{name}_{case}.npz")
        print(f"[{case} bands] {name} ...", flush=True)
        results[name] = run_worker(__file__, name, data_file, out, ("r", "deltas"))
    return report(case, sizes, len(gammas), n_targets, results)


def report(case, sizes, n_candidates, n_targets, results) -> dict:
    ok = {k: v for k, v in results.items() if "error" not in v}
    ours, him = ok.get("ours"), ok.get("himalaya_torch")
    print(f"\n== {case} bands {list(sizes)}, n_train {N_TRAIN}, {n_targets} targets, {n_candidates} candidates, "
          f"{len(ALPHAS)} alphas, {N_FOLDS} folds ==")
    print(f"{'contender':18s} {'wall s':>8s} {'peak MB':>8s} {'x himalaya':>10s} {'mean r':>8s} "
          f"{'worst |dr|':>11s} {'mean |dr|':>10s} {'same choice':>11s} {'scored':>7s}")
    rows = []
    for name, v in ok.items():
        speedup = him["wall_s"] / v["wall_s"] if him else float("nan")
        dr = np.abs(v["r"] - ours["r"]) if ours else np.full(1, np.nan)
        same = float(np.mean(np.all(np.isclose(v["deltas"], ours["deltas"], rtol=1e-5), axis=0))) if ours else np.nan
        row = {"contender": name, "wall_s": v["wall_s"], "peak_mb": v["peak_mb"], "speedup": speedup,
               "mean_r": float(np.nanmean(v["r"])), "worst_abs_dr": float(np.nanmax(dr)),
               "mean_abs_dr": float(np.nanmean(dr)), "same_choice": same, "scored": v["scored"]}
        print(f"{name:18s} {v['wall_s']:8.1f} {v['peak_mb']:8.0f} {speedup:10.2f} {row['mean_r']:8.4f} "
              f"{row['worst_abs_dr']:11.2e} {row['mean_abs_dr']:10.2e} {same:11.4f} {v['scored']:7.2f}")
        rows.append(row)
    return {"case": case, "sizes": list(sizes), "n_candidates": n_candidates, "n_targets": n_targets, "rows": rows}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["two", "three"])
    ap.add_argument("--targets", type=int, default=4000)
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--worker", nargs=3, metavar=("NAME", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        run_contender(*args.worker)
        return
    with tempfile.TemporaryDirectory() as tmp:
        summary = {"cases": [bench_case(c, args.targets, args.candidates, Path(tmp)) for c in args.cases]}
    print()
    write_results("banded_bench", summary)


if __name__ == "__main__":
    main()
