"""The best layer's relative depth against model size: a trend built into synthetic scores is recovered, its
interval holds its estimate, and a study's results carry what it needs (``n_layers``) through to the CLI and
the report."""

import numpy as np
import pandas as pd
import pytest

from cortexscale.scaling import depth_trend

SIZES = (1e6, 1e7, 1e8, 1e9)


def _scores(slope: float, n_layers=(12, 12, 24, 24), subjects: int = 6, targets: int = 40, seed: int = 0):
    """Per-target r of four models whose score peaks at relative depth 0.8 + slope·log10(N / 1e6)."""
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(subjects):
        for n, depth in zip(SIZES, n_layers):
            peak = 0.8 + slope * np.log10(n / 1e6)
            for layer in range(depth + 1):
                r = 0.3 - 2.0 * (layer / depth - peak) ** 2 + rng.normal(0.0, 0.05, targets)
                parts.append(pd.DataFrame({"subject": f"s{s}", "model": f"m{n:.0e}", "params": n, "n_layers": depth,
                                           "layer": layer, "target": np.arange(targets), "r": r}))
    return pd.concat(parts, ignore_index=True)


def test_a_built_in_depth_trend_is_recovered_with_an_interval_that_excludes_zero():
    trend = depth_trend(_scores(-0.1), n_boot=300)
    assert trend.slope == pytest.approx(-0.1, abs=0.015)
    low, high = trend.intervals["slope"]
    assert low <= trend.slope <= high and high < 0
    assert high - low < 0.08
    expected = 0.8 - 0.1 * np.log10(np.array(SIZES) / 1e6)
    assert np.allclose(trend.models["depth"], expected, atol=0.05)
    assert (trend.models["low"] <= trend.models["depth"]).all() and (trend.models["depth"] <= trend.models["high"]).all()
    assert np.allclose(trend.predict(SIZES), expected, atol=0.05)
    assert trend.models["x"].tolist() == list(SIZES)


def test_no_trend_gives_an_interval_around_zero():
    trend = depth_trend(_scores(0.0, seed=1), n_boot=300)
    low, high = trend.intervals["slope"]
    assert abs(trend.slope) < 0.02 and low < 0 < high


def test_the_summary_names_the_slope_and_each_model():
    trend = depth_trend(_scores(-0.1), n_boot=50)
    text = trend.summary()
    assert text.startswith("depth trend of the best layer by 'r'") and "4 models × 6 units; 50 bootstrap" in text
    assert f"{trend.slope:+.4f}" in text and "m1e+09" in text


@pytest.mark.parametrize("change, match", [
    (lambda t: t[t["layer"] == 0], r"model m1e\+06 has one 'layer'; a best layer needs two or more layers"),
    (lambda t: t[t["params"] == 1e6], r"the models have one size \(params = 1e\+06\)"),
    (lambda t: t.drop(columns="n_layers"), r"no column for n_layers='n_layers'"),
    (lambda t: t.assign(model="one"), r"a model has several values of 'params'"),
])
def test_tables_without_a_trend_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        depth_trend(change(_scores(-0.1)), n_boot=10)


def test_a_study_s_depth_trend_through_cortexscale_run_fit_and_the_report(tmp_path):
    """Three tiny LMs of 2, 3 and 4 blocks scored at every layer: the results carry n_layers, ``cortexscale
    fit --law depth`` prints the trend with each model's depth in [0, 1], and the report draws it."""
    from typer.testing import CliRunner

    from cortexscale.cli import app
    from cortexscale.report import write_report
    from cortexscale.study import read_results
    from study_fixtures import toy_study, write_tiny_lm

    models = [{"family": "pretrained", "name": f"lm{k}", "source": str(write_tiny_lm(tmp_path / f"lm{k}", k, seed=k,
                                                                                       hidden=8 * k)),
               "context": [8, 16], "layers": "all"} for k in (2, 3, 4)]
    study = toy_study(tmp_path, models=models, fmri={"unit": "runs", "sizes": [1, 2]})
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out"), "--no-progress"])
    assert ran.exit_code == 0, ran.output
    results = read_results(tmp_path / "out")
    assert results.groupby("model")["n_layers"].unique().map(list).to_dict() == {"lm2": [2], "lm3": [3], "lm4": [4]}
    fitted = runner.invoke(app, ["fit", str(tmp_path / "out"), "--law", "depth", "--n-boot", "50"])
    assert fitted.exit_code == 0 and fitted.output.startswith("depth trend of the best layer by 'r'"), fitted.output
    assert "3 models × 3 units; 50 bootstrap" in fitted.output
    depths = [float(line.split(" depth ")[1].split()[0]) for line in fitted.output.splitlines()
              if line.startswith("  lm")]
    assert len(depths) == 3 and all(0.0 <= d <= 1.0 for d in depths)
    onesize = runner.invoke(app, ["fit", str(tmp_path / "out"), "--law", "depth", "--model", "lm2"])
    assert onesize.exit_code == 2 and "cannot fit the depth trend" in onesize.output and "one size" in onesize.output
    page = write_report(tmp_path / "out", n_boot=20).read_text()
    section = page[page.index("<h2>Depth of the best layer</h2>"):]
    section = section[:section.index("</details>")]
    assert "relative depth of the best layer against N" in section and "<img" in section
    assert "trend g (per decade)" in section
