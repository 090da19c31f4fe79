"""The size law by region: per-target gains per decade (all targets at once) and per-ROI laws, against a
synthetic table whose first half of targets gains 0.1 per decade and whose second half gains nothing."""

import numpy as np
import pandas as pd
import pytest

from cortexscale.scaling import fit_law, region_gains, target_gains

SIZES = (1e6, 1e7, 1e8, 1e9)
TARGETS = 40


def _table(subjects: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gain = np.where(np.arange(TARGETS) < TARGETS // 2, 0.1, 0.0)
    parts = []
    for s in range(subjects):
        offset = rng.normal(0.2, 0.05, TARGETS)
        for n in SIZES:
            r = offset + gain * np.log10(n / 1e6) + rng.normal(0.0, 0.02, TARGETS)
            parts.append(pd.DataFrame({"subject": f"s{s}", "model": f"m{n:.0e}", "params": n,
                                       "target": [f"t{t:02d}" for t in range(TARGETS)], "r": r}))
    return pd.concat(parts, ignore_index=True)


def test_each_target_s_gain_is_recovered_and_its_interval_holds_it():
    gains = target_gains(_table(), n_boot=400)
    assert list(gains["target"]) == [f"t{t:02d}" for t in range(TARGETS)]
    half = TARGETS // 2
    assert np.allclose(gains["gain"][:half], 0.1, atol=0.02) and np.allclose(gains["gain"][half:], 0.0, atol=0.02)
    assert ((gains["low"] <= gains["gain"]) & (gains["gain"] <= gains["high"])).all()
    assert gains["excludes_zero"][:half].all()
    assert gains["excludes_zero"][half:].sum() <= 3          # about 5% of null targets


def test_a_target_s_gain_is_the_log_linear_law_fitted_to_it_alone():
    table = _table()
    gains = target_gains(table, n_boot=0).set_index("target")
    alone = fit_law(table[table["target"] == "t03"], score="r", params="params", law="loglinear", n_boot=0,
                    groups="subject", progress=False)
    assert gains.loc["t03", "gain"] == pytest.approx(alone.gain_per_decade["params"], rel=1e-9)
    assert np.isnan(gains["low"]).all()


def test_a_target_missing_a_score_has_no_gain():
    table = _table()
    table.loc[(table["target"] == "t05") & (table["subject"] == "s1") & (table["params"] == 1e7), "r"] = np.nan
    gains = target_gains(table, n_boot=20).set_index("target")
    assert np.isnan(gains.loc["t05", ["gain", "low", "high"]].astype(float)).all()
    assert not gains.loc["t05", "excludes_zero"] and np.isfinite(gains.loc["t06", "gain"])


def test_region_gains_fit_each_roi_s_law():
    table = _table()
    regions = {"all targets": None, "gaining": [f"t{t:02d}" for t in range(20)],
               "flat": [f"t{t:02d}" for t in range(20, 40)]}
    gains = region_gains(table, regions, n_boot=200).set_index("region")
    assert gains["n_targets"].tolist() == [40, 20, 20]
    assert gains.loc["gaining", "gain"] == pytest.approx(0.1, abs=0.01)
    assert gains.loc["flat", "gain"] == pytest.approx(0.0, abs=0.01)
    assert gains.loc["all targets", "gain"] == pytest.approx(0.05, abs=0.01)
    assert gains.loc["gaining", "low"] > 0 and gains.loc["flat", "low"] < 0 < gains.loc["flat", "high"]
    assert ((gains["low"] <= gains["gain"]) & (gains["gain"] <= gains["high"])).all()
    assert gains["excludes_zero"].tolist() == [True, True, False]


@pytest.mark.parametrize("change, match", [
    (lambda t: t[t["params"] == 1e6], r"one value of 'params'; a gain per decade needs two or more model sizes"),
    (lambda t: t[t["subject"] == "s0"], r"one level of 'subject'; an interval over units needs two or more"),
    (lambda t: t.drop(columns="target"), r"no column for target='target'"),
])
def test_tables_without_a_regional_law_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        target_gains(change(_table()), n_boot=10)


def test_a_region_naming_no_target_is_refused():
    with pytest.raises(ValueError, match=r"region 'v1' names no target of the table"):
        region_gains(_table(), {"v1": ["V1"]}, n_boot=10)


def test_the_size_law_by_roi_and_target_through_cortexscale_run_and_fit(tmp_path):
    from typer.testing import CliRunner

    from cortexscale.cli import app
    from study_fixtures import toy_study, write_tiny_lm

    models = [{"family": "pretrained", "name": f"lm{k}", "source": str(write_tiny_lm(tmp_path / f"lm{k}", k, seed=k,
                                                                                       hidden=8 * k)),
               "context": [8, 16], "layers": [k]} for k in (1, 2, 3)]
    study = toy_study(tmp_path, models=models, fmri={"unit": "runs", "sizes": ["all"]},
                      scoring={"rois": {"front": ["t0", "t1"], "back": ["t2", "t3", "t4"]}})
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out"), "--no-progress"]).exit_code == 0
    roi = runner.invoke(app, ["fit", str(tmp_path / "out"), "--by", "roi", "--n-boot", "50"])
    assert roi.exit_code == 0 and roi.output.startswith("log-linear law of 'r' by roi"), roi.output
    assert [line.split()[0] for line in roi.output.splitlines()[1:]] == ["all", "front", "back"]
    target = runner.invoke(app, ["fit", str(tmp_path / "out"), "--by", "target", "--n-boot", "50"])
    assert target.exit_code == 0 and [line.split()[0] for line in target.output.splitlines()[1:]] == [
        "t0", "t1", "t2", "t3", "t4"]
    for line in target.output.splitlines()[1:]:
        gain, low, high = (float(v.strip("[],")) for v in line.split()[1:4])
        assert low <= gain <= high
    bad = runner.invoke(app, ["fit", str(tmp_path / "out"), "--by", "parcel"])
    assert bad.exit_code == 2 and "--by takes roi or target, got 'parcel'" in bad.output
