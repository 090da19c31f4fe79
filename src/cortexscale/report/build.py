"""The study report: one self-contained HTML page in ``<study>/report/index.html``.

It answers the study's question from its results table: how the brain score scales with model size, training
data and compute, where the compute-optimal frontier lies, and how each axis of the sweep moves the score,
each with bootstrap intervals over subjects and targets. The score of a feature model is its best layer's r
at each subject's largest fMRI training size (the layer is chosen on the same data, as Antonello et al. did).
Whatever cannot be fitted or drawn says why in its place; the rest of the page is still written.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import write_atomic
from . import figures
from .html import Page, Section

__all__ = ["SCORE", "model_points", "write_report"]

SCORE = "r"
"""The per-target score the laws are fitted to."""
_EFFECT_FACTORS = {"precision": "fp32", "augreg": "none", "transfer": "scratch"}
_SLOPE_FACTORS = ("hidden", "layers", "heads", "frames", "images")
_DATA_AXES = ("frames", "images")


def ladders(points: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The model families whose sizes a law can be fitted over: every trained grid by its name, and all
    pretrained models together (their size ladder)."""
    key = np.where(points["family"] == "pretrained", "pretrained models", points["model"].astype(str))
    return {name: part for name, part in points.groupby(key, sort=False)}


def reference(points: pd.DataFrame, at_most_data: bool) -> pd.DataFrame:
    """The rows a law of size (and data) is fitted on, so that it compares like with like: every swept axis
    that changes neither the model's size nor its training data (precision, AugReg level, transfer, dropout,
    ...) at its reference value (fp32, no AugReg, from scratch; otherwise its most common value), and with
    ``at_most_data`` only the largest training data. Seeds stay: they are averaged."""
    keep = np.ones(len(points), bool)
    for column in figures.axis_columns(points):
        values = points[column]
        if column == "seed" or column in _DATA_AXES or values.isna().all():
            continue
        if column not in _EFFECT_FACTORS and _sets_size(points, column):
            continue
        base = _EFFECT_FACTORS.get(column)
        chosen = base if base is not None and (values == base).any() else values.mode().iloc[0]
        keep &= (values == chosen).to_numpy()
    if at_most_data and "train_data" in points and points["train_data"].notna().any():
        keep &= (points["train_data"] == points.loc[keep, "train_data"].max()).to_numpy()
    return points[keep]


def _sets_size(points: pd.DataFrame, column: str) -> bool:
    """Whether the levels of ``column`` give models of different sizes or training data (hidden, patch, ...)."""
    measures = [c for c in ("params", "train_data") if c in points]
    pairs = {frozenset(map(tuple, part[measures].drop_duplicates().to_numpy().tolist()))
             for _, part in points.groupby(column, dropna=False)}
    return len(pairs) > 1


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    path = folder / name
    return pd.read_parquet(path) if path.is_file() else None


def model_points(results: pd.DataFrame) -> pd.DataFrame:
    """Per-target rows of every feature model at its best layer and each subject's largest fMRI size."""
    top = figures.largest_fmri(results)
    return top.merge(figures.best_layers(results, SCORE), on=[*figures.model_keys(results), "layer"], how="inner")


