"""The Alice check: a cross-validated encoding model of the Alice group-average fMRI response.

Run with ``python -m cortexscale.alice_check`` (``make alice``; ``make demo`` runs the default study
instead). On the real Alice data
(Brennan et al. 2016) it

1. averages the 27 usable participants' ROI time courses, each participant
   z-scored per ROI over time first (within each outer fold, see below);
2. builds a design from two regressors, z-scored, with FIR delays of 1-4 TRs
   (:class:`~cortexscale.encoding.Delayer`): the unconvolved word rate
   (:attr:`AliceData.word_counts`, words per 2 s scan window counted from the
   TextGrid word onsets) and the shipped sound-power regressor averaged over
   participants. The release has no unconvolved sound power: that regressor
   is already convolved with a haemodynamic response, so its FIR delays lag
   twice, and on this data it lowers the cross-validated r a little rather
   than raising it; it is kept as the acoustic control. The shipped word-rate
   regressor is HRF-convolved too and is not used: under FIR delays 1-4 it
   underfits (its best delay is 0);
3. predicts each ROI with :class:`cortexscale.encoding.RidgeCV` (alphas
   ``logspace(1, 4, 15)``, inner 5-fold CV) under an outer contiguous 5-fold
   split (``KFold`` without shuffling) and scores the pooled predictions with
   Pearson r;
4. compares r with the noise ceiling of the group average, as
   :func:`cortexscale.encoding.noise_ceiling` defines it: ``reliability`` is the
   Spearman-Brown corrected split-half reliability across participants,
   ``ceiling`` its square root, the largest r a noiseless model can reach
   against the measured average, and ``normalised_r`` is ``r / ceiling``
   (:func:`cortexscale.encoding.normalised_correlation`).

The outer folds are treated like separate runs: responses and regressors are
z-scored within each fold and the delays do not cross fold edges. Without this,
slow scanner drift makes the training mean of every fold anti-correlate with
the held-out fold's mean, which drags the pooled r of a weak model below zero.

The table is printed and written to ``<out>/table.csv`` and ``<out>/report.md``,
with a bar chart ``<out>/r_by_roi.png`` when matplotlib (the ``report`` extra) is installed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, cross_val_predict

from ._io import atomic_path, write_atomic
from ._warnings import recorded_warnings
from .data.alice import AliceData, load_alice
from .encoding.ceilings import NoiseCeiling, noise_ceiling, normalised_correlation
from .encoding.delays import Delayer
from .encoding.metrics import correlation_score
from .encoding.preprocessing import zscore_runs
from .encoding.ridge import RidgeCV

__all__ = ["main", "run_alice_check"]

ALPHAS = np.logspace(1, 4, 15)
DELAYS = (1, 2, 3, 4)
N_FOLDS = 5
INNER_FOLDS = 5
N_SPLITS = 200
DEFAULT_OUT = Path("reports") / "alice"
COLUMNS = ["roi", "r", "reliability", "ceiling", "normalised_r"]


def fold_lengths(n_samples: int, n_folds: int = N_FOLDS) -> np.ndarray:
    """Sizes (n_folds,) of the contiguous test folds of ``KFold(n_folds)``, in order."""
    return np.array([len(test) for _, test in KFold(n_folds).split(np.zeros((n_samples, 1)))])


def subject_responses(data: AliceData, folds: np.ndarray) -> np.ndarray:
    """Every participant's ROI time courses z-scored within each fold, (n_subjects, n_samples, n_rois)."""
    return np.stack([zscore_runs(subject, folds) for subject in data.responses])


def stimulus_design(data: AliceData, delays, folds: np.ndarray) -> np.ndarray:
    """Delayed word counts and mean sound power, (n_samples, 2 * n_delays), delay-major columns."""
    regressors = np.column_stack([data.word_counts, data.sound_power_hrf.mean(axis=0)])
    return Delayer(delays=delays, run_lengths=folds).fit_transform(zscore_runs(regressors, folds))


