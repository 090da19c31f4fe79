"""Figures of a study's results, each a function of tables returning a matplotlib Figure.

``summary`` is the per-fit table of a study (``summary.parquet``: one row per subject, model, layer, fMRI
training size, ..., with ``mean_r``, ``max_r``, ``mean_normalised_r`` ...); ``results`` the per-target table.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..study import schema

__all__ = ["axis_columns", "best_layer", "best_layers", "brain_map", "data_scaling", "effects_plot",
           "extrapolation_plot", "frontier_plot", "largest_fmri", "layer_profiles", "model_keys", "model_label",
           "normalised_scores", "projection_plot", "scaling_curves", "space_gains", "space_weights"]

SUBJECT_COLOURS = "tab10"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


axis_columns = schema.axis_columns
model_keys = schema.model_keys


def model_label(row, axes) -> str:
    """A short name of a feature model: its name and the values of ``axes`` that set it apart."""
    parts = [str(row["model"])]
    for column in axes:
        value = row.get(column) if hasattr(row, "get") else getattr(row, column, None)
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            parts.append(f"{column}={value:g}" if isinstance(value, float) else f"{column}={value}")
    return " ".join(parts)


def _with_labels(summary: pd.DataFrame, without: tuple[str, ...] = ()) -> pd.DataFrame:
    """``summary`` with each row's :func:`model_label` over its axes but ``without``, as ``label``."""
    axes = [c for c in axis_columns(summary) if c not in without]
    return summary.assign(label=[model_label(row, axes) for _, row in summary.iterrows()])


def layer_profiles(summary: pd.DataFrame, score: str = "mean_r", span: tuple[float, float] | None = None):
    """Score against layer for every feature model, seeds averaged (largest fMRI training size; mean over
    subjects, with the subjects' range), by relative depth where the table has each model's ``n_layers``;
    coloured by size (:func:`size_colour`) and, where training data varies, dashed for less of it."""
    plt = _plt()
    table = _with_labels(largest_fmri(summary), without=("seed",))
    relative = "n_layers" in table and table["n_layers"].notna().all()
    if relative:  # models of different depths on one axis
        table = table.assign(layer=table["layer"] / table["n_layers"].astype(float))
    sized = "params" in table and table["params"].notna().all()
    span = span or (size_span(table) if sized else None)
    data = sorted(table["train_data"].dropna().unique(), reverse=True) if "train_data" in table else []
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for label, part in table.groupby("label", sort=False):
        by_layer = part.groupby(["subject", "layer"])[score].mean().groupby("layer")
        mean = by_layer.mean()
        first = part.iloc[0]
        colour = size_colour(first["params"], span) if sized else None
        style = _DATA_STYLES[data.index(first["train_data"]) % len(_DATA_STYLES)] if len(data) > 1 and \
            pd.notna(first["train_data"]) else "-"
        name = f"{first['model']} N = {first['params']:.3g}" if sized else label
        if len(data) > 1 and pd.notna(first["train_data"]):
            name += f", D = {first['train_data']:.3g}"
        line, = ax.plot(mean.index, mean.values, marker="o", ms=3, color=colour, ls=style, label=name)
        ax.fill_between(mean.index, by_layer.min().values, by_layer.max().values, color=line.get_color(),
                        alpha=0.08)
    ax.set_xlabel("relative depth (layer / blocks; 0 = embeddings)" if relative else "layer (0 = embeddings)")
    ax.set_ylabel(score.replace("_", " "))
    _legend(ax, limit=16)
    return fig


_DATA_STYLES = ("-", "--", ":", "-.")
"""Line styles of training-data amounts, the largest solid."""


def largest_fmri(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows of each fit at its subject's largest fMRI training size under its encoding entry (entries may trim
    their runs differently)."""
    keys = [c for c in ("dataset", "subject", "encoding") if c in summary.columns]
    largest = summary.groupby(keys, dropna=False)["n_train_trs"].transform("max")
    return summary[summary["n_train_trs"] == largest]


def _legend(ax, limit: int = 12) -> None:
    """At most ``limit`` legend entries, each label once (lines of one size share its colour and its entry)."""
    handles, labels = ax.get_legend_handles_labels()
    first = dict(zip(reversed(labels), reversed(handles)))
    labels = list(dict.fromkeys(labels))
    if labels:
        ax.legend([first[label] for label in labels[:limit]], labels[:limit], fontsize=7, frameon=False,
                  loc="best")


def size_colour(params: float, span: tuple[float, float]):
    """The colour of a model size on the sequential map every figure shares: viridis by log10 N between the
    study's smallest and largest N (``span``), so one size has one colour throughout the report."""
    plt = _plt()
    low, high = np.log10(span[0]), np.log10(span[1])
    share = 0.0 if high <= low else (np.log10(params) - low) / (high - low)
    return plt.get_cmap("viridis")(0.05 + 0.8 * float(np.clip(share, 0.0, 1.0)))


