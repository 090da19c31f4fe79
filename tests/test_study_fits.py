"""The open study layer through `cortexscale run`: every kind of fit and every setting of an encoding entry on
Huth-format stories with their sound, joint fits over feature spaces, responses of pure noise that no fit may
predict, and the stacked speech-language example with its report."""

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cortexscale.cli import EXIT_BAD_INPUT, app
from cortexscale.study import FITS, read_results
from study_fixtures import write_huth_stories, write_tiny_lm, write_tiny_speech_model

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "stacked_speech_language.yaml"
SPACES = [{"model": "speech", "layer": 2, "name": "acoustic"}, {"model": "lm", "layer": 2, "name": "semantic"}]
ENTRIES = [   # every kind of fit under both evaluations, and every value of every setting somewhere
    {"method": "ridge", "name": "ridge-folds", "cv": 3, "evaluation": {"folds": 3}},
    {"method": "ridge", "name": "ridge-boot", "ridge": {"alpha_search": "coarse_to_fine"}, "trim": [4, 2],
     "cv": {"bootstrap": {"n_boots": 5, "chunk_len": 10, "test_fraction": 0.2}}, "scoring": "r2",
     "evaluation": "test-runs"},
    {"method": "ridge", "name": "ridge-joint", "spaces": SPACES, "cv": "runs", "dtype": "fp64", "zscore": False,
     "scoring": "neg_mse", "evaluation": "test-runs"},
    {"method": "ridge", "name": "ridge-joint-folds", "spaces": SPACES, "cv": 3, "evaluation": {"folds": 3}},
    {"method": "banded", "name": "banded", "spaces": SPACES, "banded": {"n_iter": 6, "concentration": [0.5], "seed": 1,
                                                                       "alpha_search": "warm_start"},
     "cv": 3, "evaluation": "test-runs"},
    {"method": "banded", "name": "banded-folds", "spaces": SPACES, "cv": 2, "evaluation": {"folds": 3},
     "banded": {"alpha_search": "coarse_to_fine"}},
    {"method": "stacked", "name": "stacked", "spaces": SPACES, "stacked": {"cv": "runs", "solver": "enumerate"},
     "cv": 3, "evaluation": "test-runs"},
    {"method": "stacked", "name": "stacked-folds", "spaces": SPACES, "cv": 2, "evaluation": {"folds": 3},
     "stacked": {"cv": 3, "solver": "projected_gradient"}},
]
JOINT = [entry["name"] for entry in ENTRIES if "spaces" in entry]


@pytest.fixture(scope="module")
def stories(tmp_path_factory):
    """Four training stories and a test story heard 3 times, 60 TRs each, with their sound; subjects S01 and
    S02 respond to the tones and words, N01 and N02 with pure noise; a tiny HuBERT and a tiny GPT-2."""
    root = tmp_path_factory.mktemp("huth")
    info = write_huth_stories(root / "data", noise_subjects=("N01", "N02"), n_trs=60, per_kind=8)
    return SimpleNamespace(root=root, info=info, speech=write_tiny_speech_model(root / "speech"),
                           lm=write_tiny_lm(root / "lm", layers=2, hidden=32))


def study_of(stories, **changes) -> dict:
    dataset = {"name": "stories", "loader": "huth", "settings": stories.info["settings"]}
    return {"name": "every-fit", "datasets": [dataset],
            "fmri": {"unit": "trs", "sizes": [120, "all"]},
            "models": [{"family": "pretrained", "name": "speech", "source": str(stories.speech), "layers": [1, 2],
                        "audio_window": 4.0},
                       {"family": "pretrained", "name": "lm", "source": str(stories.lm), "layers": [1, 2],
                        "context": [8, 16]}],
            "encoding": ENTRIES, "scoring": {"rois": stories.info["rois"]}, **changes}


def written(folder: Path, study: dict) -> Path:
    path = folder / f"{study['name']}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def every_fit(stories):
    path = written(stories.root, study_of(stories))
    out = stories.root / "every-fit"
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    table = read_results(out)
    table["kind"] = table["target"].str.rstrip("0123456789")
    return SimpleNamespace(path=path, out=out, output=result.output, results=table)


def test_every_kind_of_fit_is_in_the_study():
    assert {entry["method"] for entry in ENTRIES} == set(FITS)


