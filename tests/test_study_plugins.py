"""Model families and kinds of fit are plugins: a new one is one module's worth of code, registered, and a study
names it like the built-in ones; an unknown one is refused when the study is read."""

import re
import zlib
from typing import Literal

import numpy as np
import pytest
import yaml
from pydantic import Field

from cortexscale.errors import StudyFileError
from cortexscale.report import write_report
from cortexscale.study import FAMILIES, FITS, Family, FitKind, parse_study, register_family, register_fit, run_study
from cortexscale.study.families import Expansion, Extracted, FeatureModel, Roles, grid
from cortexscale.study.fields import ModelSpec
from cortexscale.study.fits import EncodingSpec, FitOutput
from cortexscale.study.fits.base import fit_ridge
from study_fixtures import write_toy_dataset


class BagOfWordsSpec(ModelSpec):
    """Every word a fixed random vector of ``width`` (seeded by the word); ``axes`` over ``width``."""

    family: Literal["bag-of-words"]
    width: int = Field(default=8, gt=0)
    axes: dict[str, list] = {}


def expand(spec: BagOfWordsSpec, study) -> Expansion:
    models = [FeatureModel("bag-of-words", spec.name, {"model": spec.name, "family": "bag-of-words", **point},
                           {"width": point.get("width", spec.width)}, {}, n_layers=1, layers=spec.layers)
              for point in grid(spec.axes)]
    return Expansion([], models)


def features(settings: dict, stimulus, layers, kind, context) -> Extracted:
    width = settings["width"]
    vectors = np.stack([np.random.default_rng(zlib.crc32(str(word).encode())).standard_normal(width)
                        for word in stimulus.events["value"]])
    return Extracted({layer: vectors for layer in layers}, stimulus.events, {"params": float(width)})


class FixedSpec(EncodingSpec):
    """Ridge at one given penalty."""

    method: Literal["fixed"]
    fixed: dict = {"alpha": 100.0}


def fit(train, test, entry: FixedSpec, device) -> FitOutput:
    model, prediction = fit_ridge(train, test, entry.model_copy(update={"alphas": [entry.fixed["alpha"]]}), device)
    return FitOutput(prediction, np.atleast_1d(model.alpha_))


@pytest.fixture
def plugins():
    family = register_family(Family("bag-of-words", BagOfWordsSpec, expand,
                                    lambda model, stimulus: "words" if stimulus.modality == "text" else None,
                                    features, Roles(slopes=("width",))))
    kind = register_fit(FitKind("fixed", FixedSpec, fit))
    yield family, kind
    FAMILIES.remove("bag-of-words")
    FITS.remove("fixed")


def study(sidecar, **model) -> str:
    return yaml.safe_dump({
        "name": "plugins", "datasets": [{"name": "toy", "loader": "generic", "settings": {"path": str(sidecar)}}],
        "models": [{"family": "bag-of-words", "name": "bow", "layers": [1], **model}],
        "encoding": [{"method": "fixed", "fixed": {"alpha": 30.0}, "delays": [1, 2], "cv": 2},
                     {"method": "ridge", "delays": [1, 2], "alphas": [1.0, 10.0, 100.0], "cv": 2}]})


def test_a_family_and_a_kind_of_fit_registered_by_a_plugin_run_and_report(plugins, tmp_path):
    sidecar = write_toy_dataset(tmp_path / "data")
    spec = parse_study(study(sidecar, axes={"width": [4, 8, 16, 64]}))
    ran = run_study(spec, out=tmp_path / "out", progress=False)
    assert ran.summary.ok
    table = ran.results
    assert set(table["family"]) == {"bag-of-words"} and sorted(table["width"].unique()) == [4, 8, 16, 64]
    assert sorted(table["params"].unique()) == [4.0, 8.0, 16.0, 64.0]
    fixed = table[table["method"] == "fixed"]
    assert len(fixed) == 4 * 3 * 5 and (fixed["alpha"] == 30.0).all() and np.isfinite(fixed["r"]).all()
    assert set(table.loc[table["method"] == "ridge", "alpha"]) <= {1.0, 10.0, 100.0}
    html = write_report(tmp_path / "out", n_boot=20).read_text()
    for encoding in ("fixed", "ridge"):   # a ladder per encoding entry, its axis compared as a gain per decade
        assert f"{encoding}: bow: power law of r against N" in html
    assert re.search(r"<td>width</td>\s*<td>per decade</td>", html)


def test_a_plugin_axis_may_not_take_the_name_of_a_results_column(plugins, tmp_path):
    sidecar = write_toy_dataset(tmp_path / "data")
    with pytest.raises(StudyFileError, match=r"<study>:\d+: models\.0\.axes: axis name\(s\) \['normalised_r', 'r'\] "
                                             r"are columns of the results"):
        parse_study(study(sidecar, axes={"r": [1], "normalised_r": [2]}))


def test_an_unregistered_family_or_method_is_refused_when_the_study_is_read(tmp_path):
    assert "bag-of-words" not in FAMILIES and "fixed" not in FITS
    sidecar = write_toy_dataset(tmp_path / "data")
    with pytest.raises(StudyFileError, match=r"models\.0: Input tag 'bag-of-words' found using 'family' does not "
                                             r"match any of the expected tags: 'pretrained', 'videogpt', 'vit'"):
        parse_study(study(sidecar))
    with pytest.raises(StudyFileError, match=r"encoding\.0: method must be one of 'banded', 'ridge', 'stacked'"):
        parse_study(study(sidecar).replace("family: bag-of-words", "family: pretrained\n  source: x"))


def test_a_plugin_must_tag_its_spec_with_its_name():
    with pytest.raises(ValueError, match=r"family 'other': its spec's `family` field must be Literal\['other'\]"):
        register_family(Family("other", BagOfWordsSpec, expand, lambda m, s: None, features))
    with pytest.raises(ValueError, match=r"'joint' names the fits over several feature spaces"):
        register_family(Family("joint", BagOfWordsSpec, expand, lambda m, s: None, features))
    with pytest.raises(ValueError, match=r"a kind of fit named 'ridge' is registered already"):
        register_fit(FitKind("ridge", FixedSpec, fit))
    assert set(FAMILIES) == {"pretrained", "videogpt", "vit"} and set(FITS) == {"ridge", "banded", "stacked"}


def test_every_registered_family_and_kind_is_in_a_shipped_study():
    from pathlib import Path

    from cortexscale.study import load_study

    examples = [load_study(p) for p in sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))]
    assert {m.family for s in examples for m in s.models} == set(FAMILIES)
    assert {e.method for s in examples for e in s.encoding} == set(FITS)