def size_span(table: pd.DataFrame) -> tuple[float, float]:
    """The smallest and largest parameter count of a table, for :func:`size_colour`."""
    params = table["params"].dropna().to_numpy(dtype=float)
    return float(params.min()), float(params.max())


def data_scaling(summary: pd.DataFrame, score: str = "mean_r", span: tuple[float, float] | None = None):
    """Score against the amount of fMRI training data (TRs), one line per model size at its best layer: the
    mean over subjects (each subject's seeds and other grid points averaged first) with a band of ± one SD
    over subjects, coloured by size (:func:`size_colour`)."""
    plt = _plt()
    table = best_layer(summary, score)
    per_subject = table.groupby(["params", "subject", "n_train_trs"])[score].mean()
    stats = per_subject.groupby(["params", "n_train_trs"]).agg(["mean", "std"]).reset_index()
    span = span or size_span(table)
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for size, part in stats.groupby("params"):
        colour = size_colour(size, span)
        spread = part["std"].fillna(0.0)
        ax.plot(part["n_train_trs"], part["mean"], color=colour, lw=2, marker="o", ms=4, label=f"N = {size:.3g}")
        ax.fill_between(part["n_train_trs"], part["mean"] - spread, part["mean"] + spread, color=colour, alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("fMRI training data (TRs)")
    ax.set_ylabel(f"{score.replace('_', ' ')} (mean over subjects ± SD)")
    _legend(ax)
    return fig


def grid_heatmap(points: pd.DataFrame, score: str = "r"):
    """The study's grid of model size N × training data D as one picture: the mean over subjects of each
    point's score (per-target rows averaged per subject first), written in each cell."""
    plt = _plt()
    per_subject = points.groupby(["params", "train_data", "subject"])[score].mean()
    grid = per_subject.groupby(["params", "train_data"]).mean().unstack("train_data").sort_index(ascending=False)
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * grid.shape[1], 1.2 + 0.55 * grid.shape[0]), layout="constrained")
    image = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    low, high = np.nanmin(grid.to_numpy()), np.nanmax(grid.to_numpy())
    for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
        if np.isfinite(value):
            light = high > low and (value - low) / (high - low) < 0.6
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8, color="w" if light else "k")
    ax.set_xticks(range(grid.shape[1]), [f"{d:.3g}" for d in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{n:.3g}" for n in grid.index])
    ax.set_xlabel("training data D")
    ax.set_ylabel("parameters N")
    fig.colorbar(image, ax=ax, label=f"mean {score}")
    return fig


def best_layers(table: pd.DataFrame, score: str = "mean_r") -> pd.DataFrame:
    """Each feature model's best layer: columns ``model_keys`` + ``layer``, one row per model. The score is
    averaged over ``table``'s rows (subjects, or targets) at each subject's largest fMRI training size."""
    keys = model_keys(table)
    top = largest_fmri(table).groupby([*keys, "layer"], dropna=False)[score].mean().reset_index()
    return top.loc[top.groupby(keys, dropna=False)[score].idxmax(), [*keys, "layer"]]


def best_layer(summary: pd.DataFrame, score: str = "mean_r") -> pd.DataFrame:
    """For each feature model, only the rows of its best layer (``best_layers``): the layer a scaling law is
    fitted on."""
    return summary.merge(best_layers(summary, score), on=[*model_keys(summary), "layer"], how="inner")


def normalised_scores(results: pd.DataFrame, span: tuple[float, float] | None = None):
    """Ceiling-normalised r (r / ceiling) of every target, one box per model size and, where the models'
    training data varies, per amount of it within the size (less data paler): every feature model of that
    size (and data) at its best layer and largest fMRI training size pooled (grid points, seeds), coloured by
    size (:func:`size_colour`)."""
    plt = _plt()
    table = results[np.isfinite(results["normalised_r"])]
    if table.empty:
        raise ValueError("no target has a positive noise ceiling, so no normalised score can be shown")
    keys = model_keys(table)
    fits = table.groupby([*keys, "layer", "subject", "n_train_trs"], dropna=False)["r"].mean().reset_index()
    table = largest_fmri(table.merge(best_layers(fits, "r"), on=[*keys, "layer"]))
    span = span or size_span(table)
    by_data = "train_data" in table and table["train_data"].notna().all() and table["train_data"].nunique() > 1
    groups = ["params", "train_data"] if by_data else ["params"]
    data = sorted(table["train_data"].unique()) if by_data else []
    boxes = []  # (label, size, shade, scores)
    for key, part in table.groupby(groups, sort=True):
        size, amount = (key if isinstance(key, tuple) else (key,)) + ((None,) if not by_data else ())
        count = len(part.drop_duplicates(keys))
        label = f"N = {size:.3g}" + (f", D = {amount:.3g}" if by_data else "")
        shade = 0.35 + 0.55 * (data.index(amount) + 1) / len(data) if by_data else 0.7
        boxes.append((f"{label} ({count} model{'s' if count > 1 else ''})", size, shade, part["normalised_r"]))
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.4 * len(boxes)), layout="constrained")
    drawn = ax.boxplot([b[3] for b in boxes], orientation="horizontal", showfliers=False, patch_artist=True,
                       tick_labels=[b[0] for b in boxes])
    for patch, (_, size, shade, _) in zip(drawn["boxes"], boxes):
        patch.set_facecolor(size_colour(size, span))
        patch.set_alpha(shade)
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("r / noise ceiling (per target)")
    return fig


