"""Bootstrap speed of the joint scaling law, and whether its shortcuts find the same optimum.

Goals: the full bootstrap (1000 resamples, each refitted) of a joint fit of N and D on 500 points (issue 11),
and of the three-axis law over N, D and fMRI data M on 2000 points (issue 20), each in under 60 s on 2 cores.
The ``targets`` case times the per-target size law of a whole brain (``target_gains``: 100k targets x 8
subjects x 4 sizes, 1000 resamples of subjects) and its peak memory, and on that null data the share of targets
whose interval excludes zero (nominal 5%).

Data (``--cases``): ``two``, a 20 x 25 grid of (N, D); ``three``, a 10 x 10 x 20 grid of (N, D, M); both from
``make_scaling_table``, one row per point, noise 0.005 on the score. Shortcuts checked, on the same data:

* the full-data fit refines the 16 best-screened of the grid's starts (576 for two axes, 6912 for three);
  the reference refines all of them (two axes) or the best 256 (three);
* each resample screens the 64 best starts of the full data, refines the best of them and the full-data
  optimum (warm start); the reference refines its own 16 best-screened starts of the whole grid without the
  warm start. Agreement: the shortcut's summed loss is at most the reference's (relative tolerance 1e-6).

    python benchmarks/scaling_bench.py                 # 1000 resamples, 40 checked against the reference
    python benchmarks/scaling_bench.py --n-boot 200 --n-check 10 --cases three
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from _results import write_results

from cortexscale.scaling import fit_law, make_scaling_table, target_gains
from cortexscale.scaling import _fits
from cortexscale.scaling._resample import resampled_rows
from cortexscale.scaling._tables import build_panel
from cortexscale.scaling.laws import _BOOT_STARTS, _misalignment_logs, _Problem

TRUTH = {"E": 0.6, "A": 6.3, "alpha": 0.3, "B": 15.0, "beta": 0.5}
FMRI_TRUTH = {"E": 0.45, "C": 3.0, "gamma": 0.4}
CASES = {
    "two": {"axes": {"params": "params", "data": "train_data"}, "grid": (20, 25, None)},
    "three": {"axes": {"params": "params", "data": "train_data", "fmri": "n_train_trs"}, "grid": (10, 10, 20)},
}


def make_points(case: str, seed: int = 0):
    """The case's grid of points, one row each, from its known law."""
    n, d, m = CASES[case]["grid"]
    truth = TRUTH if m is None else {**TRUTH, **FMRI_TRUTH}
    fmri = None if m is None else np.logspace(2, 3.5, m)
    table = make_scaling_table(np.logspace(5, 9, n), np.logspace(4, 8, d), fmri=fmri, subjects=1, targets=1,
                               noise=0.005, subject_sd=0.0, target_sd=0.0, seed=seed, **truth)
    return table.drop(columns=["subject", "target"]), truth


def full_fit_check(problem: _Problem) -> dict:
    """Screened (16 starts) against exhaustive refinement (every start of two axes, the best 256 of three)."""
    y, w = _misalignment_logs(problem.scores), np.ones_like(problem.scores)
    out = {}
    for name, n_refine in (("screened", 16), ("exhaustive", None if problem.x.shape[0] < 3 else 256)):
        start = time.perf_counter()
        out[name] = _fits.fit_lse(problem.x, y, w, n_refine=n_refine)
        out[f"{name}_s"] = time.perf_counter() - start
    return {"screened_loss": out["screened"].loss, "exhaustive_loss": out["exhaustive"].loss,
            "screened_s": out["screened_s"], "exhaustive_s": out["exhaustive_s"],
            "same": bool(out["screened"].loss <= out["exhaustive"].loss * (1 + 1e-6))}


