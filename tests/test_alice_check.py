import numpy as np
import pandas as pd
import pytest

from cortexscale.alice_check import fold_lengths, main, stimulus_design
from cortexscale.data import ALICE_ROIS


@pytest.fixture(scope="module")
def check_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    table = main(["--out", str(out)])
    return table, out


def test_table_has_one_row_per_roi(check_run):
    table, _ = check_run
    assert list(table["roi"]) == list(ALICE_ROIS)
    assert len(table) == 6


def test_scores_are_positive_and_below_the_ceiling(check_run):
    table, _ = check_run
    r, ceiling = table["r"].to_numpy(), table["ceiling"].to_numpy()
    assert list(table.columns) == ["roi", "r", "reliability", "ceiling", "normalised_r"]
    assert np.isfinite(r).all() and (r > 0).all()
    assert ((ceiling > 0) & (ceiling <= 1)).all()
    assert 0.22 < r.mean() < 0.28  # the demo gives 0.247
    np.testing.assert_allclose(table["ceiling"] ** 2, table["reliability"])
    np.testing.assert_allclose(table["normalised_r"], r / ceiling)
    assert (r < ceiling).all() and (table["normalised_r"] < 1).all()


def test_outputs_are_written(check_run):
    table, out = check_run
    saved = pd.read_csv(out / "table.csv")
    assert list(saved["roi"]) == [*ALICE_ROIS, "mean"]
    np.testing.assert_allclose(saved["r"][:6], table["r"], atol=1e-6)
    np.testing.assert_allclose(saved["r"][6], table["r"].mean(), atol=1e-6)
    report = (out / "report.md").read_text()
    assert "| LATL |" in report and "s33" in report
    assert not list(out.glob(".*.tmp")) and not list(out.glob(".*.png"))
    assert (out / "r_by_roi.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(r_by_roi.png)" in report


def test_folds_match_kfold_and_delays_stay_inside_them():
    folds = fold_lengths(362, 5)
    assert folds.sum() == 362 and len(folds) == 5 and folds.max() - folds.min() <= 1

    rng = np.random.default_rng(0)

    class Stub:
        word_counts = rng.poisson(6, size=362).astype(float)
        sound_power_hrf = rng.normal(size=(3, 362))

    X = stimulus_design(Stub(), (1, 2), folds)
    assert X.shape == (362, 4)
    starts = np.concatenate([[0], np.cumsum(folds)[:-1]])
    np.testing.assert_array_equal(X[starts, :], 0.0)
    np.testing.assert_array_equal(X[starts + 1, 2:], 0.0)
    assert (X[starts + 1, :2] != 0).all()
    # Delay 1 at fold 1's second row is fold 1's first row, z-scored within fold 1.
    fold1 = Stub.word_counts[starts[1] : starts[2]]
    np.testing.assert_allclose(X[starts[1] + 1, 0], (fold1[0] - fold1.mean()) / fold1.std())
