"""The study report: one self-contained HTML page in ``<study>/report/index.html``.

It answers the study's question from its results table: how the brain score scales with model size, training
data and compute, where the compute-optimal frontier lies, and how each axis of the sweep moves the score,
each with bootstrap intervals over subjects and targets (and over blocks of test TRs, or those alone, where the
study keeps them: :mod:`cortexscale.report.resampling`; the per-target map redraws subjects). The score of a
feature model is its best layer's r at each subject's largest fMRI training size (the layer is chosen on the
same data, as Antonello et al. did).
Whatever cannot be fitted or drawn says why in its place; the rest of the page is still written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._warnings import recorded_warnings
from ..study.families import FAMILIES, Roles
from ..study import schema
from ..study.plan import GROUP
from ..study.schema import JOINT
from ..study.store import StudyFolder
from . import figures
from .html import Page, Section
from .resampling import RESAMPLES, Draws, parse_resolved, study_draws

__all__ = ["SCORE", "model_points", "roles_of", "write_report"]

SCORE = "r"
"""The per-target score the laws are fitted to."""


def roles_of(points: pd.DataFrame) -> Roles:
    """What the axes of the table's model families mean (:class:`~cortexscale.study.families.Roles`), merged
    over the families it holds; a family that is not registered is an error."""
    names = [name for name in pd.unique(points["family"].dropna()) if name != JOINT]
    unknown = sorted(str(name) for name in names if name not in FAMILIES)
    if unknown:
        raise ValueError(f"the results hold model families {unknown} that are not registered; families are "
                         f"{sorted(FAMILIES)} (a plugin's module must be imported before the report)")
    roles = [FAMILIES[name].roles for name in names]
    return Roles(data=tuple(dict.fromkeys(a for r in roles for a in r.data)),
                 slopes=tuple(dict.fromkeys(a for r in roles for a in r.slopes)),
                 baselines={k: v for r in roles for k, v in r.baselines.items()})


def ladders(points: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The model families whose sizes a law can be fitted over: every trained grid by its name, and all
    pretrained models of each named ladder (``pythia ladder``) and the other pretrained models together; per
    encoding entry where the study has several, and per feature count where it projects (``name (srp-64)``).
    Joint fits (several feature spaces) are no ladder."""
    points = points[points["family"] != JOINT]
    key = np.where(points["family"] == "pretrained", "pretrained models", points["model"].astype(str))
    if "ladder" in points:
        named = points["ladder"].notna().to_numpy()
        key = np.where(named, points["ladder"].fillna("").astype(str).to_numpy() + " ladder", key)
    if "encoding" in points and points["encoding"].nunique() > 1:
        key = points["encoding"].astype(str).to_numpy() + ": " + key
    if "projection" in points and points["projection"].nunique() > 1:
        key = key + " (" + points["projection"].astype(str).to_numpy() + ")"
    return {name: part for name, part in points.groupby(key, sort=False)}


def reference(points: pd.DataFrame, at_most_data: bool) -> pd.DataFrame:
    """The rows a law of size (and data) is fitted on, so that it compares like with like: every swept axis
    that changes neither the model's size nor its training data (precision, AugReg level, transfer, dropout,
    ...) at its reference value (its family's baseline: fp32, no AugReg, from scratch; otherwise its most
    common value), and with ``at_most_data`` only the largest training data. Seeds stay: they are averaged."""
    roles = roles_of(points)
    keep = np.ones(len(points), bool)
    for column in figures.axis_columns(points):
        values = points[column]
        if column == "seed" or column in roles.data or values.isna().all():
            continue
        if column not in roles.baselines and _sets_size(points, column):
            continue
        base = roles.baselines.get(column)
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


def model_points(results: pd.DataFrame, every_fmri: bool = False) -> pd.DataFrame:
    """Per-target rows of every feature model at its best layer and each subject's largest fMRI size (or, with
    ``every_fmri``, at every fMRI size: the layer is still the best at the largest)."""
    top = results if every_fmri else figures.largest_fmri(results)
    return top.merge(figures.best_layers(results, SCORE), on=[*figures.model_keys(results), "layer"], how="inner")


def _guard(section: Section, what: str, build) -> object | None:
    """``build()``, or a note in ``section`` saying why ``what`` could not be shown."""
    try:
        with recorded_warnings() as caught:
            value = build()
        for message in caught:
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