def _guard(section: Section, what: str, build) -> object | None:
    """``build()``, or a note in ``section`` saying why ``what`` could not be shown."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = build()
        for message in dict.fromkeys(str(w.message) for w in caught):
            section.note(f"{what}: {message}")
        return value
    except (ValueError, KeyError, TypeError, np.linalg.LinAlgError) as err:
        section.note(f"{what} not shown: {err}")
        return None


def _fit_table(fit) -> pd.DataFrame:
    rows = [{"parameter": name, "value": value, "low": fit.intervals[name][0], "high": fit.intervals[name][1]}
            for name, value in fit.params.items()]
    for role, gain in fit.gain_per_decade.items():
        low, high = fit.intervals[f"gain_per_decade_{role}"]
        rows.append({"parameter": f"gain per decade of {role}", "value": gain, "low": low, "high": high})
    return pd.DataFrame(rows)


def _model_scaling(page: Page, points: pd.DataFrame, n_boot: int, seed: int) -> None:
    section = page.section("Scaling with model size")
    section.text("Score: the mean r over targets of each feature model's best layer, per subject, against its "
                 "parameter count N, for each family of models (a trained grid at its largest training data, "
                 "its other axes at their reference values: fp32, no AugReg, from scratch, otherwise the most "
                 "common value; the pretrained models as one ladder). The saturating power law "
                 "1 − ŝ = E + A·N^−α (Gokce & Schrimpf's form) and the log-linear law ŝ = c + g·log10 N "
                 "(Antonello et al.) are fitted to all subjects and targets, with 95% bootstrap intervals over "
                 "subjects and targets.")
    for name, ladder in ladders(points).items():
        rows = reference(ladder, at_most_data=True)
        if rows["params"].nunique() < 2:
            section.text(f"{name}: one model size (N = {rows['params'].iloc[0]:,}), so no law of size; its other "
                         "axes are in the sections below.")
            continue
        per_subject = rows.groupby(["subject", "params"], dropna=False)[SCORE].mean().reset_index()
        drawn = False
        for law in ("power", "loglinear"):
            fit = _guard(section, f"{name}: {law} law", lambda law=law: _fit(rows, law, params="params",
                                                                                n_boot=n_boot, seed=seed))
            if fit is not None:
                section.figure(lambda fit=fit, d=per_subject: figures.scaling_curves(d, "params", SCORE, fit,
                                                                                   "parameters N"),
                               f"{name}: {law} law of r against N")
                section.table(_fit_table(fit))
                drawn = True
        if not drawn:
            section.figure(lambda d=per_subject: figures.scaling_curves(d, "params", SCORE, None, "parameters N"),
                           f"{name}: r against N (no law could be fitted)")


def _fit(points: pd.DataFrame, law: str, n_boot: int, seed: int, **axes):
    from ..scaling import fit_law

    return fit_law(points, score=SCORE, law=law, n_boot=n_boot, seed=seed, groups="subject", progress=False,
                   **axes)


def _joint(page: Page, points: pd.DataFrame, n_boot: int, seed: int) -> None:
    section = page.section("Model size and training data together: the compute-optimal frontier")
    section.text("The joint law 1 − ŝ = E + A·N^−α + B·D^−β over parameters N and training data D (frames, "
                 "images or tokens), fitted with the summed Huber loss; compute C from the measured training "
                 "FLOPs (C = m·(N·D)^n). Iso-FLOP curves show the predicted score along each budget, and the "
                 "frontier where each budget peaks: N_opt ∝ C^a, D_opt ∝ C^b with a = β/(α+β), b = α/(α+β).")
    trained = {name: part for name, part in ladders(points).items()
               if "train_data" in part and part["train_data"].notna().all() and part["train_data"].nunique() > 1}
    if not trained:
        section.note("No family of this study varies its models' training data, so there is no joint law of N "
                     "and D to fit.")
    for name, ladder in trained.items():
        _frontier(section, name, reference(ladder, at_most_data=False), n_boot, seed)


def _frontier(section: Section, name: str, rows: pd.DataFrame, n_boot: int, seed: int) -> None:
    from ..scaling import compute_optimal, frontier_exponents, iso_flop

    fit = _guard(section, f"{name}: joint law", lambda: _fit(rows, "joint", params="params", data="train_data",
                                                            compute="train_flops", n_boot=n_boot, seed=seed))
    if fit is None:
        return
    section.table(_fit_table(fit))
    low, high = np.log10(rows["train_flops"].min()), np.log10(rows["train_flops"].max())
    budgets = np.logspace(low, high + 1, 5)
    optimal = _guard(section, f"{name}: frontier", lambda: compute_optimal(fit, budgets))
    curves = _guard(section, f"{name}: iso-FLOP curves", lambda: iso_flop(fit, budgets))
    if optimal is not None and curves is not None:
        section.figure(lambda: figures.frontier_plot(curves, optimal), f"{name}: iso-FLOP curves and the frontier")
        section.table(optimal)
    exponents = _guard(section, f"{name}: frontier exponents", lambda: frontier_exponents(fit))
    if exponents is not None:
        section.table(exponents.reset_index())


def _extrapolation(page: Page, points: pd.DataFrame) -> None:
    from ..scaling import extrapolation_check

    section = page.section("Extrapolation check")
    section.text("Each law is refitted without the largest model (and, separately, the largest training data "
                 "size) and predicts its score; the error is predicted minus measured.")
    for name, ladder in ladders(points).items():
        rows = reference(ladder, at_most_data=False)
        axes = {"params": "params"}
        if "train_data" in rows and rows["train_data"].notna().all() and rows["train_data"].nunique() > 1:
            axes["data"] = "train_data"
        check = _guard(section, f"{name}: extrapolation check", lambda r=rows, a=axes: extrapolation_check(
            r, score=SCORE, groups="subject", **a))
        if check is None:
            continue
        shown = check[np.isfinite(check["error"])]
        if not shown.empty:
            section.figure(lambda d=shown: figures.extrapolation_plot(d), f"{name}: errors at the held-out points")
            for held, part in shown.groupby("held_out"):
                best = part.loc[part["abs_error"].idxmin()]
                section.note(f"{name}, largest {held} held out: the {best['law']} law extrapolates best "
                             f"(error {best['error']:+.3f}).")
        section.table(check.assign(family=name))


def _factors(points: pd.DataFrame) -> list[tuple[str, object]]:
    """Every swept axis but the seed, with its baseline level; None for a numeric axis summarised as a gain
    per decade (the size and data axes, and any positive axis of 3 or more values)."""
    out = []
    for factor in figures.axis_columns(points):
        values = points[factor].dropna()
        if factor == "seed" or values.nunique() < 2:
            continue
        numeric = pd.api.types.is_numeric_dtype(values) and bool((values > 0).all())
        if factor in _SLOPE_FACTORS or (numeric and values.nunique() >= 3):
            out.append((factor, None))
        elif factor in _EFFECT_FACTORS and (values == _EFFECT_FACTORS[factor]).any():
            out.append((factor, _EFFECT_FACTORS[factor]))
        else:
            out.append((factor, sorted(values.unique())[0]))
    return out


def _effects(page: Page, points: pd.DataFrame, n_boot: int, seed: int) -> None:
    from ..scaling import effect_summary, slope_summary

    section = page.section("Effects of the sweep's axes")
    section.text("Each effect is the mean over subjects of the paired difference in score between a level and "
                 "its baseline (or, for numeric axes, the gain per decade within pairs that differ only in that "
                 "axis), with a 95% bootstrap interval and a paired sign-flip permutation p-value over subjects.")
    rows = []
    for factor, baseline in _factors(points):
        pairs = [c for c in figures.axis_columns(points) if c != factor] + ["model"]
        data = points[points[factor].notna()]
        if baseline is None:
            table = _guard(section, f"{factor} slope", lambda f=factor, d=data, p=pairs: slope_summary(
                d, f, score=SCORE, pairs_by=p, n_boot=n_boot, seed=seed).assign(level="per decade", baseline=""))
        else:
            table = _guard(section, f"{factor} effect", lambda f=factor, d=data, b=baseline, p=pairs: effect_summary(
                d, f, score=SCORE, baseline=b, pairs_by=p, n_boot=n_boot, seed=seed))
        if table is not None:
            rows.append(table)
    if not rows:
        section.note("The sweep has no axis with more than one value to compare.")
        return
    effects = pd.concat(rows, ignore_index=True)
    section.figure(lambda: figures.effects_plot(effects), "effect sizes with 95% bootstrap intervals")
    section.table(effects[["factor", "level", "baseline", "effect", "low", "high", "p_value", "n_units"]])


def _precision(page: Page, results: pd.DataFrame, points: pd.DataFrame, folder: Path) -> None:
    if "precision" not in results or results["precision"].nunique() < 2:
        return
    section = page.section("Training precision: time and accuracy")
    section.text("Pairs of models that differ only in training precision: training time, held-out training "
                 "loss and brain score (mean r at the best layer and largest fMRI size).")
    meta = _train_meta(folder)
    if meta.empty:
        section.note("no training records found")
        return
    keys = [c for c in figures.axis_columns(meta) if c not in ("precision", "val_loss")] + ["model"]
    score = points.groupby([*keys, "precision"], dropna=False)[SCORE].mean().rename("mean_r")
    table = meta.merge(score.reset_index(), on=[*keys, "precision"], how="left")
    paired = table.groupby(keys, dropna=False)["precision"].transform("nunique") > 1
    if not paired.any():
        section.note("no two models differ only in training precision")
        return
    table = table[paired].copy()
    fp32 = table["precision"].eq("fp32")
    base = table[fp32].set_index(keys)["train_seconds"]
    table["speed_vs_fp32"] = [base.get(tuple(row) if len(keys) > 1 else row[0], np.nan) / seconds for row, seconds
                              in zip(table[keys].itertuples(index=False), table["train_seconds"])]
    section.table(table[[*keys, "precision", "train_seconds", "speed_vs_fp32", "val_loss", "mean_r"]]
                  .sort_values([*keys, "precision"]))


def _train_meta(folder: Path) -> pd.DataFrame:
    rows = []
    for path in (folder / "tasks" / "train").glob("*/meta.json"):
        meta = json.loads(path.read_text())
        axes = meta["settings"].get("axes", {})
        if axes.get("upstream"):
            continue
        name = meta["label"].split(" ")[0]
        rows.append({"model": name, **axes, "precision": meta["result"].get("precision", axes.get("precision")),
                     "train_seconds": meta["result"].get("train_seconds"), "val_loss": meta["result"].get("val_loss")})
    return pd.DataFrame(rows)


def _overview(page: Page, results: pd.DataFrame, summary: pd.DataFrame) -> None:
    section = page.section("Overview")
    fits = len(summary)
    section.text(f"{results['model'].nunique()} feature model(s) ({fits} fits over {results['subject'].nunique()} "
                 f"subject(s), {results['target'].nunique()} target(s), layers and fMRI training sizes).")
    section.text("Each feature model at its best layer and largest fMRI training size; scores are means over "
                 "subjects of each subject's mean and max over targets.")
    keys = figures.model_keys(summary)
    scores = [c for c in ("mean_r", "max_r", "mean_normalised_r") if c in summary]
    best = figures.largest_fmri(figures.best_layer(summary))
    best = best.groupby([*keys, "layer", "params"], dropna=False)[scores].mean()
    section.table(best.reset_index().sort_values("mean_r", ascending=False).head(40))


def _profiles(page: Page, results: pd.DataFrame, summary: pd.DataFrame, points: pd.DataFrame, atlas) -> None:
    section = page.section("Layers, fMRI data and noise ceilings")
    if summary["layer"].nunique() > 1:
        section.figure(lambda: figures.layer_profiles(summary), "score by layer (largest fMRI training size)")
    else:
        section.text(f"Every model was scored at one layer ({summary['layer'].iloc[0]}), so there is no layer "
                     "profile.")
    if summary["n_train_trs"].nunique() > 1:
        section.figure(lambda: figures.data_scaling(summary), "score by amount of fMRI training data")
    section.figure(lambda: figures.normalised_scores(results), "ceiling-normalised r per target (r / ceiling)")
    if atlas is not None:
        section.figure(lambda: figures.brain_map(points, atlas), "best r per target on the brain")


def _about(page: Page, folder: Path) -> None:
    section = page.section("The study")
    study = folder / "study.yaml"
    section.pre(study.read_text() if study.is_file() else "(no study.yaml)")
    versions = folder / "versions.json"
    if versions.is_file():
        section.pre(versions.read_text())


def _study_name(folder: Path) -> str:
    import yaml

    path = folder / "study.yaml"
    try:
        return str(yaml.safe_load(path.read_text()).get("name", folder.name))
    except (OSError, AttributeError, yaml.YAMLError):
        return folder.name


def write_report(study_dir, *, n_boot: int = 300, seed: int = 0, atlas=None) -> Path:
    """Write ``<study_dir>/report/index.html`` from the study's results and return its path.

    ``n_boot``: bootstrap resamples of every fit; ``atlas``: the dataset's atlas (targets named
    ``parcel_<label>``) or mask (targets ``voxel_<i>_<j>_<k>``) NIfTI, for a brain map.
    """
    folder = Path(study_dir)
    results, summary = _read(folder, "results.parquet"), _read(folder, "summary.parquet")
    page = Page(f"cortexscale study: {_study_name(folder)}", f"Study folder {folder.resolve()}.")
    if results is None or summary is None:
        page.section("No results yet").note(f"{folder} has no results.parquet: run the study first "
                                            f"(cortexscale run); what is done so far: cortexscale status {folder}.")
    else:
        points = model_points(results)
        _overview(page, results, summary)
        _model_scaling(page, points, n_boot, seed)
        _joint(page, points, n_boot, seed)
        _extrapolation(page, points)
        _effects(page, points, n_boot, seed)
        _precision(page, results, points, folder)
        _profiles(page, results, summary, points, atlas)
    _about(page, folder)
    out = folder / "report" / "index.html"
    write_atomic(out, page.html())
    return out