def scaling_curves(points: pd.DataFrame, x: str, score: str, fit=None, xlabel: str = ""):
    """Score against ``x`` per subject (points and thin lines), the mean over subjects, and a fitted law with its
    95% band. ``points``: one row per (model, subject) with columns ``x``, ``score`` and ``subject``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    cmap = plt.get_cmap(SUBJECT_COLOURS)
    for i, (subject, part) in enumerate(points.groupby("subject")):
        part = part.groupby(x)[score].mean()
        ax.plot(part.index, part.values, marker="o", ms=3, lw=0.8, alpha=0.55, color=cmap(i % 10),
                label=f"{subject}")
    mean = points.groupby(x)[score].mean()
    ax.plot(mean.index, mean.values, "ks", ms=5, label="mean over subjects")
    if fit is not None:
        grid = np.geomspace(points[x].min(), points[x].max() * 3, 100)
        low, high = fit.band(grid)
        ax.plot(grid, fit.predict(grid), color="#b2182b", lw=2, label=f"{fit.law} fit")
        ax.fill_between(grid, low, high, color="#b2182b", alpha=0.15, label="95% band")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(score.replace("_", " "))
    _legend(ax)
    return fig


def depth_plot(trend):
    """Each model's relative depth of its best layer against its size, with its 95% interval, and the fitted
    trend ``depth = c + g·log10 N`` (:class:`~cortexscale.scaling.DepthTrend`)."""
    plt = _plt()
    models = trend.models
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    ax.errorbar(models["x"], models["depth"], yerr=[models["depth"] - models["low"], models["high"] - models["depth"]],
                fmt="o", color="k", ms=5, capsize=3, label="best layer (mean over subjects, 95% interval)")
    grid = np.geomspace(models["x"].min(), models["x"].max(), 50)
    low, high = trend.intervals["slope"]
    ax.plot(grid, trend.predict(grid), color="#b2182b", lw=2,
            label=f"trend: {trend.slope:+.3f} per decade [{low:+.3f}, {high:+.3f}]")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("parameters N" if trend.x == "params" else trend.x)
    ax.set_ylabel("relative depth of the best layer")
    _legend(ax)
    return fig


def training_curves(points: pd.DataFrame, score: str = "r"):
    """Score against training FLOPs spent, one line per trained model through its checkpoints (coloured by
    its parameter count on a sequential map), and their upper envelope: the best score each budget bought.
    ``points``: per-target rows of each model at its best layer, with ``step`` (NaN: the trained model)."""
    plt = _plt()
    keys = [c for c in model_keys(points) if c != "step"]
    per_point = points.groupby([*keys, "step", "subject", "params", "train_flops"], dropna=False)[score].mean()
    curves = per_point.groupby([*keys, "step", "params", "train_flops"], dropna=False).mean().reset_index()
    span = size_span(curves)
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for _, curve in curves.groupby(keys, dropna=False, sort=False):
        curve = curve.sort_values("train_flops")
        ax.plot(curve["train_flops"], curve[score], marker="o", ms=3, lw=1.2,
                color=size_colour(curve["params"].iloc[0], span), label=f"N = {curve['params'].iloc[0]:.3g}")
    order = curves.sort_values("train_flops")
    ax.plot(order["train_flops"], order[score].cummax(), color="k", ls="--", lw=1, label="envelope (best so far)")
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs spent")
    ax.set_ylabel(f"mean {score}")
    _legend(ax)
    return fig


def projection_plot(points: pd.DataFrame, fits: dict, score: str = "r"):
    """Score against parameters N at each feature count: the mean over subjects (markers) and the log-linear
    law with its 95% band (lines), one colour per projection (the full width in black). ``points``: one row per
    (model, subject) with columns ``projection``, ``params`` and ``score``; ``fits``: projection -> its law."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    cmap = plt.get_cmap("viridis")
    projected = [p for p in fits if p != schema.UNPROJECTED]
    for name, fit in fits.items():
        colour = "k" if name == schema.UNPROJECTED else cmap(projected.index(name) / max(1, len(projected)) * 0.9)
        part = points[points["projection"] == name]
        mean = part.groupby("params")[score].mean()
        label = "full width" if name == schema.UNPROJECTED else name
        ax.plot(mean.index, mean.values, "o", ms=5, color=colour, label=label)
        grid = np.geomspace(part["params"].min(), part["params"].max(), 60)
        low, high = fit.band(grid)
        ax.plot(grid, fit.predict(grid), color=colour, lw=1.5)
        ax.fill_between(grid, low, high, color=colour, alpha=0.12)
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel(f"{score.replace('_', ' ')} (mean over subjects)")
    _legend(ax)
    return fig