def _model_scaling(page: Page, points: pd.DataFrame, draws: Draws) -> None:
    section = page.section("Scaling with model size")
    section.text("Score: the mean r over targets of each feature model's best layer, per subject, against its "
                 "parameter count N, for each family of models (a trained grid at its largest training data, "
                 "its other axes at their reference values: fp32, no AugReg, from scratch, otherwise the most "
                 "common value; the pretrained models as one ladder). The saturating power law "
                 "1 − ŝ = E + A·N^−α (Gokce & Schrimpf's form) and the log-linear law ŝ = c + g·log10 N "
                 "(Antonello et al.) are fitted to all subjects and targets, with 95% bootstrap intervals over "
                 f"{draws.words}.")
    for name, ladder in ladders(points).items():
        rows = reference(ladder, at_most_data=True)
        if rows["params"].nunique() < 2:
            section.text(f"{name}: one model size (N = {rows['params'].iloc[0]:,}), so no law of size; its other "
                         "axes are in the sections below.")
            continue
        if rows["params"].nunique() < 4:
            page.warn(f"{name}: the size laws are fitted to {rows['params'].nunique()} model sizes; fewer than 4 "
                      "leave the saturating law's shape to its start values.")
        per_subject = rows.groupby(["subject", "params"], dropna=False)[SCORE].mean().reset_index()
        drawn = False
        for law in ("power", "loglinear"):
            fit = _guard(section, f"{name}: {law} law", lambda law=law: _fit(rows, law, draws,
                                                                                params="params"))
            if fit is not None:
                section.figure(lambda fit=fit, d=per_subject: figures.scaling_curves(d, "params", SCORE, fit,
                                                                                   "parameters N"),
                               f"{name}: {law} law of r against N")
                section.table(_fit_table(fit))
                drawn = True
                _identified(page, name, fit)
                if law == "loglinear":
                    page.finding(f"{name}, model size: {_gain(fit, 'params')} r per decade of parameters "
                                 f"(log-linear law over {rows['params'].nunique()} sizes, N = "
                                 f"{rows['params'].min():.3g} to {rows['params'].max():.3g}).", rank=1)
        if not drawn:
            section.figure(lambda d=per_subject: figures.scaling_curves(d, "params", SCORE, None, "parameters N"),
                           f"{name}: r against N (no law could be fitted)")


def _depth(page: Page, results: pd.DataFrame, draws: Draws) -> None:
    from ..scaling import depth_trend

    section = page.section("Depth of the best layer")
    section.text("Where in a model the brain is best predicted: each feature model's best layer by mean r, per "
                 "subject, as a relative depth (layer / blocks, 0 the embeddings), at the largest fMRI training "
                 "size, against its parameter count N, and the line depth = c + g·log10 N over models (Hong et "
                 "al. 2024 saw the best layer move earlier as models grow: g < 0). Intervals are 95% bootstrap "
                 f"intervals over {draws.words}, each draw finding every best layer again.")
    try:
        rows = depth_rows(results)
    except ValueError as err:
        section.note(f"{str(err)[0].upper()}{str(err)[1:]}.")
        return
    shown = False
    for name, ladder in ladders(rows).items():
        part = reference(ladder, at_most_data=True)
        if part["params"].nunique() < 2 or part.groupby("model")["layer"].nunique().min() < 2:
            continue
        trend = _guard(section, f"{name}: depth trend", lambda p=part: depth_trend(
            p, score=SCORE, x="params", models=["model", *figures.axis_columns(p)], **draws.law))
        if trend is None:
            continue
        shown = True
        section.figure(lambda t=trend: figures.depth_plot(t), f"{name}: relative depth of the best layer against N")
        low, high = trend.intervals["slope"]
        head = pd.DataFrame([{"model": "trend g (per decade)", "params": None, "depth": trend.slope, "low": low,
                              "high": high}])
        body = trend.models.rename(columns={"x": "params"})[["label", "params", "depth", "low", "high"]]
        section.table(pd.concat([head, body.rename(columns={"label": "model"})], ignore_index=True))
    if not shown:
        section.note("No family has two or more model sizes each scored at two or more layers, so there is no "
                     "depth trend.")


def _training_curves(page: Page, points: pd.DataFrame) -> None:
    """Only for a study whose trainable blocks have ``checkpoints``."""
    if "step" not in points or points["step"].isna().all():
        return
    section = page.section("Training curves")
    section.text("Each trained model's checkpoints (the study's checkpoints: steps) were fitted like the model "
                 "itself, each at its own best layer and the largest fMRI training size: score against the "
                 "training FLOPs spent up to each, one line per model, coloured by its size. The upper envelope "
                 "is the best score each compute budget bought, the curve the compute-optimal frontier "
                 "follows; the joint law above is fitted to every checkpoint too (training data seen so far).")
    trained = points[points["family"].isin([name for name in FAMILIES if FAMILIES[name].train is not None])]
    for family, part in trained.groupby("family"):
        if part["step"].notna().any():
            section.figure(lambda p=part: figures.training_curves(p, SCORE),
                           f"{family}: score against training FLOPs, through each model's checkpoints")