def cross_validated_r(X: np.ndarray, Y: np.ndarray, n_folds: int = N_FOLDS) -> np.ndarray:
    """Pearson r (n_targets,) of out-of-fold ridge predictions of ``Y`` (n_samples, n_targets)."""
    model = RidgeCV(alphas=ALPHAS, cv=INNER_FOLDS)
    prediction = cross_val_predict(model, X, Y, cv=KFold(n_folds))
    return correlation_score(Y, prediction)


def _captured(func, *args, **kwargs):
    """``func(*args, **kwargs)`` and the distinct messages of the warnings it raised, with counts."""
    with recorded_warnings() as messages:
        result = func(*args, **kwargs)
    return result, messages


def score_table(rois, r: np.ndarray, ceiling: NoiseCeiling) -> pd.DataFrame:
    """One row per ROI with columns ``COLUMNS``: r (n_rois,), the ceiling's ``reliability`` and ``ceiling``
    (its square root), and ``normalised_r = r / ceiling`` (NaN where the ceiling is 0)."""
    columns = {"roi": list(rois), "r": r, "reliability": ceiling.reliability, "ceiling": ceiling.ceiling,
               "normalised_r": normalised_correlation(r, ceiling.ceiling)}
    return pd.DataFrame(columns, columns=COLUMNS)