def law_by_size_plot(points: pd.DataFrame, fit, role: str, score: str = "r",
                     span: tuple[float, float] | None = None):
    """Score against one axis of a joint law (``role``: "data" or "fmri"), one colour per model size
    (:func:`size_colour`): the mean over subjects of the measured scores (markers, each subject's rows averaged
    first) and the law at that size (lines), the law's other axes at their largest measured values.
    ``points``: rows with ``params``, ``subject``, ``score`` and a column for each axis of the law."""
    plt = _plt()
    span = span or size_span(points)
    column = fit.axes[role]
    held = {other: points[c].max() for other, c in fit.axes.items() if other not in ("params", role)}
    for other, value in held.items():
        points = points[points[fit.axes[other]] == value]
    per_subject = points.groupby(["params", column, "subject"])[score].mean()
    means = per_subject.groupby(["params", column]).mean().reset_index()
    grid = np.geomspace(means[column].min(), means[column].max() * 2, 60)
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for size, part in means.groupby("params"):
        colour = size_colour(size, span)
        ax.plot(part[column], part[score], "o", ms=5, color=colour, label=f"N = {size:.3g}")
        ax.plot(grid, fit.predict(params=size, **{role: grid}, **held), color=colour, lw=1.3)
    ax.set_xscale("log")
    ax.set_xlabel({"data": "training data D", "fmri": "fMRI training data M (TRs)"}[role])
    ax.set_ylabel(f"{score.replace('_', ' ')} (mean over subjects)")
    _legend(ax)
    return fig


def frontier_plot(grid: pd.DataFrame, optimal: pd.DataFrame, measured: pd.DataFrame | None = None):
    """Iso-FLOP curves (predicted score against parameters at fixed compute), the compute-optimal frontier and
    the measured runs placed on them, coloured by the compute they took, with the x-range kept near the runs.

    ``grid``: columns compute, params, score; ``optimal``: compute, params_opt, score_opt (from
    :func:`cortexscale.scaling.compute_optimal`); ``measured``: one row per model with params, train_flops and
    its score (mean over subjects)."""
    from matplotlib.colors import LogNorm

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    cmap = plt.get_cmap("plasma")
    budgets = sorted(grid["compute"].unique())
    flops = [*budgets, *([] if measured is None else measured["train_flops"])]
    norm = LogNorm(min(flops), max(flops))
    for budget in budgets:
        part = grid[grid["compute"] == budget].sort_values("params")
        ax.plot(part["params"], part["score"], color=cmap(0.85 * norm(budget)), lw=1.2, label=f"C = {budget:.2g} FLOPs")
    ax.plot(optimal["params_opt"], optimal["score_opt"], "k*-", ms=8, lw=1, label="compute-optimal")
    scores = [optimal["score_opt"]]
    if measured is not None and len(measured):
        ax.scatter(measured["params"], measured["score"], c=[cmap(0.85 * norm(f)) for f in measured["train_flops"]],
                   edgecolors="k", linewidths=0.5, s=28, zorder=3, label="measured runs")
        ax.set_xlim(measured["params"].min() / 3, measured["params"].max() * 3)
        scores.append(measured["score"])
    shown = pd.concat(scores)
    spread = float(shown.max() - shown.min()) or 0.05
    ax.set_ylim(float(shown.min()) - 0.5 * spread, float(shown.max()) + 0.25 * spread)
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("score")
    _legend(ax)
    return fig