def resample_check(problem: _Problem, raw: np.ndarray, n_check: int, seed: int) -> dict:
    """Warm start + the best of the full data's best starts against 16 screened starts of the whole grid, on
    the first ``n_check`` resamples."""
    warm = _fits.theta_from_raw(raw, problem.centres)
    y = _misalignment_logs(problem.scores)
    starts = _fits.best_starts(problem.x, y, np.ones_like(y), 1e-3, _BOOT_STARTS)
    scores, weights = next(resampled_rows(problem.panel, n_check, np.random.default_rng(seed), "rows"))
    agree, gaps = 0, []
    for b in range(n_check):
        keep = weights[:, b] > 0
        x, y, w = problem.x[:, keep], _misalignment_logs(scores[keep, b]), weights[keep, b]
        shortcut = _fits.fit_lse(x, y, w, n_refine=1, warm=warm, starts=starts)
        reference = _fits.fit_lse(x, y, w, n_refine=16)
        agree += shortcut.loss <= reference.loss * (1 + 1e-6)
        gaps.append((shortcut.loss - reference.loss) / reference.loss)
    return {"n_check": n_check, "agree": int(agree), "worst_relative_gap": float(max(gaps))}


def bench_case(case: str, n_boot: int, n_check: int, seed: int) -> dict:
    table, truth = make_points(case)
    axes = CASES[case]["axes"]
    start = time.perf_counter()
    fit = fit_law(table, score="r", law="joint", n_boot=n_boot, seed=seed, **axes)
    seconds = time.perf_counter() - start
    print(f"[{case} axes] joint fit + {n_boot} resamples on {fit.n_points} points: {seconds:.1f} s "
          f"(goal < 60 s; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
    print(fit.summary())

    panel = build_panel(table, "r", list(axes.values()))
    problem = _Problem("joint", panel, axes, "r")
    raw = np.array(list(fit.params.values()))
    with _fits.single_threaded_blas():
        full = full_fit_check(problem)
        resamples = resample_check(problem, raw, n_check, seed)
    print(f"full fit: 16 screened starts {full['screened_s']:.2f} s, loss {full['screened_loss']:.8g}; "
          f"reference {full['exhaustive_s']:.2f} s, loss {full['exhaustive_loss']:.8g}; same optimum: {full['same']}")
    print(f"resamples: warm + the best of {_BOOT_STARTS} full-data starts reaches the 16-start optimum in "
          f"{resamples['agree']} of {resamples['n_check']} (worst relative loss gap "
          f"{resamples['worst_relative_gap']:.2e})\n")
    return {"n_points": fit.n_points, "n_boot": n_boot, "seconds": seconds, "goal_seconds": 60,
            "params": fit.params, "intervals": {k: list(v) for k, v in fit.intervals.items()}, "truth": truth,
            "full_fit": full, "resamples": resamples}


def bench_targets(n_targets: int, n_boot: int, seed: int) -> dict:
    import resource

    import pandas as pd

    rng = np.random.default_rng(seed)
    table = pd.concat([pd.DataFrame({"subject": f"s{s}", "params": n, "target": np.arange(n_targets),
                                     "r": rng.normal(0.1, 0.05, n_targets).astype(np.float32)})
                       for s in range(8) for n in (1e6, 1e7, 1e8, 1e9)], ignore_index=True)
    start = time.perf_counter()
    gains = target_gains(table, n_boot=n_boot, seed=seed)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    null = float(gains["excludes_zero"].mean())
    print(f"[targets] per-target size law of {n_targets} targets x 8 subjects x 4 sizes, {n_boot} resamples: "
          f"{seconds:.1f} s, peak resident {peak:.2f} GB (the input table {table.memory_usage().sum() / 1e9:.2f} GB); "
          f"null targets whose interval excludes 0: {null:.1%} (nominal 5%)")
    return {"targets": n_targets, "seconds": seconds, "peak_gb": peak, "null_excluding_zero": null}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--n-check", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="+", choices=[*sorted(CASES), "targets"], default=[*CASES, "targets"])
    parser.add_argument("--targets", type=int, default=100_000, help="targets of the targets case")
    args = parser.parse_args()
    results = {case: bench_case(case, args.n_boot, args.n_check, args.seed) for case in args.cases if case in CASES}
    if "targets" in args.cases:
        results["targets"] = bench_targets(args.targets, args.n_boot, args.seed)
    write_results("scaling_bench", {"cpus": os.cpu_count(), "load": os.getloadavg()[0], **results})


if __name__ == "__main__":
    main()