def with_mean(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` plus a final ``mean`` row averaging every numeric column over ROIs."""
    mean = table.drop(columns="roi").mean().to_frame().T
    mean.insert(0, "roi", "mean")
    return pd.concat([table, mean], ignore_index=True)


def format_table(table: pd.DataFrame) -> str:
    """Fixed-width text of ``table`` (with its mean row), three decimals."""
    header = f"{'ROI':<6} {'r':>7} {'reliability':>11} {'ceiling':>8} {'r/ceiling':>9}"
    lines = [header, "-" * len(header)]
    for row in with_mean(table).itertuples(index=False):
        if row.roi == "mean":
            lines.append("-" * len(header))
        lines.append(
            f"{row.roi:<6} {row.r:>7.3f} {row.reliability:>11.3f} {row.ceiling:>8.3f} {row.normalised_r:>9.3f}"
        )
    return "\n".join(lines)


def _markdown_table(table: pd.DataFrame) -> str:
    rows = ["| ROI | r | reliability | ceiling | r / ceiling |", "|---|---:|---:|---:|---:|"]
    for row in with_mean(table).itertuples(index=False):
        name = f"**{row.roi}**" if row.roi == "mean" else row.roi
        rows.append(
            f"| {name} | {row.r:.3f} | {row.reliability:.3f} | {row.ceiling:.3f} | {row.normalised_r:.3f} |"
        )
    return "\n".join(rows)


def plot_table(table: pd.DataFrame, path: Path) -> bool:
    """Bar chart of r per ROI beside its ceiling, written atomically to ``path`` (PNG).

    Returns False, writing nothing, when matplotlib (the ``report`` extra) is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(6.4, 3.9), layout="constrained")
    ax.bar(x - 0.2, table["r"], width=0.4, label="model r (cross-validated)", color="#3b6ea8")
    ax.bar(x + 0.2, table["ceiling"], width=0.4, label="noise ceiling (largest reachable r)", color="#c9c9c9")
    ax.scatter(x + 0.2, table["reliability"], marker="_", s=300, color="#444444", label="split-half reliability")
    ax.set_xticks(x, table["roi"])
    ax.set_ylabel("Pearson r")
    ax.set_ylim(min(0.0, float(table["r"].min()) - 0.05), 1.0)
    ax.set_title("Alice group average: word rate + sound power, FIR delays")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=8, frameon=False)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)
    return True


def _describe(data: AliceData, delays, folds, n_splits: int) -> str:
    return (
        f"Alice group average of {data.n_subjects} participants ({data.resolution} ROIs, {len(folds)} contiguous "
        f"folds of {folds.min()}-{folds.max()} TRs). Predictors: word count per scan (unconvolved, from the "
        f"TextGrid) + sound power (as shipped, HRF-convolved; no unconvolved version exists), FIR delays "
        f"{list(delays)} TRs; ridge alphas logspace(1, 4, 15) chosen per ROI by inner {INNER_FOLDS}-fold CV. "
        f"Ceiling: square root of the Spearman-Brown corrected split-half reliability of the average "
        f"({n_splits} splits)."
    )


def _report(table: pd.DataFrame, description: str, notes: list[str], seconds: float, plotted: bool = False) -> str:
    lines = [
        "# cortexscale Alice check: encoding the Alice group average",
        "",
        description,
        "",
        _markdown_table(table),
        "",
        *(["![r per ROI beside its ceiling](r_by_roi.png)", ""] if plotted else []),
        "r: Pearson correlation of the out-of-fold predictions with the group average. "
        "reliability: Spearman-Brown corrected split-half reliability of the group average. "
        "ceiling: its square root, the largest r a noiseless model can reach against the measured average. "
        "r / ceiling: the ceiling-normalised correlation.",
        "",
        "Data: Brennan, Stabler, Van Wagenen, Luh & Hale (2016), Brain & Language 157-158, 81-94 (CC BY 4.0).",
    ]
    if notes:
        lines += ["", "Notes:", *[f"- {note}" for note in notes]]
    lines += ["", f"Run time: {seconds:.1f} s.", ""]
    return "\n".join(lines)


def run_alice_check(
    out_dir=DEFAULT_OUT, resolution: str = "6mm", root=None, delays=DELAYS, n_folds: int = N_FOLDS,
    n_splits: int = N_SPLITS, verbose: bool = True,
) -> pd.DataFrame:
    """Fit and score the Alice check's model; write ``table.csv`` and ``report.md`` under ``out_dir``.

    Returns
    -------
    DataFrame with one row per ROI (6) and columns ``roi, r, reliability, ceiling, normalised_r``.
    """
    start = time.perf_counter()
    data, notes = _captured(load_alice, resolution=resolution, root=root)
    folds = fold_lengths(data.responses.shape[1], n_folds)
    subjects = subject_responses(data, folds)
    group = zscore_runs(subjects.mean(axis=0), folds)
    r, fit_notes = _captured(cross_validated_r, stimulus_design(data, delays, folds), group, n_folds)
    notes += [f"ridge: {note}" for note in fit_notes]
    ceiling = noise_ceiling(subjects, method="split_half", n_splits=n_splits, random_state=0)
    table = score_table(data.rois, r, ceiling)
    seconds = time.perf_counter() - start
    description = _describe(data, delays, folds, n_splits)
    out_dir = Path(out_dir)
    write_atomic(out_dir / "table.csv", with_mean(table).to_csv(index=False, float_format="%.6f"))
    plotted = plot_table(table, out_dir / "r_by_roi.png")
    if plotted:
        notes.append("plot: r_by_roi.png")
    write_atomic(out_dir / "report.md", _report(table, description, notes, seconds, plotted))
    if verbose:
        print(description, *[f"note: {n}" for n in notes], "", format_table(table), "", sep="\n")
        print(f"wrote {out_dir / 'table.csv'} and {out_dir / 'report.md'} ({seconds:.1f} s)")
    return table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cortexscale.alice_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: reports/alice)")
    parser.add_argument("--resolution", choices=("6mm", "10mm"), default="6mm", help="ROI radius")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="data root holding alice/ (default: $CORTEXSCALE_DATA)"
    )
    parser.add_argument("--delays", type=int, nargs="+", default=list(DELAYS), help="FIR delays in TRs")
    return parser


def main(argv=None) -> pd.DataFrame:
    """Command-line entry point; returns the per-ROI table."""
    args = _parser().parse_args(argv)
    return run_alice_check(out_dir=args.out, resolution=args.resolution, root=args.data_root, delays=args.delays)


if __name__ == "__main__":
    main()