def extrapolation_plot(check: pd.DataFrame):
    """Error of each law's prediction for the held-out largest model or data size."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    labels = [f"{row.law}\n(held out: {row.held_out})" for row in check.itertuples()]
    ax.bar(range(len(check)), check["error"], color=["#2166ac" if e >= 0 else "#b2182b" for e in check["error"]])
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(check)), labels, fontsize=7)
    ax.set_ylabel("predicted − measured score")
    return fig


def effects_plot(effects: pd.DataFrame):
    """Forest plot of effect sizes with their bootstrap intervals (columns factor, level, effect, low, high)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.35 * len(effects)), layout="constrained")
    y = np.arange(len(effects))
    ax.errorbar(effects["effect"], y, xerr=[effects["effect"] - effects["low"], effects["high"] - effects["effect"]],
                fmt="o", color="k", capsize=3)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, [f"{row.factor}: {row.level}" for row in effects.itertuples()], fontsize=7)
    ax.set_xlabel("effect on the score (95% bootstrap interval)")
    return fig


def target_volume(values: pd.Series, image) -> np.ndarray:
    """A volume (the image's 3-D shape) holding each target's value where the target lies: a target named
    ``parcel_<label>`` fills that label's voxels of the atlas ``image`` (label 0 is background), one named
    ``voxel_<i>_<j>_<k>`` (a mask's voxels, as :mod:`cortexscale.data.bids` names them) fills that voxel; other
    voxels are 0. Raises when no target lies in the image. ``values``: index = target names."""
    labels = np.asarray(image.dataobj)
    volume = np.zeros(labels.shape[:3], dtype=np.float32)
    placed = 0
    for target, value in values.items():
        parcel = re.fullmatch(r"parcel_(\d+)", str(target))
        voxel = re.fullmatch(r"voxel_(\d+)_(\d+)_(\d+)", str(target))
        if parcel and int(parcel.group(1)) != 0:
            region = labels == int(parcel.group(1))
            volume[region] = value
            placed += bool(region.any())
        elif voxel and all(int(i) < n for i, n in zip(voxel.groups(), volume.shape)):
            volume[tuple(int(i) for i in voxel.groups())] = value
            placed += 1
    if not placed:
        raise ValueError(f"none of the {len(values)} targets (first {str(values.index[0])!r}) is a parcel_<label> "
                         f"of the atlas or a voxel_<i>_<j>_<k> inside the image of shape {volume.shape}")
    return volume


def brain_map(results: pd.DataFrame, atlas, score: str = "r"):
    """The best fit's score per target on glass brains (nilearn): ``atlas`` is the dataset's atlas (targets
    ``parcel_<label>``) or mask (targets ``voxel_<i>_<j>_<k>``); see :func:`target_volume`."""
    import nibabel as nib
    from nilearn import plotting

    image = nib.load(str(atlas))
    volume = target_volume(results.groupby("target")[score].max(), image)
    plt = _plt()
    fig = plt.figure(figsize=(8, 3))
    shown = volume[volume != 0]
    plotting.plot_glass_brain(nib.Nifti1Image(volume, image.affine), figure=fig, colorbar=True, plot_abs=False,
                              symmetric_cbar=False, vmin=float(shown.min()), vmax=float(shown.max()),
                              cmap="viridis", title=f"best {score} per target")
    return fig