def depth_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The per-target rows a depth trend is fitted on: every layer of every single-space feature model with
    a block count, at each subject's largest fMRI training size. Raises a ValueError for results collected
    before they held ``n_layers``."""
    if "n_layers" not in results or results["n_layers"].isna().all():
        raise ValueError("the results have no n_layers column (a study collected before it was added): rerun "
                         "cortexscale run to collect it again, which refits nothing")
    rows = results[(results["family"] != JOINT) & results["n_layers"].notna() & results["layer"].notna()]
    return figures.largest_fmri(rows)


def _regional(page: Page, points: pd.DataFrame, rois: dict, atlas, draws: Draws) -> None:
    from ..scaling import region_gains, target_gains

    section = page.section("Size law by region")
    section.text("The log-linear law ŝ = c + g·log10 N of each family, per named ROI (fitted to its targets, "
                 f"{draws.words} redrawn) and per target (its own slope over subjects and models, "
                 "subjects redrawn): where in the brain bigger models predict better. Intervals are 95% "
                 "bootstrap intervals, narrow with few subjects: on null data with 8 subjects, 12% of targets "
                 "exclude zero by chance (5% is the nominal rate), so read a map of few subjects as a screen.")
    shown = False
    for name, ladder in ladders(points).items():
        rows = reference(ladder, at_most_data=True)
        if rows["params"].nunique() < 2:
            continue
        shown = True
        if rois:
            table = _guard(section, f"{name}: size law per ROI", lambda r=rows: region_gains(
                r, {"all targets": None, **rois}, score=SCORE, **draws.law))
            if table is not None:
                section.table(table.assign(family=name))
        if rows["subject"].nunique() < 2:
            section.note(f"{name}: one subject, so no per-target interval (it redraws subjects).")
            continue
        gains = _guard(section, f"{name}: size law per target", lambda r=rows: target_gains(
            r, score=SCORE, n_boot=draws.n_boot, seed=draws.seed))
        if gains is None:
            continue
        marked = int(gains["excludes_zero"].sum())
        section.text(f"{name}: {marked} of {int(gains['gain'].notna().sum())} targets have a gain per decade "
                     "whose interval excludes zero.")
        section.figure(lambda g=gains: figures.target_gains_plot(g), f"{name}: gain per decade of N, per target")
        if atlas is not None:
            section.figure(lambda g=gains: figures.gain_map(g, atlas),
                           f"{name}: gain per decade of N on the brain (outlined: interval excludes 0)")
    if not shown:
        section.note("No family has two or more model sizes, so there is no size law by region.")


def _feature_count(page: Page, points: pd.DataFrame, draws: Draws) -> None:
    """The size law at the models' full width beside the same law at each fixed feature count."""
    if "projection" not in points or set(points["projection"].dropna()) <= {schema.UNPROJECTED}:
        return
    section = page.section("Feature-count control: size at a fixed number of features")
    section.text("Wider models give ridge more features, so a size effect can come from the feature count "
                 "alone. Each projected fit maps every layer's features to the same number of columns before "
                 "the delays (srp: a seeded sparse random projection; pca: the top principal axes of that "
                 "fit's training TRs). The log-linear law ŝ = c + g·log10 N of each feature count, at the "
                 "reference rows of 'Scaling with model size', with 95% bootstrap intervals over subjects and "
                 "targets: a gain that vanishes at a fixed count was the feature count's, not the model's.")
    rows = []
    for name, ladder in ladders(points.drop(columns="projection")).items():
        picked = reference(ladder, at_most_data=True).assign(projection=points["projection"])
        fits = {}
        for projection, part in picked.groupby("projection", sort=True):
            fit = _guard(section, f"{name} ({projection}): log-linear law",
                         lambda part=part: _fit(part, "loglinear", draws, params="params"))
            if fit is None:
                continue
            fits[projection] = fit
            low, high = fit.intervals["gain_per_decade_params"]
            rows.append({"models": name, "projection": projection, "sizes": int(part["params"].nunique()),
                         "gain per decade of N": fit.gain_per_decade["params"], "low": low, "high": high})
        if fits:
            fits = dict(sorted(fits.items(), key=lambda item: item[0] != schema.UNPROJECTED))
            per_subject = picked.groupby(["projection", "subject", "params"])[SCORE].mean().reset_index()
            section.figure(lambda d=per_subject, f=fits: figures.projection_plot(d, f, SCORE),
                           f"{name}: r against N at full width and at fixed feature counts")
    if rows:
        section.table(pd.DataFrame(rows))