def test_every_entry_and_setting_runs_through_the_command(every_fit):
    table = every_fit.results
    assert "failed 0" in every_fit.output
    fits = table.drop_duplicates(["encoding", "subject", "model", "layer", "fmri_size"])
    counts = fits.groupby("encoding").size()
    assert counts.to_dict() == {**{name: 4 * 2 for name in JOINT}, "ridge-folds": 4 * 2 * 4, "ridge-boot": 4 * 2 * 4}
    signal = table[table["subject"].str.startswith("S")]
    assert np.isfinite(signal["r"]).all() and (signal.groupby("encoding")["r"].mean() > 0.3).all()
    evaluation = fits.groupby("encoding")["evaluation"].unique().map(list).to_dict()
    assert evaluation == {entry["name"]: ["folds-3" if "folds" in str(entry["evaluation"]) else "test-runs"]
                          for entry in ENTRIES}
    trims = fits[fits["encoding"] == "ridge-boot"].groupby("fmri_size")["n_train_trs"].unique()
    assert trims.map(list).to_dict() == {"120": [120], "all": [4 * (60 - 4 - 2)]}
    tested = fits[fits["evaluation"] == "test-runs"]
    assert tested.groupby("encoding")["n_train_trs"].max().drop("ridge-boot").eq(240).all()
    again = runner.invoke(app, ["run", str(every_fit.path), "--out", str(every_fit.out)])
    assert again.exit_code == 0 and "tasks are done; nothing to run" in again.output


def test_joint_fits_carry_each_space_alone_its_weight_and_penalty(every_fit):
    table = every_fit.results
    joint = table[table["encoding"].isin(JOINT)]
    assert (joint["family"] == "joint").all() and joint["layer"].isna().all()
    assert set(joint["spaces"]) == {"speech@2 + lm@2"} and set(joint["model"]) == set(JOINT)
    best = joint[["r[acoustic]", "r[semantic]"]].max(axis=1)
    np.testing.assert_allclose(joint["gain_r"], joint["r"] - best, atol=1e-12)
    single = table[~table["encoding"].isin(JOINT)]
    assert single["spaces"].isna().all() and single["gain_r"].isna().all() and single["layer"].notna().all()
    weighted = joint[joint["method"] != "ridge"]
    np.testing.assert_allclose(weighted["weight[acoustic]"] + weighted["weight[semantic]"], 1.0, atol=1e-9)
    assert ((weighted[["weight[acoustic]", "weight[semantic]"]] >= 0).all().all()
            and (weighted[["alpha[acoustic]", "alpha[semantic]"]] > 0).all().all())
    assert joint.loc[joint["method"] == "ridge", "weight[acoustic]"].isna().all()
    # a space fitted alone inside a joint fit is the same fit as the entry that fits each layer alone
    alone = table[(table["encoding"] == "ridge-folds") & (table["model"] == "speech") & (table["layer"] == 2)]
    inside = table[table["encoding"] == "ridge-joint-folds"]
    merged = alone.merge(inside, on=["subject", "fmri_size", "target"])
    np.testing.assert_allclose(merged["r_x"], merged["r[acoustic]_y"], atol=1e-6)


def test_joint_fits_beat_each_space_where_the_targets_need_both(every_fit):
    """Mixed targets follow the tones and the words: every joint fit beats each space alone on them, and the
    stacking weights go to the space that carries a target's signal."""
    table = every_fit.results
    heard = table[table["subject"].str.startswith("S") & (table["fmri_size"] == "all")]
    means = heard.groupby(["encoding", "kind"])[["r", "r[acoustic]", "r[semantic]", "gain_r"]].mean()
    for name in JOINT:
        mixed = means.loc[(name, "mixed")]
        assert mixed["r"] > max(mixed["r[acoustic]"], mixed["r[semantic]"]) + 0.03, name
        assert mixed["gain_r"] > 0.03, name
    weights = heard[heard["method"] == "stacked"].groupby("kind")[["weight[acoustic]", "weight[semantic]"]].mean()
    assert weights.loc["auditory", "weight[acoustic]"] > 0.9 and weights.loc["language", "weight[semantic]"] > 0.9
    assert 0.2 < weights.loc["mixed", "weight[acoustic]"] < 0.9


NULL_BAND = {"test-runs": 0.06, "folds-3": 0.04}
"""|mean r| of every fit on pure noise: 48 target-subject pairs, a standard error of about 0.02 on the 60 test
TRs and 0.012 on the 240 pooled TRs of the folds (measured: at most 0.026 and 0.012). Training each fold's
model on the fold it scores gives 0.45-0.57, scoring the training runs 0.31-0.48."""


