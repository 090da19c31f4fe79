"""Bootstrap speed of the joint scaling law, and whether its shortcuts find the same optimum.

Goal (issue 11): the full bootstrap (1000 resamples, each refitted from the start grid) of a joint fit on 500
points in under 60 s on 2 cores.

Data: a 20 x 25 grid of (N, D) from ``make_scaling_table`` (one row per point, noise 0.005 on the score).
Shortcuts checked, on the same data:

* the full-data fit refines the 16 best-screened of the 576 grid starts; the reference refines all 576;
* each resample refines its best-screened start and the full-data optimum (warm start); the reference
  refines its 16 best-screened starts without the warm start. Agreement: the shortcut's summed loss is at
  most the reference's (relative tolerance 1e-6).

    python benchmarks/scaling_bench.py                 # 1000 resamples, 40 checked against the reference
    python benchmarks/scaling_bench.py --n-boot 200 --n-check 10
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from _results import write_results

from cortexscale.scaling import fit_law, make_scaling_table
from cortexscale.scaling import _fits
from cortexscale.scaling._resample import resampled_rows
from cortexscale.scaling._tables import build_panel
from cortexscale.scaling.laws import _misalignment_logs, _Problem

TRUTH = {"E": 0.6, "A": 6.3, "alpha": 0.3, "B": 15.0, "beta": 0.5}


def make_points(seed: int = 0):
    """500 points, one row each, from the known joint law."""
    table = make_scaling_table(np.logspace(5, 9, 20), np.logspace(4, 8, 25), subjects=1, targets=1, noise=0.005,
                               subject_sd=0.0, target_sd=0.0, seed=seed, **TRUTH)
    return table.drop(columns=["subject", "target"])


def full_fit_check(problem: _Problem) -> dict:
    """Screened (16 of 576 starts) against exhaustive (all 576) refinement of the full-data fit."""
    y, w = _misalignment_logs(problem.scores), np.ones_like(problem.scores)
    out = {}
    for name, n_refine in (("screened", 16), ("exhaustive", None)):
        start = time.perf_counter()
        out[name] = _fits.fit_lse(problem.x, y, w, n_refine=n_refine)
        out[f"{name}_s"] = time.perf_counter() - start
    return {"screened_loss": out["screened"].loss, "exhaustive_loss": out["exhaustive"].loss,
            "screened_s": out["screened_s"], "exhaustive_s": out["exhaustive_s"],
            "same": bool(out["screened"].loss <= out["exhaustive"].loss * (1 + 1e-6))}


def resample_check(problem: _Problem, raw: np.ndarray, n_check: int, seed: int) -> dict:
    """Warm start + best screened start against 16 screened starts, on the first ``n_check`` resamples."""
    warm = _fits.theta_from_raw(raw, problem.centres)
    scores, weights = next(resampled_rows(problem.panel, n_check, np.random.default_rng(seed), "rows"))
    agree, gaps = 0, []
    for b in range(n_check):
        keep = weights[:, b] > 0
        x, y, w = problem.x[:, keep], _misalignment_logs(scores[keep, b]), weights[keep, b]
        shortcut = _fits.fit_lse(x, y, w, n_refine=1, warm=warm)
        reference = _fits.fit_lse(x, y, w, n_refine=16)
        agree += shortcut.loss <= reference.loss * (1 + 1e-6)
        gaps.append((shortcut.loss - reference.loss) / reference.loss)
    return {"n_check": n_check, "agree": int(agree), "worst_relative_gap": float(max(gaps))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--n-check", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    table = make_points()
    start = time.perf_counter()
    fit = fit_law(table, score="r", params="params", data="train_data", law="joint", n_boot=args.n_boot,
                  seed=args.seed)
    seconds = time.perf_counter() - start
    print(f"joint fit + {args.n_boot} resamples on {fit.n_points} points: {seconds:.1f} s "
          f"(goal < 60 s; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
    print(fit.summary())

    panel = build_panel(table, "r", ["params", "train_data"])
    problem = _Problem("joint", panel, {"params": "params", "data": "train_data"}, "r")
    raw = np.array(list(fit.params.values()))
    with _fits.single_threaded_blas():
        full = full_fit_check(problem)
        resamples = resample_check(problem, raw, args.n_check, args.seed)
    print(f"full fit: 16 screened starts {full['screened_s']:.2f} s, loss {full['screened_loss']:.8g}; "
          f"all 576 {full['exhaustive_s']:.2f} s, loss {full['exhaustive_loss']:.8g}; same optimum: {full['same']}")
    print(f"resamples: warm + 1 screened start reaches the 16-start optimum in {resamples['agree']} of "
          f"{resamples['n_check']} (worst relative loss gap {resamples['worst_relative_gap']:.2e})")
    write_results("scaling_bench", {
        "n_points": fit.n_points, "n_boot": args.n_boot, "seconds": seconds, "goal_seconds": 60,
        "cpus": os.cpu_count(), "load": os.getloadavg()[0], "params": fit.params,
        "intervals": {k: list(v) for k, v in fit.intervals.items()}, "truth": TRUTH,
        "full_fit": full, "resamples": resamples,
    })


if __name__ == "__main__":
    main()