def _fit(points: pd.DataFrame, law: str, draws: Draws, **axes):
    from ..scaling import fit_law

    return fit_law(points, score=SCORE, law=law, groups="subject", progress=False, **draws.law, **axes)


def _joint(page: Page, points: pd.DataFrame, draws: Draws) -> None:
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
        _frontier(page, section, name, reference(ladder, at_most_data=False), draws)


def _frontier(page: Page, section: Section, name: str, rows: pd.DataFrame, draws: Draws) -> None:
    from ..scaling import compute_optimal, frontier_exponents, iso_flop

    fit = _guard(section, f"{name}: joint law", lambda: _fit(rows, "joint", draws, params="params", data="train_data",
                                                            compute="train_flops"))
    if fit is None:
        return
    section.table(_fit_table(fit))
    section.figure(lambda: figures.grid_heatmap(rows, SCORE), f"{name}: mean r over the grid of N × D")
    section.figure(lambda: figures.law_by_size_plot(rows, fit, "data", SCORE, figures.size_span(rows)),
                   f"{name}: r against training data D, per model size, with the joint law")
    _identified(page, name, fit)
    page.finding(f"{name}, training data: {_gain(fit, 'data')} r per decade of training data, beside "
                 f"{_gain(fit, 'params')} per decade of parameters (joint law).", rank=2)
    low, high = np.log10(rows["train_flops"].min()), np.log10(rows["train_flops"].max())
    budgets = np.logspace(low, high + 1, 5)
    optimal = _guard(section, f"{name}: frontier", lambda: compute_optimal(fit, budgets))
    curves = _guard(section, f"{name}: iso-FLOP curves", lambda: iso_flop(fit, budgets))
    if optimal is not None and curves is not None:
        measured = rows.groupby(["params", "train_data", "subject"])[[SCORE, "train_flops"]].mean()
        measured = measured.groupby(["params", "train_data"]).mean().reset_index().rename(columns={SCORE: "score"})
        section.figure(lambda: figures.frontier_plot(curves, optimal, measured),
                       f"{name}: iso-FLOP curves, the frontier and the measured runs")
        section.table(optimal)
    exponents = _guard(section, f"{name}: frontier exponents", lambda: frontier_exponents(fit))
    if exponents is not None:
        section.table(exponents.reset_index())
        a, b = exponents.loc["a"], exponents.loc["b"]
        page.finding(f"{name}, compute-optimal split: N_opt ∝ C^{a['value']:.2f} [{a['low']:.2f}, {a['high']:.2f}], "
                     f"D_opt ∝ C^{b['value']:.2f} [{b['low']:.2f}, {b['high']:.2f}].", rank=4)


def _fmri_law(page: Page, every: pd.DataFrame, draws: Draws) -> None:
    from ..scaling import extrapolation_check, what_buys_more

    section = page.section("fMRI training data in the joint law: what buys more")
    section.text("The joint law with the fMRI training amount M (TRs) as a third axis, 1 − ŝ = E + A·N^−α "
                 "[+ B·D^−β] + C·M^−γ, fitted to every fMRI size of each model at its best layer. From the best "
                 "measured point it predicts the gain of 2× and 10× model compute (spent at the compute-optimal "
                 "split; 2× and 10× parameters where the models' training data is not swept) against 2× and 10× "
                 f"fMRI data, with 95% bootstrap intervals over {draws.words}: the choice between GPU "
                 "hours and scanner hours. The extrapolation check holds out the largest fMRI size.")
    found = False
    for name, ladder in ladders(every).items():
        rows = reference(ladder, at_most_data=False)
        if rows["params"].nunique() < 2 or rows["n_train_trs"].nunique() < 2:
            continue
        found = True
        axes = {"params": "params", "fmri": "n_train_trs"}
        if "train_data" in rows and rows["train_data"].notna().all() and rows["train_data"].nunique() > 1:
            axes = {"params": "params", "data": "train_data", "fmri": "n_train_trs", "compute": "train_flops"}
        fit = _guard(section, f"{name}: joint law with fMRI data", lambda r=rows, a=axes: _fit(
            r, "joint", draws, **a))
        if fit is None:
            continue
        section.table(_fit_table(fit))
        _identified(page, name, fit)
        page.finding(f"{name}, fMRI training data: {_gain(fit, 'fmri')} r per decade of fMRI training TRs "
                     "(joint law with the fMRI axis).", rank=3)
        keys = [c for c in ("params", "train_data", "n_train_trs") if c in rows]
        per_subject = rows.groupby(["subject", *keys], dropna=False)[SCORE].mean().reset_index()
        section.figure(lambda d=per_subject, f=fit: figures.law_by_size_plot(d, f, "fmri", SCORE,
                                                                             figures.size_span(every)),
                       f"{name}: r against fMRI training data, per model size, with the joint law")
        levers = _guard(section, f"{name}: what buys more", lambda f=fit: what_buys_more(f))
        if levers is not None:
            section.table(levers)
        shown = {k: v for k, v in axes.items() if k != "compute"}
        check = _guard(section, f"{name}: extrapolation in fMRI data", lambda r=rows, a=shown: extrapolation_check(
            r, score=SCORE, groups="subject", hold_out=["fmri"], **a))
        if check is not None:
            section.table(check)
    if not found:
        section.note("No family of this study has two or more model sizes fitted at two or more fMRI sizes, so "
                     "there is no law of fMRI data to fit.")