def test_no_fit_predicts_responses_of_pure_noise(every_fit):
    noise = every_fit.results[every_fit.results["subject"].str.startswith("N")]
    means = noise.groupby(["encoding", "evaluation", "fmri_size"])["r"].agg(["mean", "size"])
    assert len(means) == 2 * len(ENTRIES) and (means["size"] >= 48).all()
    for (encoding, evaluation, size), row in means.iterrows():
        assert abs(row["mean"]) < NULL_BAND[evaluation], (encoding, size, row["mean"])


def example_study(stories) -> dict:
    """The stacked example as shipped, on the test's stories and random-weight models: only the data, the
    models' sources and what the toy's size needs are changed."""
    study = yaml.safe_load(EXAMPLE.read_text())
    study["datasets"][0]["settings"] = stories.info["settings"]
    study["fmri"]["sizes"] = [2, "all"]   # 4 training stories
    study["models"][0].update(source=str(stories.speech), layers=[1, 2])
    study["models"][1].update(source=str(stories.lm), layers=[1, 2], context=[8, 16])
    for entry in study["encoding"][1:]:
        for space in entry["spaces"]:
            space["layer"] = 2
    study["encoding"][0]["cv"]["bootstrap"]["chunk_len"] = 20   # stories of 60 TRs, 45 after the trims
    study["scoring"]["rois"] = stories.info["rois"]
    return study


def test_the_stacked_example_runs_and_reports_the_gain_per_region(stories):
    study = example_study(stories)
    original = yaml.safe_load(EXAMPLE.read_text())
    assert study["encoding"][0]["trim"] == original["encoding"][0]["trim"] == [10, 5]
    assert study["encoding"][1]["method"] == "stacked" and study["encoding"][1]["stacked"] == {"cv": 5}
    path, out = written(stories.root, study), stories.root / "example"
    result = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    table = read_results(out)
    heard = table[table["subject"].str.startswith("S") & (table["fmri_size"] == "all")]
    alone = heard[heard["encoding"] == "alone"].groupby(["model", "layer"])["r"].mean()
    for name in ("stacked", "banded"):
        joint = heard[heard["encoding"] == name]
        mixed = joint[joint["target"].str.startswith("mixed")]
        assert mixed["r"].mean() > max(mixed["r[acoustic]"].mean(), mixed["r[semantic]"].mean()) + 0.03, name
        assert joint["r"].mean() > alone.max() + 0.1, name
    assert (table["n_train_trs"][table["fmri_size"] == "all"] == 4 * 45).all()
    report = runner.invoke(app, ["report", str(out), "--n-boot", "50"])
    assert report.exit_code == 0, report.output
    html = (out / "report" / "index.html").read_text()
    joint = html[html.index("<h2>Joint fits: feature spaces together</h2>"):html.index("<h2>Layers, fMRI data")]
    assert joint.count("<img") == 2 and "could not be drawn" not in joint and "not shown" not in joint
    for region in ("all targets", "auditory", "language", "mixed"):
        assert joint.count(f"<td>{region}</td>") == 2   # stacked and banded


BASE = """\
name: bad
datasets:
  - name: stories
    loader: huth
    settings: {settings}
fmri: {{unit: trs, sizes: [all]}}
models:
  - {{family: pretrained, name: speech, source: "{speech}", layers: [1, 2], audio_window: 4.0}}
  - {{family: pretrained, name: lm, source: "{lm}", layers: [1, 2], context: [8, 16]}}
encoding:
  - {{method: ridge, cv: 2}}
  - method: stacked
    spaces: [{{model: speech, layer: 2}}, {{model: lm, layer: 2}}]
"""