def target_gains_plot(gains: pd.DataFrame):
    """Each target's gain per decade of model size with its 95% interval, targets ranked by gain; those whose
    interval excludes zero in colour (:func:`~cortexscale.scaling.target_gains`)."""
    plt = _plt()
    gains = gains[np.isfinite(gains["gain"])].sort_values("gain", kind="stable").reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    for marked, colour, label in ((True, "#b2182b", "interval excludes 0"), (False, "0.6", "interval includes 0")):
        part = gains[gains["excludes_zero"] == marked]
        if len(part):
            ax.errorbar(part.index, part["gain"], yerr=[part["gain"] - part["low"], part["high"] - part["gain"]],
                        fmt="o", ms=3, lw=0.8, color=colour, label=f"{label} ({len(part)})")
    ax.axhline(0.0, color="k", lw=0.8)
    if len(gains) <= 40:
        ax.set_xticks(gains.index, gains["target"].astype(str), rotation=90, fontsize=6)
    else:
        ax.set_xticks([])
    ax.set_xlabel("targets, ranked by gain")
    ax.set_ylabel("gain in r per decade of N")
    _legend(ax)
    return fig


def gain_map(gains: pd.DataFrame, atlas):
    """Each target's gain per decade of model size on glass brains, the targets whose interval excludes zero
    outlined; ``atlas`` as for :func:`brain_map`."""
    import nibabel as nib
    from nilearn import plotting

    image = nib.load(str(atlas))
    values = gains.set_index("target")["gain"].fillna(0.0)
    volume = target_volume(values, image)
    marked = target_volume(gains.set_index("target")["excludes_zero"].astype(float), image)
    plt = _plt()
    fig = plt.figure(figsize=(8, 3))
    bound = float(np.abs(volume).max()) or 1.0
    display = plotting.plot_glass_brain(nib.Nifti1Image(volume, image.affine), figure=fig, colorbar=True,
                                        plot_abs=False, vmin=-bound, vmax=bound, cmap="RdBu_r", threshold=None,
                                        title="gain in r per decade of N")
    if marked.any():
        display.add_contours(nib.Nifti1Image(marked, image.affine), levels=[0.5], colors="k", linewidths=0.8)
    return fig


def space_gains(table: pd.DataFrame):
    """Joint fits against their spaces alone, per region: grouped bars of the mean r of each space fitted alone
    and of the joint fit, the joint fit's mean gain over the best space (with its interval) written above.

    ``table``: one row per (encoding, region) with columns ``encoding, region, r, gain_r, gain_low,
    gain_high`` and ``r[<space>]`` per space (:func:`cortexscale.study.schema.space_column`)."""
    plt = _plt()
    spaces = list(schema.space_columns(table, "r"))
    labels = [f"{row.encoding}\n{row.region}" for row in table.itertuples()]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(table) * (len(spaces) + 1) * 0.45), 3.8), layout="constrained")
    width = 0.8 / (len(spaces) + 1)
    x = np.arange(len(table))
    cmap = plt.get_cmap("tab10")
    for k, space in enumerate(spaces):
        ax.bar(x + k * width, table[schema.space_column("r", space)], width, color=cmap(k), label=f"{space} alone")
    joint = ax.bar(x + len(spaces) * width, table["r"], width, color="k", label="joint fit")
    for bar, (gain, low, high) in zip(joint, table[["gain_r", "gain_low", "gain_high"]].to_numpy()):
        ax.annotate(f"{gain:+.3f}\n[{low:+.3f}, {high:+.3f}]", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x + width * len(spaces) / 2, labels, fontsize=7)
    ax.set_ylabel("mean r over targets")
    ax.axhline(0, color="k", lw=0.6)
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.15 * (high - low))
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def space_weights(table: pd.DataFrame, measure: str = "weight"):
    """Each space's mean stacking weight (or band ratio) per joint fit and region, as stacked bars summing to
    one. ``table``: columns ``encoding, region`` and ``weight[<space>]`` per space."""
    plt = _plt()
    columns = schema.space_columns(table, measure)
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.35 * len(table)), layout="constrained")
    y = np.arange(len(table))
    left = np.zeros(len(table))
    cmap = plt.get_cmap("tab10")
    for k, (space, column) in enumerate(columns.items()):
        values = table[column].to_numpy(dtype=float)
        ax.barh(y, values, left=left, color=cmap(k), label=space)
        left += np.nan_to_num(values)
    ax.set_yticks(y, [f"{row.encoding}: {row.region}" for row in table.itertuples()], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean weight of each space (stacking weight, or banded ridge's band ratio)")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