def _gain(fit, role: str) -> str:
    """A fit's gain per decade of ``role`` with its interval, as text."""
    low, high = fit.intervals[f"gain_per_decade_{role}"]
    return f"{fit.gain_per_decade[role]:+.3f} [{low:+.3f}, {high:+.3f}]"


IDENTIFIED_SPAN = {"alpha": 10.0, "beta": 10.0, "gamma": 10.0}
"""How far (high / low) a positive parameter's interval may span before the summary says the sweep does not
identify it: a factor of 10 for an exponent, of 10^4 (the default) for a coefficient, which trades off with
its exponent and so is wide in any fit."""


def _identified(page: Page, name: str, fit) -> None:
    """Warn, in one line per fit, of the parameters whose interval the sweep leaves too wide to read (a
    frontier built on them inherits that)."""
    loose = []
    for param, value in fit.params.items():
        low, high = fit.intervals[param]
        if np.isfinite(low) and np.isfinite(high) and low > 0 and high / low > IDENTIFIED_SPAN.get(param, 1e4):
            loose.append(f"{param} = {value:.3g} [{low:.3g}, {high:.3g}]")
    if loose:
        over = ", ".join(fit.axes)
        page.warn(f"{name}: the sweep does not identify the {fit.law} law over {over}: {'; '.join(loose)} (95% "
                  "intervals); read what depends on them with care.")


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
                page.finding(f"{name}, extrapolation: refitted without the largest {held}, the {best['law']} law "
                             f"predicts its score off by {best['error']:+.3f} r (measured {best['measured']:.3f}).",
                             rank=5)
        section.table(check.assign(family=name))


def _factors(points: pd.DataFrame) -> list[tuple[str, object]]:
    """Every swept axis but the seed, with its baseline level; None for a numeric axis summarised as a gain
    per decade (the families' size and data axes, and any positive axis of 3 or more values)."""
    roles = roles_of(points)
    out = []
    for factor in figures.axis_columns(points):
        values = points[factor].dropna()
        if factor == "seed" or values.nunique() < 2:
            continue
        numeric = pd.api.types.is_numeric_dtype(values) and bool((values > 0).all())
        if factor in roles.slopes or (numeric and values.nunique() >= 3):
            out.append((factor, None))
        elif factor in roles.baselines and (values == roles.baselines[factor]).any():
            out.append((factor, roles.baselines[factor]))
        else:
            out.append((factor, sorted(values.unique())[0]))
    return out


def _effects(page: Page, points: pd.DataFrame, draws: Draws) -> None:
    from ..scaling import effect_summary, slope_summary

    section = page.section("Effects of the sweep's axes")
    section.text("Each effect is the mean over subjects of the paired difference in score between a level and "
                 "its baseline (or, for numeric axes, the gain per decade within pairs that differ only in that "
                 f"axis), with a 95% bootstrap interval over {draws.words} and a paired sign-flip permutation "
                 "p-value over subjects.")
    points = points[points["family"] != JOINT]
    rows = []
    for factor, baseline in _factors(points):
        pairs = [c for c in figures.axis_columns(points) if c != factor] + ["model"]
        data = points[points[factor].notna()]
        if baseline is None:
            table = _guard(section, f"{factor} slope", lambda f=factor, d=data, p=pairs: slope_summary(
                d, f, score=SCORE, pairs_by=p, **draws.law).assign(level="per decade", baseline=""))
        else:
            table = _guard(section, f"{factor} effect", lambda f=factor, d=data, b=baseline, p=pairs: effect_summary(
                d, f, score=SCORE, baseline=b, pairs_by=p, **draws.law))
        if table is not None:
            rows.append(table)
    if not rows:
        section.note("The sweep has no axis with more than one value to compare.")
        return
    effects = pd.concat(rows, ignore_index=True)
    section.figure(lambda: figures.effects_plot(effects), "effect sizes with 95% bootstrap intervals")
    section.table(effects[["factor", "level", "baseline", "effect", "low", "high", "p_value", "n_units"]])