@pytest.mark.parametrize("old, new, error", [
    ("{model: speech, layer: 2}", "{model: whisper, layer: 2}",
     r":13: encoding\.1\.spaces\.0\.model: space 'whisper' names model 'whisper', which the study does not have; "
     r"its models are \['lm', 'speech'\]"),
    ("{model: lm, layer: 2}", "{model: lm, layer: 7}",
     r":13: encoding\.1\.spaces\.1\.layer: space 'lm': model 'lm': layer 7 is out of range: the model has layers 0\.\.2"),
    ("{method: ridge, cv: 2}", "{method: ridge, cv: {bootstrap: {chunk_len: 80}}}",
     r":11: encoding\.0\.cv\.bootstrap\.chunk_len: chunks of 80 TRs are longer than the shortest training run of "
     r"subject S01 \(60 TRs after trims\)"),
    ("{method: ridge, cv: 2}", "{method: ridge, cv: {bootstrap: {chunk_len: 20, test_fraction: 0.02}}}",
     r":11: encoding\.0\.cv\.bootstrap: Bootstrap with chunk_len=20 and test_fraction=0.02 cannot split 240 samples"),
    ("{method: ridge, cv: 2}", "{method: ridge, cv: {bootstrap: {test_fraction: 1.5}}}",
     r":11: encoding\.0\.cv\.bootstrap\.test_fraction: Input should be less than 1"),
    ("{method: ridge, cv: 2}", "{method: ridge, cv: 2, trim: [40, 20]}",
     r":11: encoding\.0\.trim: trim \[40, 20\] leaves nothing of run S01/story1 \(60 TRs\)"),
    ("{method: ridge, cv: 2}", "{method: ridge, cv: 2, trim: [-1, 0]}",
     r":11: encoding\.0\.trim\.0: Input should be greater than or equal to 0"),
    ("spaces: [{model: speech, layer: 2}, {model: lm, layer: 2}]", "spaces: [{model: speech, layer: 2}]",
     r":13: encoding\.1\.spaces: method stacked joins feature spaces: give spaces, at least 2 \(1 given\)"),
    ("method: stacked", "method: lasso", r":12: encoding\.1: method must be one of 'banded', 'ridge', 'stacked'"),
    ("method: stacked", "method: banded\n    banded: {n_itr: 5}", r":13: encoding\.1\.banded\.n_itr: unknown field"),
    ("{method: ridge, cv: 2}", "{method: ridge, cv: 2, stacked: {cv: 3}}", r":11: encoding\.0\.stacked: unknown field"),
    ("method: stacked", "method: stacked\n    stacked: {cv: 1}",
     r":13: encoding\.1\.stacked\.cv: Input should be greater than or equal to 2, or Input should be 'runs'\n"),
    ("method: stacked", "method: stacked\n    name: ridge", r"encoding names must be unique; \['ridge'\] appear more "
     r"than once; give each entry a name"),
    ("{model: lm, layer: 2}", "{model: speech, layer: 1}",
     r":13: encoding\.1\.spaces: spaces \['speech'\] appear more than once: give each space its own name"),
    ("audio_window: 4.0}", "audio_window: 4.0, kind: words}",
     r":8: models\.0\.kind: model 'speech' is a speech model \(hubert\): it takes kind audio, not words"),
    ("name: lm, source", "name: lm, kind: audio, source",
     r":9: models\.1\.kind: model 'lm' is not a speech model \(gpt2\)"),
])
def test_bad_encoding_and_model_values_name_the_line_and_field_before_any_compute(stories, tmp_path, old, new, error):
    settings = yaml.safe_dump(stories.info["settings"], default_flow_style=True, width=10_000).strip()
    text = BASE.format(settings=settings, speech=stories.speech, lm=stories.lm)
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert result.output.startswith(f"error: {path}") and re.search(error, result.output), result.output
    assert not (tmp_path / "out" / "tasks").exists()


def test_a_speech_model_needs_sound_and_a_model_no_dataset_can_feed_is_refused(stories, tmp_path):
    from study_fixtures import write_toy_dataset

    sidecar = write_toy_dataset(tmp_path / "text")          # words only, no sound
    text = BASE.replace("loader: huth", "loader: generic").format(settings=f"{{path: {sidecar}}}",
                                                                  speech=stories.speech, lm=stories.lm)
    path = tmp_path / "silent.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_BAD_INPUT
    assert re.search(r":13: encoding\.1\.spaces\.0\.model: model 'speech' cannot take stimuli \['story1', 'story2', "
                     r"'story3'\] of dataset 'stories' \(a pretrained model takes none of its stimuli\)", result.output)
    path.write_text(text.split("  - method: stacked")[0])
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_BAD_INPUT and re.search(
        r":8: models\.0: model 'speech' \(a pretrained model of kind audio\) takes no stimulus of dataset\(s\) "
        r"'stories', so no fit would use it", result.output)
    assert not (tmp_path / "out" / "tasks").exists()


def test_banded_alpha_search_enters_the_fit_key_only_when_it_is_not_the_grid():
    from cortexscale.study.fits.banded import BandedSpec

    spaces = {"spaces": SPACES, "method": "banded"}
    default = BandedSpec.model_validate(spaces).fit_settings()
    assert "alpha_search" not in default["banded"] and default["banded"]["n_iter"] == 20
    grid = BandedSpec.model_validate({**spaces, "banded": {"alpha_search": "grid"}}).fit_settings()
    assert grid == default
    warm = BandedSpec.model_validate({**spaces, "banded": {"alpha_search": "warm_start"}}).fit_settings()
    assert warm["banded"]["alpha_search"] == "warm_start"
