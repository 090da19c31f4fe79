"""Per-target-alpha ridge: cortexscale against himalaya and scikit-learn, in one run.

Data: 768 base features with FIR delays 1-4 (3072 columns), 10000 targets,
500 test samples, 10 alphas, 5 contiguous folds, n_train in {3000, 10000}.
Two designs (``--design``): "random" (independent Gaussian features, alphas
10^1..10^4) and "collinear" (cumulative sums of Gaussian noise, z-scored: smooth,
strongly autocorrelated features whose kernel spectrum spans many decades, alphas
10^0..10^6), the shape on which low-precision alpha selection goes wrong.
Every contender runs in its own subprocess on identical data and folds, so
wall time and peak resident memory are measured cleanly.

    python benchmarks/ridge_bench.py                 # both shapes, all contenders
    python benchmarks/ridge_bench.py --n-train 3000 --contenders ours himalaya_kernel_torch
    python benchmarks/ridge_bench.py --design collinear --n-train 3000   # the tie-prone design only
    python benchmarks/ridge_bench.py --device cuda   # torch contenders on the GPU (ours torch_cuda)

Prints wall time, peak memory, the ratio against the fastest himalaya contender,
the worst and mean |delta r| of test correlations against a float64 fit (``ours_f64``;
our fp32 run where it is left out), the share of targets choosing the same alpha,
how close the float64 cross-validation scores come to a tie, and our achieved
GEMM GFLOP/s against this machine's measured float32 GEMM rate. Results are
also written as JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from _results import run_worker, write_results

DEVICE_ENV = "RIDGE_BENCH_DEVICE"
N_BASE, DELAYS, N_TARGETS, N_TEST, N_ALPHAS, N_FOLDS = 768, (1, 2, 3, 4), 10000, 500, 10, 5
DESIGN_ALPHAS = {"random": np.logspace(1, 4, N_ALPHAS), "collinear": np.logspace(0, 6, N_ALPHAS)}
MODES = {
    "ours": {},  # the defaults: select_precision="auto"
    "ours_exact": {"select_precision": "fp32"},
    "ours_f64": {"dtype": "fp64"},
    "ours_screened": {"select_precision": "bf16"},
    "ours_fast": {"alpha_search": "coarse_to_fine", "select_precision": "bf16"},
}

CONTENDERS = [
    "ours",
    "ours_exact",
    "ours_f64",
    "ours_screened",
    "ours_fast",
    "himalaya_kernel_torch",
    "himalaya_kernel_numpy",
    "himalaya_ridge_torch",
    "himalaya_ridge_numpy",
    "sklearn",
]


def make_data(n_train: int, n_targets: int, design: str = "random", seed: int = 0):
    """Undelayed features (n, 768), delayed design (n, 3072), responses (n, t); train then test rows."""
    from cortexscale.encoding import delay_features

    rng = np.random.default_rng(seed)
    n = n_train + N_TEST
    X0 = rng.standard_normal((n, N_BASE))
    if design == "collinear":
        X0 = np.cumsum(X0, axis=0)
        X0 = (X0 - X0.mean(0)) / X0.std(0)
    X0 = X0.astype(np.float32)
    Xd = delay_features(X0, DELAYS, run_lengths=[n_train, N_TEST]).astype(np.float32)
    W = rng.standard_normal((Xd.shape[1], n_targets)).astype(np.float32) / np.sqrt(Xd.shape[1])
    snr = rng.uniform(0.0, 0.6, n_targets).astype(np.float32)
    Y = (Xd @ W) * snr + rng.standard_normal((n, n_targets)).astype(np.float32)
    return X0, Xd, Y


def _splits(n_train: int):
    from cortexscale.encoding import check_cv

    return check_cv(N_FOLDS, n_train)


def _test_r(Y_test, pred):
    a = Y_test - Y_test.mean(0)
    b = pred - pred.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def _top_gaps(cv_scores: np.ndarray) -> list[float]:
    """Per target, the gap between its best and second-best cross-validation score over alphas,
    relative to its largest |score|: how near the alpha choice is to a tie."""
    s = np.sort(np.nan_to_num(cv_scores, nan=-np.inf), axis=0)
    scale = np.nanmax(np.abs(cv_scores), axis=0) + 1e-30
    return ((s[-1] - s[-2]) / scale).tolist()


def run_contender(name: str, data_file: str, out_file: str) -> None:
    """Fit one contender on the saved data; write timing, memory, alphas and test r."""
    d = np.load(data_file)
    X0, Xd, Y, n_train, alphas = d["X0"], d["Xd"], d["Y"], int(d["n_train"]), d["alphas"]
    splits = _splits(n_train)
    tr, te = slice(0, n_train), slice(n_train, None)
    cuda = os.environ.get(DEVICE_ENV, "cpu") == "cuda"
    import torch  # noqa: F401  (imported before the clock starts, for every contender alike)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    extra = {}
    if name.startswith("ours"):
        from cortexscale.encoding import RidgeCV

        if name not in MODES:
            raise ValueError(f"unknown contender {name!r}; choose from {CONTENDERS}")
        model = RidgeCV(alphas=alphas, cv=splits, scoring="neg_mse", fit_intercept=False, delays=DELAYS,
                        backend="torch_cuda" if cuda else "torch", **MODES[name])
        model.fit(X0[tr], Y[tr])
        pred = model.predict(X0[te])
        best = model.alpha_
        extra = {"method": model.method_, "n_evaluated": int(np.sum(~np.isnan(model.cv_scores_))),
                 "n_rescored": int(getattr(model, "n_rescored_", 0)), "top_gap": _top_gaps(model.cv_scores_)}
    elif name.startswith("himalaya"):
        from himalaya.backend import set_backend
        from himalaya.kernel_ridge import KernelRidgeCV
        from himalaya.ridge import RidgeCV as HRidgeCV

        torch_backend = "torch_cuda" if cuda else "torch"
        backend = set_backend(torch_backend if name.endswith("torch") else "numpy", on_error="raise")
        Est = KernelRidgeCV if "kernel" in name else HRidgeCV
        model = Est(alphas=alphas, cv=splits, fit_intercept=False)
        model.fit(Xd[tr], Y[tr])
        pred = np.asarray(backend.to_numpy(model.predict(Xd[te])))
        best = np.asarray(backend.to_numpy(model.best_alphas_))
    elif name == "sklearn":
        from sklearn.linear_model import RidgeCV as SKRidgeCV

        model = SKRidgeCV(alphas=alphas, alpha_per_target=True, fit_intercept=False)
        model.fit(Xd[tr], Y[tr])
        pred = model.predict(Xd[te])
        best = model.alpha_
    else:
        raise ValueError(f"unknown contender {name!r}; choose from {CONTENDERS}")
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if cuda:
        extra["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    gaps = extra.pop("top_gap", None)
    np.savez(out_file, r=_test_r(Y[te], pred), alpha=np.asarray(best, dtype=np.float64),
             top_gap=np.asarray(gaps if gaps is not None else [], dtype=np.float64))
    Path(out_file + ".json").write_text(json.dumps(
        {"wall_s": wall, "peak_mb": peak_kb / 1024, "data_mb": rss_before / 1024, **extra}))


def gemm_rate(n: int = 3000, k: int = 3000, m: int = 10000, device: str = "cpu") -> float:
    """Measured float32 torch GEMM rate on ``device``, GFLOP/s (best of 3)."""
    import torch

    a, b = torch.randn(n, k, device=device), torch.randn(k, m, device=device)
    a @ b
    best = np.inf
    for _ in range(3):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n * k * m / best / 1e9


def our_gemm_flops(n: int, n_targets: int, n_evaluated: int, method: str) -> float:
    """Matrix-product FLOPs of our run (eigendecompositions excluded)."""
    p0, p = N_BASE, N_BASE * len(DELAYS)
    n_val = n / N_FOLDS
    if method == "dual":
        kernel = 2 * n * n * p0
        projections = 2 * n * n * n_targets
        operators = N_ALPHAS * N_FOLDS * 4 * n_val * n_val * n
        evaluations = 2 * n * n * n_evaluated
        refit = 2 * n * n * n_targets
        test = 2 * N_TEST * n * p0 + 2 * N_TEST * n * n_targets
        return kernel + projections + operators + evaluations + refit + test
    gram = 2 * n * p * p + N_FOLDS * 2 * n_val * p * p
    cross = 2 * n * p * n_targets + N_FOLDS * (2 * n_val * p * n_targets + 2 * p * p * n_targets)
    evaluations = 2 * n_val * p * n_evaluated * N_FOLDS
    refit = 4 * p * p * n_targets
    return gram + cross + evaluations + refit + 2 * N_TEST * p * n_targets


def bench_shape(n_train: int, contenders, n_targets: int, design: str, workdir: Path) -> dict:
    X0, Xd, Y = make_data(n_train, n_targets, design)
    data_file = str(workdir / f"data_{design}_{n_train}.npz")
    np.savez(data_file, X0=X0, Xd=Xd, Y=Y, n_train=n_train, alphas=DESIGN_ALPHAS[design])
    results = {}
    for name in contenders:
        out = str(workdir / f"{name}_{design}_{n_train}.npz")
        print(f"[{design}, n_train={n_train}] {name} ...", flush=True)
        results[name] = run_worker(__file__, name, data_file, out, ("r", "alpha", "top_gap"))
    return results


def report(n_train: int, design: str, results: dict, rate: float, n_targets: int) -> dict:
    ok = {k: v for k, v in results.items() if "error" not in v}
    hims = {k: v for k, v in ok.items() if k.startswith("himalaya")}
    fastest = min(hims, key=lambda k: hims[k]["wall_s"]) if hims else None
    ref_name = "ours_f64" if "ours_f64" in ok else "ours"
    ref = ok.get(ref_name)
    rows = []
    print(f"\n== {design} design, n_train = {n_train}, p = {N_BASE * len(DELAYS)}, t = {n_targets}, "
          f"{N_ALPHAS} alphas, {N_FOLDS} folds; |dr| and alphas against {ref_name} ==")
    print(f"{'contender':24s} {'wall s':>8s} {'peak MB':>8s} {'x fastest himalaya':>19s} "
          f"{'worst |dr|':>11s} {'mean |dr|':>10s} {'same alpha':>10s}")
    for name, v in ok.items():
        speedup = hims[fastest]["wall_s"] / v["wall_s"] if fastest else float("nan")
        dr = np.abs(v["r"] - ref["r"]) if ref is not None else np.full(1, np.nan)
        same = float(np.mean(np.isclose(v["alpha"], ref["alpha"], rtol=1e-6))) if ref is not None else float("nan")
        worst, mean = float(np.nanmax(dr)), float(np.nanmean(dr))
        print(f"{name:24s} {v['wall_s']:8.1f} {v['peak_mb']:8.0f} {speedup:19.2f} {worst:11.2e} {mean:10.2e} "
              f"{same:10.4f}")
        rows.append({"contender": name, "wall_s": v["wall_s"], "peak_mb": v["peak_mb"], "speedup": speedup,
                     "worst_abs_dr": worst, "mean_abs_dr": mean, "same_alpha": same,
                     "mean_r": float(np.nanmean(v["r"])), "n_rescored": v.get("n_rescored", 0)})
    for name in ("ours", "ours_exact", "ours_screened", "ours_fast"):
        if name in ok and "method" in ok[name]:
            v = ok[name]
            flops = our_gemm_flops(n_train, n_targets, v["n_evaluated"], v["method"])
            print(f"{name}: method {v['method']}, {flops / 1e12:.2f} TFLOP of products, "
                  f"{flops / v['wall_s'] / 1e9:.0f} GFLOP/s achieved vs {rate:.0f} GFLOP/s float32 GEMM peak; "
                  f"{v['n_rescored']} of {N_ALPHAS * n_targets} scores redone exactly after screening")
    if ref is not None and ref["top_gap"].size:
        gap = ref["top_gap"]
        print(f"{ref_name}: best-vs-second cross-validation gap (relative to the score) < 1e-4 for "
              f"{np.mean(gap < 1e-4):.1%} of targets, < 1e-3 for {np.mean(gap < 1e-3):.1%}: a selection in a "
              f"precision coarser than that moves those targets' alphas")
    return {"n_train": n_train, "design": design, "fastest_himalaya": fastest, "reference": ref_name, "rows": rows}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, nargs="+", default=[3000, 10000])
    ap.add_argument("--targets", type=int, default=N_TARGETS)
    ap.add_argument("--design", nargs="+", choices=sorted(DESIGN_ALPHAS), default=["random", "collinear"])
    ap.add_argument("--contenders", nargs="+", default=None,
                    help="default: all at 3000; at 10000 himalaya's KernelRidgeCV (n x n kernels) is left out")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: our RidgeCV and himalaya's torch contenders run on the GPU")
    ap.add_argument("--worker", nargs=3, metavar=("NAME", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        run_contender(*args.worker)
        return
    os.environ[DEVICE_ENV] = args.device
    rate = gemm_rate(device=args.device)
    print(f"float32 GEMM rate on {args.device}: {rate:.0f} GFLOP/s; torch threads: "
          f"{__import__('torch').get_num_threads()}")
    summary = {"device": args.device, "gemm_gflops": rate, "shapes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for design in args.design:
            for n_train in args.n_train:
                contenders = args.contenders or [c for c in CONTENDERS if n_train < 10000 or "kernel" not in c]
                results = bench_shape(n_train, contenders, args.targets, design, Path(tmp))
                summary["shapes"].append(report(n_train, design, results, rate, args.targets))
    print()
    write_results("ridge_bench", summary)


if __name__ == "__main__":
    main()