def _precision(page: Page, results: pd.DataFrame, points: pd.DataFrame, folder: StudyFolder) -> None:
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


def _train_meta(folder: StudyFolder) -> pd.DataFrame:
    """One row per trained feature model (upstream runs left out): its name, axes, precision, time, loss."""
    rows = []
    for meta in folder.finished("train"):
        settings, result = meta["settings"], meta["result"]
        if settings.get("upstream"):
            continue
        axes = settings.get("axes", {})
        rows.append({"model": settings["name"], **axes, "precision": result.get("precision", axes.get("precision")),
                     "train_seconds": result.get("train_seconds"), "val_loss": result.get("val_loss")})
    return pd.DataFrame(rows)


def _two_stage_interval(per_subject: list[np.ndarray], n_boot: int, rng, level: float = 0.95) -> tuple[float, ...]:
    """The mean over subjects of each subject's mean over targets, and its bootstrap interval drawing subjects,
    then targets within each drawn subject."""
    from ..scaling._resample import percentile_interval

    estimate = float(np.mean([values.mean() for values in per_subject]))
    if n_boot == 0:
        return estimate, np.nan, np.nan
    draws = np.empty(n_boot)
    for b in range(n_boot):
        chosen = rng.integers(len(per_subject), size=len(per_subject))
        draws[b] = np.mean([rng.choice(per_subject[u], size=len(per_subject[u])).mean() for u in chosen])
    low, high = percentile_interval(draws, level, estimate)
    return estimate, float(low), float(high)


def _regions(targets, rois: dict) -> dict:
    """All targets, each named ROI, or each target where there are no ROIs and at most 12 targets."""
    if rois:
        return {"all targets": None, **rois}
    names = list(pd.unique(targets))
    return {"all targets": None, **({str(t): [t] for t in names} if len(names) <= 12 else {})}


def _space_table(joint: pd.DataFrame, rois: dict, draws: Draws) -> pd.DataFrame:
    """Per joint encoding and region: mean r, the gain over the best space alone with its interval, and each
    space's r alone, weight and penalty (geometric mean)."""
    rng = np.random.default_rng(draws.seed)
    rows = []
    for encoding, part in joint.groupby("encoding", sort=False):
        part = part.dropna(axis=1, how="all")
        for region, targets in _regions(part["target"], rois).items():
            sub = part if targets is None else part[part["target"].isin(targets)]
            if sub.empty:
                continue
            per_subject = [g["gain_r"].to_numpy(dtype=float) for _, g in sub.groupby("subject")]
            gain, low, high = _two_stage_interval(per_subject, draws.n_boot, rng)
            row = {"encoding": encoding, "method": part["method"].iloc[0], "region": region,
                   "n_targets": sub["target"].nunique(), "r": sub["r"].mean(), "gain_r": gain, "gain_low": low,
                   "gain_high": high}
            for measure in ("r", "weight"):
                row.update({c: sub[c].mean() for c in schema.space_columns(sub, measure).values()})
            row.update({c: float(np.exp(np.log(sub[c]).mean())) for c in schema.space_columns(sub, "alpha").values()})
            rows.append(row)
    return pd.DataFrame(rows)


def _spaces(page: Page, results: pd.DataFrame, rois: dict, draws: Draws) -> None:
    joint = results[results["family"] == JOINT]
    if joint.empty:
        return
    section = page.section("Joint fits: feature spaces together")
    section.text("Each joint fit (banded ridge, stacked regression, or ridge over the spaces side by side) "
                 "against each of its feature spaces fitted alone on the same data, at each subject's largest fMRI "
                 "training size: the gain is the joint fit's r minus the best single space's r, per target, "
                 "averaged over targets and subjects, with a 95% bootstrap interval over subjects and the targets "
                 "within them. Weights are the stacking weights (or banded ridge's band ratios) of each space, "
                 "penalties their geometric mean alpha.")
    table = _guard(section, "joint fits", lambda: _space_table(figures.largest_fmri(joint), rois, draws))
    if table is None or table.empty:
        return
    section.figure(lambda: figures.space_gains(table), "r of each space alone and of the joint fit, per region")
    if schema.space_columns(table, "weight"):
        section.figure(lambda: figures.space_weights(table), "mean weight of each space, per region")
    section.table(table)


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
    table = best.reset_index().sort_values("mean_r", ascending=False)
    section.table(table.head(40))
    top = table.iloc[0]
    label = figures.model_label(top, figures.axis_columns(summary))
    normalised = (f", {top['mean_normalised_r']:.3f} of the noise ceiling" if "mean_normalised_r" in top
                  and np.isfinite(top["mean_normalised_r"]) else "")
    page.finding(f"Best model: {label} (N = {top['params']:.3g}) at layer {top['layer']}, mean r {top['mean_r']:.3f}"
                 f"{normalised} (mean over subjects, largest fMRI training size).")


