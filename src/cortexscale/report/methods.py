"""A methods paragraph written from a resolved study and its results: data, features, alignment and delays,
encoding models and their penalties, cross-validation and evaluation, noise ceilings, the law forms and their
bootstrap, and the software versions, in prose a user can adapt for a paper's methods section."""

from __future__ import annotations

import json

import pandas as pd

from .resampling import Draws

__all__ = ["methods_text"]


def methods_text(study, results: pd.DataFrame, versions: str | None, draws: Draws) -> list[str]:
    """Paragraphs (plain text) describing ``study`` (a :class:`~cortexscale.study.StudySpec`) as it ran."""
    return [_data(study, results), _features(study), _encoding(study), _laws(draws), _software(versions)]


def _listing(items: list[str]) -> str:
    items = [str(item) for item in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _data(study, results: pd.DataFrame) -> str:
    parts = []
    for spec in study.datasets:
        rows = results[results["dataset"] == spec.name] if "dataset" in results else results
        subjects = sorted(map(str, rows["subject"].unique()))
        targets = rows["target"].nunique()
        parts.append(f"the {spec.name} dataset (loader {spec.loader}; {len(subjects)} subject(s): "
                     f"{_listing(subjects)}; {targets} targets)")
    sizes = ", ".join(map(str, study.fmri.sizes))
    return (f"Data. We fitted encoding models to {_listing(parts)}. The amount of fMRI training data was swept "
            f"over {sizes} ({study.fmri.unit}).")


def _features(study) -> str:
    models = []
    for spec in study.models:
        names = spec.model_names()
        if getattr(spec, "ladder", None):
            models.append(f"the {spec.ladder} ladder ({_listing(names)})")
        elif getattr(spec, "source", None):
            models.append(f"{spec.name} ({spec.source})")
        else:
            axes = "; ".join(f"{k} in {v}" for k, v in getattr(spec, "axes", {}).items())
            models.append(f"a grid of {spec.family} models trained from scratch ({axes or 'one point'})")
    align = study.alignment
    return (f"Features. Stimulus features were taken from {_listing(models)}, at layers {study.layers!s} "
            f"(0 the embeddings), aligned to the fMRI acquisitions by {align.method} interpolation "
            f"(window {align.window}).")


def _encoding(study) -> str:
    lines = []
    for entry in study.encoding:
        grid = entry.alpha_grid()
        spaces = (f" of the feature spaces {_listing([s.label for s in entry.spaces])} together"
                  if entry.spaces else " of each model's layer alone")
        lines.append(f"{entry.method} regression{spaces} ('{entry.label}'), on features delayed by "
                     f"{_listing(entry.delays)} TRs{', z-scored' if entry.zscore else ''}, with a penalty per target "
                     f"chosen from {len(grid)} values between {min(grid):.3g} and {max(grid):.3g} by "
                     f"{_cv(entry.cv)} ({entry.scoring}) and evaluated by {_evaluation(entry)}")
    return ("Encoding models. We fitted " + "; and ".join(lines) + ". Each target's score is the Pearson "
            "correlation r between measured and predicted held-out responses; normalised scores divide r by "
            "the target's noise ceiling, estimated from repeated presentations where the data has them.")


def _cv(cv) -> str:
    if isinstance(cv, int):
        return f"{cv}-fold cross-validation over contiguous blocks of TRs"
    if cv == "runs":
        return "leave-one-run-out cross-validation"
    boot = cv.bootstrap
    return (f"a chunked bootstrap ({boot.n_boots} splits, each holding out {boot.test_fraction:.0%} of the "
            f"training TRs in chunks of {boot.chunk_len})")


def _evaluation(entry) -> str:
    if isinstance(entry.evaluation, dict):
        return f"{entry.evaluation['folds']}-fold cross-validation over runs"
    return "held-out test runs" if entry.evaluation == "test-runs" else "held-out test runs where the data has them"


def _laws(draws: Draws) -> str:
    redrawn = {"subjects": "subjects and, within subjects, targets",
               "blocks": f"{draws.block_words}, one draw shared by every subject (a non-overlapping block "
                         "bootstrap over the test stimulus; subjects and targets kept)",
               "subjects+blocks": f"subjects, targets within subjects and {draws.block_words}, one draw of "
                                  "blocks shared by every subject"}[draws.resample]
    return ("Scaling laws. Per feature model, the best layer (highest mean r) was scored at the largest fMRI "
            "training size. We fitted the log-linear law ŝ = c + g·log10 N (Antonello et al. 2023), the saturating "
            "power law 1 − ŝ = E + A·N^−α and the joint law 1 − ŝ = E + A·N^−α + B·D^−β (+ C·M^−γ with fMRI "
            "data M), the latter with a Huber loss (δ = 1e-3) on log(1 − ŝ) minimised by L-BFGS-B from a grid of "
            "starts (Hoffmann et al. 2022; Gokce & Schrimpf). Intervals are 95% percentile intervals over "
            f"{draws.n_boot} bootstrap resamples of {redrawn}. The per-target laws redraw subjects; the "
            "effects' p-values flip the signs of subjects' paired differences.")


def _software(versions: str | None) -> str:
    if not versions:
        return "Software. cortexscale (the study folder records no versions)."
    try:
        found = json.loads(versions)
    except ValueError:
        return f"Software. {versions.strip()}"
    listed = [f"{'Python' if name == 'python' else name} {version}" for name, version in found.items()
              if isinstance(version, str) and name != "platform"]
    return f"Software. {_listing(listed)}." if listed else "Software. cortexscale."

