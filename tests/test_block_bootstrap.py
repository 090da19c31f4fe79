"""The block bootstrap over test TRs: per-block statistics, intervals that redraw them, and a study that keeps them.

The calibration test builds what makes the bootstrap over subjects too narrow with one test story: every
model's prediction error is a function of the stimulus, so it is the same for every subject who heard it, and
a new story moves every subject's r together. Redrawing subjects cannot see that; redrawing blocks of the
story's TRs can, and its spread of the law's slope should match the spread over fresh stories.
"""

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cortexscale.cli import app
from cortexscale.encoding import (STATISTICS, block_statistics, correlation_score, r2_score, statistics_score,
                                  time_blocks)
from cortexscale.errors import StudyFileError
from cortexscale.report import write_report
from cortexscale.scaling import fit_law
from cortexscale.study import parse_study, plan_study, read_blocks, read_results
from study_fixtures import toy_study, write_tiny_lm

SIZES = (1e6, 1e7, 1e8, 1e9)


# ---------------------------------------------------------------- statistics
def test_blocks_cover_every_row_once_and_never_cross_a_segment():
    blocks = time_blocks([25, 7, 0, 30], 10)
    np.testing.assert_array_equal(blocks, [[0, 10], [10, 25], [25, 32], [32, 42], [42, 52], [52, 62]])
    assert (np.diff(blocks.ravel()) >= 0).all()
    with pytest.raises(ValueError, match="positive integer"):
        time_blocks([10], 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_summed_statistics_give_the_fits_own_scores(dtype):
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((130, 7)).astype(dtype)
    P = (0.4 * Y + rng.standard_normal((130, 7))).astype(dtype)
    stats = block_statistics(Y, P, time_blocks([80, 50], 12))
    assert stats.shape == (10, len(STATISTICS), 7)
    np.testing.assert_allclose(stats[:, 0, 0], [12] * 5 + [20, 12, 12, 12, 14])
    np.testing.assert_allclose(statistics_score(stats.sum(0)), correlation_score(Y, P), atol=1e-6)
    np.testing.assert_allclose(statistics_score(stats.sum(0), "r2"), r2_score(Y, P), atol=1e-5)
    one = block_statistics(Y[:, 0], P[:, 0], [[0, 130]])[0]     # a 1-D pair is one target
    assert statistics_score(one) == pytest.approx(correlation_score(Y[:, 0], P[:, 0]), abs=1e-6)


def test_a_constant_side_scores_nan_and_bad_blocks_are_refused():
    Y = np.tile(np.arange(10.0)[:, None], (1, 2))
    P = np.column_stack([np.ones(10), np.arange(10.0)])
    r = statistics_score(block_statistics(Y, P, [[0, 10]]).sum(0))
    assert np.isnan(r[0]) and r[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="within the 10 rows"):
        block_statistics(Y, P, [[5, 12]])
    with pytest.raises(ValueError, match="'correlation' or 'r2'"):
        statistics_score(np.ones(6), "mse")


# ---------------------------------------------------------------- intervals
def _story(rng, n_trs=400, subjects=6, targets=4, length=10):
    """A results table and its blocks table for one test story heard by every subject: each model's error is
    one time course of the story, shared by every subject and target, smaller for larger models."""
    stimulus = rng.standard_normal(n_trs)
    blocks = time_blocks([n_trs], length)
    rows, block_rows = [], []
    for i, size in enumerate(SIZES):
        P = np.repeat(stimulus[:, None] + rng.standard_normal((n_trs, 1)) * 2.0 / (i + 1), targets, axis=1)
        for subject in range(subjects):
            Y = stimulus[:, None] + 0.5 * rng.standard_normal((n_trs, targets))
            r, stats = correlation_score(Y, P), block_statistics(Y, P, blocks)
            labels = {"subject": f"s{subject}", "model": f"m{i}", "params": size}
            rows += [{**labels, "target": f"t{t}", "r": r[t]} for t in range(targets)]
            for t in range(targets):
                block_rows += [{**labels, "target": f"t{t}", "block": k, **dict(zip(STATISTICS, stats[k, :, t]))}
                               for k in range(len(blocks))]
    return pd.DataFrame(rows), pd.DataFrame(block_rows)


def _slope(table, blocks=None, resample=None, n_boot=0, seed=0):
    return fit_law(table, score="r", params="params", law="loglinear", groups="subject", n_boot=n_boot, seed=seed,
                   blocks=blocks, resample=resample, progress=False)


def test_redrawn_blocks_see_the_stimulus_that_redrawn_subjects_miss():
    rng = np.random.default_rng(1)
    truth = np.std([_slope(_story(rng)[0]).params["slope"] for _ in range(120)])  # over fresh stories
    spread = {"groups": [], "blocks": []}
    for s in range(12):
        table, blocks = _story(rng)
        for resample in spread:
            boot = _slope(table, blocks, resample, n_boot=200, seed=s).boot[:, 1]
            spread[resample].append(np.std(boot))
    ratio = {k: np.mean(v) / truth for k, v in spread.items()}
    assert 0.75 < ratio["blocks"] < 1.3, ratio         # 0.96 here
    assert ratio["groups"] < 0.4, ratio                # 0.21 here: the story's own variability is missed


def test_each_resample_is_named_and_its_interval_holds_the_estimate():
    table, blocks = _story(np.random.default_rng(2), n_trs=200, subjects=3)
    words = {}
    for resample in ("groups", "blocks", "groups+blocks"):
        fit = _slope(table, blocks, resample, n_boot=100)
        low, high = fit.intervals["gain_per_decade_params"]
        assert low <= fit.gain_per_decade["params"] <= high and high > low
        assert fit.block_trs == (None if resample == "groups" else 10)
        words[resample] = fit.summary().splitlines()[1]
    assert "'subject' levels and their targets" in words["groups"] and "blocks" not in words["groups"]
    assert "of blocks of 10 test TRs" in words["blocks"]
    assert "'subject' levels and their targets, and blocks of 10 test TRs" in words["groups+blocks"]
    power = fit_law(table, score="r", params="params", law="power", groups="subject", n_boot=30, blocks=blocks,
                    resample="groups+blocks", progress=False)
    assert power.n_failed < 30 and power.resample == "groups+blocks"


def test_one_subject_and_one_target_still_get_an_interval_from_blocks():
    table, blocks = _story(np.random.default_rng(3), n_trs=200, subjects=1, targets=1)
    assert np.ptp(_slope(table, blocks, "groups", n_boot=50).boot[:, 1]) == pytest.approx(0.0, abs=1e-12)
    assert np.std(_slope(table, blocks, "blocks", n_boot=50).boot[:, 1]) > 0.005


def test_a_block_bootstrap_refuses_what_it_cannot_do():
    table, blocks = _story(np.random.default_rng(4), n_trs=100, subjects=2, targets=2)
    with pytest.raises(ValueError, match="pass blocks="):
        _slope(table, None, "blocks", n_boot=5)
    with pytest.raises(ValueError, match="resample must be one of"):
        _slope(table, blocks, "stories", n_boot=5)
    with pytest.raises(ValueError, match="for \\['r', 'r2'\\]; not for 'normalised_r'"):
        fit_law(table.assign(normalised_r=table["r"]), score="normalised_r", params="params", law="loglinear",
                groups="subject", n_boot=5, blocks=blocks, resample="blocks", progress=False)
    with pytest.raises(ValueError, match="pass groups="):
        fit_law(table, score="r", params="params", law="loglinear", n_boot=5, blocks=blocks,
                resample="groups+blocks", progress=False)
    with pytest.raises(ValueError, match="rows have no test-TR blocks"):
        _slope(table, blocks[blocks["model"] != "m0"], "blocks", n_boot=5)
    with pytest.raises(ValueError, match="do not tell its fits apart"):
        _slope(table.drop(columns="model").assign(params=1e6), blocks.assign(params=1e6), "blocks", n_boot=5)
    shorter = blocks[~((blocks["model"] == "m1") & (blocks["block"] == 9))]
    with pytest.raises(ValueError, match="scored on different test TRs"):
        _slope(table, shorter, "blocks", n_boot=5)


# ---------------------------------------------------------------- through a study
def _with_blocks(root, name, **blocks):
    """The toy study with a third, wider model (three sizes for a law) and blocks of 10 test TRs."""
    path = toy_study(root, name=name, scoring={"test_blocks": {"length": 10, **blocks},
                                               "rois": {"front": ["t0", "t1"], "back": ["t2", "t3", "t4"]}})
    study = yaml.safe_load(path.read_text())
    wide = write_tiny_lm(root / "lm-wide", 2, seed=2, hidden=32)
    study["models"].append({"family": "pretrained", "name": "lm-wide", "source": str(wide), "context": [8, 16],
                            "layers": [1, 2]})
    study["models"][0]["layers"] = [0, 1]                 # two layers of each model, for a depth trend
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def blocks_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("blocks")
    out = root / "out"
    result = CliRunner().invoke(app, ["run", str(_with_blocks(root, "toy-blocks")), "--out", str(out),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    return out


def test_a_study_keeps_each_fits_test_blocks(blocks_study):
    results, blocks = read_results(blocks_study), read_blocks(blocks_study)
    fits = results.drop_duplicates(["subject", "model", "layer", "fmri_size"])
    assert len(blocks) == len(fits) * 5 * 4             # fits x 5 targets x 4 blocks of the 40 test TRs
    assert set(blocks.groupby("block")["n"].unique().explode()) == {10.0}
    keys = ["subject", "model", "layer", "fmri_size", "target"]
    sums = blocks.groupby(keys)[list(STATISTICS)].sum().to_numpy().T
    recomputed = pd.Series(statistics_score(sums), index=blocks.groupby(keys).size().index, name="from_blocks")
    joined = results.set_index(keys).join(recomputed)
    np.testing.assert_allclose(joined["from_blocks"], joined["r"], atol=1e-5)


def test_cortexscale_fit_redraws_what_the_study_or_the_option_says(blocks_study):
    runner = CliRunner()
    base = ["fit", str(blocks_study), "--law", "loglinear", "--n-boot", "40"]
    default = runner.invoke(app, base)
    assert default.exit_code == 0, default.output
    assert "'subject' levels and their targets, and blocks of 10 test TRs" in default.output
    alone = runner.invoke(app, [*base, "--resample", "blocks"])
    assert alone.exit_code == 0 and "resamples of blocks of 10 test TRs" in alone.output
    subjects = runner.invoke(app, [*base, "--resample", "subjects"])
    assert subjects.exit_code == 0 and "test TRs" not in subjects.output
    regions = runner.invoke(app, [*base, "--by", "roi"])
    assert regions.exit_code == 0, regions.output
    assert "resamples of subjects, targets and contiguous blocks of 10 test TRs" in regions.output
    assert "front" in regions.output and "back" in regions.output
    depth = runner.invoke(app, ["fit", str(blocks_study), "--law", "depth", "--n-boot", "40"])
    assert depth.exit_code == 0, depth.output
    assert "40 bootstrap resamples of units and their targets, and blocks of 10 test TRs" in depth.output
    bad = runner.invoke(app, [*base, "--resample", "stories"])
    assert bad.exit_code != 0 and "--resample must be one of subjects, blocks, subjects+blocks" in bad.output


def test_the_report_says_what_its_intervals_redraw(blocks_study):
    html = write_report(blocks_study, n_boot=20).read_text()
    summary = html[html.index('id="summary"'):html.index("<nav>")]
    assert "over 20 bootstrap resamples of subjects, targets and contiguous blocks of 10 test TRs" in summary
    assert "bootstrap intervals over subjects, targets and contiguous blocks of 10 test TRs" in html
    assert "resamples of subjects, targets within subjects and contiguous blocks of 10 test TRs" in html
    assert "per named ROI (fitted to its targets, subjects, targets and contiguous blocks of 10 test TRs" in html
    assert "intervals over subjects, targets and contiguous blocks of 10 test TRs, each draw finding" in html
    html = write_report(blocks_study, n_boot=20, resample="blocks").read_text()
    assert "contiguous blocks of 10 test TRs (subjects and targets kept)" in html


def test_blocks_alone_and_by_folds_through_a_study(tmp_path):
    path = _with_blocks(tmp_path, "toy-folds", resample="blocks")
    study = yaml.safe_load(path.read_text())
    study["encoding"]["evaluation"] = {"folds": 2}
    study["fmri"] = {"unit": "trs", "sizes": [30, "all"]}
    path.write_text(yaml.safe_dump(study))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    blocks = read_blocks(out)
    per_fit = blocks.groupby(["subject", "model", "layer", "fmri_size"])["n"].agg(["size", "sum"])
    assert (per_fit["sum"] == 80 * 5).all()             # every training TR of the 2 stories, scored out of fold
    assert (per_fit["size"] == 8 * 5).all()             # 2 folds of 40 TRs, 4 blocks each
    fitted = CliRunner().invoke(app, ["fit", str(out), "--law", "loglinear", "--n-boot", "20"])
    assert fitted.exit_code == 0 and "resamples of blocks of 10 test TRs" in fitted.output


def test_a_study_without_blocks_has_no_blocks_table_and_says_so(tmp_path):
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["run", str(toy_study(tmp_path)), "--out", str(out), "--no-progress"]).exit_code == 0
    assert read_blocks(out) is None
    result = CliRunner().invoke(app, ["fit", str(out), "--law", "loglinear", "--resample", "blocks"])
    assert result.exit_code != 0 and "keeps none: set scoring.test_blocks" in result.output
    html = write_report(out, n_boot=5, resample="blocks").read_text()
    summary = html[html.index('id="summary"'):html.index("<nav>")]
    assert "keeps none: set scoring.test_blocks" in summary and "resamples of subjects and targets." in summary


@pytest.mark.parametrize("blocks, message", [
    ({"length": 1}, "greater than or equal to 2"),
    ({"length": 30}, "fewer than 2 blocks"),
    ({"length": 10, "resample": "stories"}, "'blocks' or 'subjects\\+blocks'"),
])
def test_bad_test_blocks_are_refused_before_any_compute(tmp_path, blocks, message):
    path = toy_study(tmp_path, scoring={"test_blocks": blocks})
    with pytest.raises(StudyFileError, match=message) as err:
        plan_study(parse_study(path.read_text(), path))
    assert "scoring" in str(err.value) and "test_blocks" in str(err.value)


def test_keeping_blocks_reruns_the_fits_only_and_a_study_without_them_keeps_its_keys(tmp_path):
    keys = lambda plan, kind: {t.label: t.key for t in plan.of_kind(kind)}  # noqa: E731
    path = toy_study(tmp_path)
    base = plan_study(parse_study(path.read_text(), path))
    study = yaml.safe_load(path.read_text())
    study["scoring"] = {"test_blocks": {"length": 10}}
    kept = plan_study(parse_study(yaml.safe_dump(study)))
    for kind in ("features", "ceiling"):
        assert keys(kept, kind) == keys(base, kind)
    assert not set(keys(kept, "fit").values()) & set(keys(base, "fit").values())
    assert all("test_blocks" not in t.settings for t in base.of_kind("fit"))
    study["scoring"]["test_blocks"]["resample"] = "blocks"  # what is redrawn changes no task but collect
    assert keys(plan_study(parse_study(yaml.safe_dump(study))), "fit") == keys(kept, "fit")


def test_collect_writes_a_fits_blocks_a_few_targets_at_a_time(blocks_study, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from cortexscale.study.stages import collect

    monkeypatch.setattr(collect, "_TARGETS", 2)
    out = tmp_path / "out"
    study = _with_blocks(tmp_path, "toy-blocks")
    assert CliRunner().invoke(app, ["run", str(study), "--out", str(out), "--no-progress"]).exit_code == 0
    fits = len(read_results(out, summary=True))
    assert pq.ParquetFile(out / "blocks.parquet").metadata.num_row_groups == fits * 3   # 5 targets: 2 + 2 + 1
    keys = ["subject", "model", "layer", "fmri_size", "target", "block"]
    ours, whole = (read_blocks(folder).sort_values(keys).reset_index(drop=True) for folder in (out, blocks_study))
    pd.testing.assert_frame_equal(ours, whole, check_exact=False, rtol=1e-6)


def test_an_effect_interval_redraws_blocks_and_its_p_value_still_flips_subjects():
    from cortexscale.scaling import effect_summary, slope_summary

    table, blocks = _story(np.random.default_rng(5), n_trs=200, subjects=4)
    table, blocks = (t.assign(precision=np.where(t["model"].isin(["m0", "m2"]), "fp32", "bf16"),
                              pair=t["model"].map({"m0": 0, "m1": 0, "m2": 1, "m3": 1})) for t in (table, blocks))
    effects = {resample: effect_summary(table, "precision", score="r", baseline="fp32", pairs_by="pair",
                                        n_boot=200, n_perm=100, blocks=blocks, resample=resample).iloc[0]
               for resample in ("groups", "blocks", "groups+blocks")}
    assert len({round(e["effect"], 12) for e in effects.values()}) == 1
    assert len({e["p_value"] for e in effects.values()}) == 1
    for e in effects.values():
        assert e["low"] <= e["effect"] <= e["high"]
    width = {k: e["high"] - e["low"] for k, e in effects.items()}
    assert width["blocks"] > 1.5 * width["groups"], width  # 2.1x here (2-4x over seeds): the errors are the story's
    slope = slope_summary(table, "params", score="r", pairs_by="precision", n_boot=100, n_perm=10, blocks=blocks,
                          resample="blocks").iloc[0]
    assert slope["low"] <= slope["effect"] <= slope["high"]