def _profiles(page: Page, results: pd.DataFrame, summary: pd.DataFrame, points: pd.DataFrame, atlas) -> None:
    section = page.section("Layers, fMRI data and noise ceilings")
    if summary["layer"].nunique() > 1:
        section.figure(lambda: figures.layer_profiles(summary), "score by layer (largest fMRI training size; "
                       "colour: model size; dashes: less training data)")
    else:
        section.text(f"Every model was scored at one layer ({summary['layer'].iloc[0]}), so there is no layer "
                     "profile.")
    if summary["n_train_trs"].nunique() > 1:
        span = figures.size_span(summary)
        for name, ladder in ladders(summary).items():
            rows = reference(ladder, at_most_data=True)
            section.figure(lambda r=rows: figures.data_scaling(r, span=span),
                           f"{name}: score by amount of fMRI training data, per model size (its largest training "
                           "data; seeds and subjects averaged, band ± SD over subjects)")
    section.figure(lambda: figures.normalised_scores(results, figures.size_span(summary)),
                   "ceiling-normalised r per target (r / ceiling), per model size (and training data where it "
                   "varies)")
    if atlas is not None:
        section.figure(lambda: figures.brain_map(points, atlas), "best r per target on the brain")


def _has_group(results: pd.DataFrame) -> bool:
    """Whether the group pseudo-subject sits beside individual subjects (then it is shown apart)."""
    subjects = results["subject"]
    return bool((subjects == GROUP).any() and (subjects != GROUP).any())


def _group(page: Page, results: pd.DataFrame, draws: Draws) -> None:
    section = page.section("The group average, apart")
    section.text(f"The '{GROUP}' pseudo-subject (the mean response of the chosen subjects) alone: its score "
                 "against N per family, with the log-linear law and an interval over its targets.")
    points = model_points(results)
    for name, ladder in ladders(points).items():
        rows = reference(ladder, at_most_data=True)
        if rows["params"].nunique() < 2:
            section.text(f"{name}: one model size, so no law of size.")
            continue
        fit = _guard(section, f"{name}: log-linear law of the group", lambda r=rows: _fit(
            r, "loglinear", draws, params="params"))
        per_model = rows.groupby(["subject", "params"], dropna=False)[SCORE].mean().reset_index()
        section.figure(lambda d=per_model, f=fit: figures.scaling_curves(d, "params", SCORE, f, "parameters N"),
                       f"{name}: the group's r against N")
        if fit is not None:
            section.table(_fit_table(fit))


def _data_warnings(page: Page, results: pd.DataFrame, spec) -> None:
    """Warnings the summary owes a reader: penalties at the edge of their grid (``spec``: the parsed study, see
    :func:`~cortexscale.report.resampling.parse_resolved`), ceilings near zero."""
    grids = {entry.label: list(entry.alpha_grid()) for entry in getattr(spec, "encoding", ())}
    for entry, part in results[results["alpha"].notna()].groupby("encoding") if "encoding" in results else []:
        grid = grids.get(entry)
        if grid is None or len(grid) < 2:
            continue
        low = np.isclose(part["alpha"], min(grid), rtol=1e-6).mean()
        high = np.isclose(part["alpha"], max(grid), rtol=1e-6).mean()
        if max(low, high) > 0.1:
            page.warn(f"encoding {entry!r}: {low:.0%} of fits' targets chose the alpha grid's smallest penalty "
                      f"({min(grid):.3g}) and {high:.0%} its largest ({max(grid):.3g}); where the optimum may lie "
                      "beyond, widen the grid (encoding.alphas).")
    ceilings = results.drop_duplicates(["subject", "target"])["ceiling"] if "ceiling" in results else pd.Series()
    ceilings = ceilings[np.isfinite(ceilings)]
    if len(ceilings) and float(ceilings.median()) < 0.1:
        page.warn(f"the median noise ceiling is {float(ceilings.median()):.3f}: normalised scores divide by a number "
                  "near zero and are unstable.")


def _draws(page: Page, folder: StudyFolder, spec, n_boot: int, seed: int, resample: str | None) -> Draws:
    """The study's bootstrap (:func:`~cortexscale.report.resampling.study_draws`); subjects and targets, with a
    warning, where the blocks it asks for cannot be read."""
    if resample is not None and resample not in RESAMPLES:
        raise ValueError(f"resample must be one of {RESAMPLES}, got {resample!r}")
    try:
        return study_draws(folder, n_boot, seed, resample, None if isinstance(spec, Exception) else spec)
    except ValueError as err:
        page.warn(f"{err}; the intervals redraw subjects and targets instead.")
        return Draws(n_boot, seed)


def _methods(page: Page, spec, folder: StudyFolder, results: pd.DataFrame, draws: Draws) -> None:
    from .methods import methods_text

    section = page.section("Methods, for a paper")
    section.text("Written from the resolved study and its results, to adapt for a methods section (cite the "
                 "datasets and models you used).")
    if isinstance(spec, Exception):
        section.note(f"The study folder's study.yaml could not be read as a study ({spec}), so no methods text.")
        return
    if spec is None:
        section.note("The study folder has no study.yaml, so no methods text.")
        return
    for paragraph in methods_text(spec, results, folder.versions_text(), draws):
        section.text(paragraph)


def _no_results(page: Page, folder: StudyFolder) -> None:
    """The page of a study without a results table: why, from the folder's status."""
    section = page.section("No results yet")
    try:
        counts, failures = folder.status()
    except ValueError:
        counts, failures = {}, []
    fits = counts.get("fit", {})
    if failures:
        first = failures[0]
        section.note(f"The study has no results table because tasks failed: {len(failures)} failed, "
                     f"{fits.get('failed', 0)} of {sum(fits.values())} fits among them. The first: {first['label']}: "
                     f"{first['error']}. cortexscale status {folder.root} --traceback shows each.")
        section.table(pd.DataFrame([{"kind": f["kind"], "task": f["label"], "error": f["error"]} for f in failures]))
    else:
        section.note(f"{folder.root} has no results.parquet: run the study first (cortexscale run); what is done so "
                     f"far: cortexscale status {folder.root}.")


def _about(page: Page, folder: StudyFolder, study: dict | None) -> None:
    import yaml

    section = page.section("The study")
    section.pre(yaml.safe_dump(study, sort_keys=False) if study is not None else "(no study.yaml)")
    versions = folder.versions_text()
    if versions is not None:
        section.pre(versions)


def write_report(study_dir, *, n_boot: int = 300, seed: int = 0, atlas=None, resample: str | None = None) -> Path:
    """Write ``<study_dir>/report/index.html`` from the study's results and return its path.

    ``n_boot``: bootstrap resamples of every fit; ``resample``: what the laws' intervals redraw (subjects,
    blocks or subjects+blocks; default the study's ``scoring.test_blocks.resample`` where it keeps blocks of
    test TRs, else subjects); ``atlas``: the dataset's atlas (targets named
    ``parcel_<label>``) or mask (targets ``voxel_<i>_<j>_<k>``) NIfTI, for a brain map.
    """
    folder = StudyFolder(study_dir)
    resolved = folder.resolved_study()
    study = resolved or {}
    page = Page(f"cortexscale study: {study.get('name', folder.root.name)}", f"Study folder {folder.root.resolve()}.")
    if not (folder.results_path().is_file() and folder.results_path(summary=True).is_file()):
        _no_results(page, folder)
    else:
        results, summary = folder.read_results(), folder.read_results(summary=True)
        group = results[results["subject"] == GROUP] if _has_group(results) else None
        if group is not None:
            results, summary = results[results["subject"] != GROUP], summary[summary["subject"] != GROUP]
        points, spec = model_points(results), parse_resolved(resolved)
        draws = _draws(page, folder, spec, n_boot, seed, resample)
        page.finding(f"Intervals of the laws are 95% percentile intervals over {draws.n_boot} bootstrap resamples "
                     f"of {draws.words}.", rank=9)
        _overview(page, results, summary)
        if group is not None:
            page.sections[-1].note(f"The group average ('{GROUP}', the mean response of the chosen subjects) is a "
                                   "pseudo-subject of another kind than the individuals, its noise averaged down: "
                                   "every law, mean and interval here is over the individual subjects, and the "
                                   "group is shown in its own section.")
        _data_warnings(page, results, spec)
        _model_scaling(page, points, draws)
        _depth(page, results, draws)
        _regional(page, points, study.get("scoring", {}).get("rois") or {}, atlas, draws)
        _feature_count(page, points, draws)
        _joint(page, points, draws)
        _training_curves(page, points)
        _extrapolation(page, points)
        _fmri_law(page, model_points(results, every_fmri=True), draws)
        _effects(page, points, draws)
        _precision(page, results, points, folder)
        _spaces(page, results, study.get("scoring", {}).get("rois") or {}, draws)
        _profiles(page, results, summary, points, atlas)
        if group is not None:
            _group(page, group, draws)
        _methods(page, spec, folder, results, draws)
    _about(page, folder, resolved)
    return page.write(folder.report_dir())
