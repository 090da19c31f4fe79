import numpy as np
import pandas as pd
import pytest

from cortexscale.scaling import effect_summary, slope_summary
from cortexscale.scaling._resample import sign_flip_pvalue

EFFECTS = {"fp32": 0.0, "fp16": -0.01, "bf16": 0.0}


def precision_sweep(subjects=6, targets=30, models=5, noise=0.01, target_sd=0.05, seed=0):
    """Per-target rows of models x precisions; fp16 lowers every score by 0.01."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0.1, 0.3, models)
    index = pd.MultiIndex.from_product([range(subjects), range(models), list(EFFECTS), range(targets)],
                                       names=["subject", "model", "precision", "target"])
    table = index.to_frame(index=False)
    target_offset = rng.normal(0, target_sd, (subjects, targets))
    table["r"] = (base[table["model"]] + table["precision"].map(EFFECTS)
                  + target_offset[table["subject"], table["target"]] + rng.normal(0, noise, len(table)))
    return table


def hidden_sweep(subjects=5, gain=0.02, noise=0.01, seed=0):
    """Per-fit rows over hidden sizes and layer counts, deeper models wider (an unbalanced grid):
    r = 0.1·layers + gain·log10(hidden) + noise."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product([range(subjects), [1, 2, 4], [64, 128, 256, 512]],
                                       names=["subject", "layers", "hidden"])
    table = index.to_frame(index=False)
    table = table[~((table["layers"] == 4) & (table["hidden"] < 256)) & ~((table["layers"] == 1)
                                                                          & (table["hidden"] == 512))]
    table["mean_r"] = 0.1 * table["layers"] + gain * np.log10(table["hidden"]) + rng.normal(0, noise, len(table))
    return table


@pytest.fixture(scope="module")
def precision():
    return effect_summary(precision_sweep(), "precision", score="r", baseline="fp32", pairs_by=["model"],
                          n_boot=300, n_perm=1000)


def test_a_level_that_lowers_every_score_is_found_with_an_exact_p_value(precision):
    fp16 = precision.set_index("level").loc["fp16"]
    assert fp16["low"] <= -0.01 <= fp16["high"] and fp16["high"] < 0
    assert fp16["effect"] == pytest.approx(-0.01, abs=0.002)
    assert fp16["p_value"] == pytest.approx(2 / 64)
    assert (fp16["n_units"], fp16["n_pairs"], fp16["baseline"]) == (6, 30, "fp32")


def test_a_level_without_effect_has_an_interval_around_zero(precision):
    bf16 = precision.set_index("level").loc["bf16"]
    assert bf16["low"] < 0 < bf16["high"] and bf16["high"] - bf16["low"] < 0.01
    assert bf16["p_value"] > 0.05
    assert list(precision.columns) == ["factor", "level", "baseline", "effect", "low", "high", "p_value",
                                       "n_units", "n_pairs"]


def test_only_paired_rows_are_compared():
    table = precision_sweep(noise=0.0)
    table = table[(table["precision"] != "fp16") | (table["model"] >= 3)]
    result = effect_summary(table, "precision", score="r", baseline="fp32", pairs_by="model", n_boot=50)
    fp16 = result.set_index("level").loc["fp16"]
    assert fp16["effect"] == pytest.approx(-0.01, abs=1e-12)
    assert fp16["n_pairs"] == 6 * 2


def test_targets_are_redrawn_jointly_for_both_sides_of_a_pair():
    table = precision_sweep(subjects=1, noise=0.0, target_sd=0.1)
    result = effect_summary(table, "precision", score="r", baseline="fp32", pairs_by=["model"], n_boot=100)
    fp16 = result.set_index("level").loc["fp16"]
    assert fp16["high"] - fp16["low"] < 1e-12
    noisy = precision_sweep(subjects=1, noise=0.02)
    result = effect_summary(noisy, "precision", score="r", baseline="fp32", pairs_by=["model"], n_boot=100)
    assert (result["high"] - result["low"]).min() > 1e-3


def test_without_groups_the_pairs_are_the_units():
    table = precision_sweep(subjects=1)
    result = effect_summary(table, "precision", score="r", baseline="fp32", pairs_by=["model"], groups=None,
                            n_boot=100)
    assert result["n_units"].tolist() == [5, 5]
    assert result.set_index("level").loc["fp16", "p_value"] == pytest.approx(2 / 32)


def test_boolean_factors_compare_against_their_baseline():
    table = precision_sweep(subjects=3, targets=5, noise=0.0)
    table = table[table["precision"] != "bf16"].assign(transfer=lambda t: t["precision"] == "fp32")
    result = effect_summary(table, "transfer", score="r", baseline=False, pairs_by=["model"], n_boot=20)
    assert result["level"].tolist() == [True]
    assert result["effect"].item() == pytest.approx(0.01, abs=1e-12)


def test_slope_is_the_gain_per_decade_within_pairs():
    table = hidden_sweep(subjects=8, noise=0.005)
    result = slope_summary(table, "hidden", score="mean_r", pairs_by=["layers"], n_boot=300)
    row = result.iloc[0]
    assert row["low"] <= 0.02 <= row["high"]
    assert row["effect"] == pytest.approx(0.02, abs=0.004)
    assert row["p_value"] == pytest.approx(2 / 256)
    assert (row["n_units"], row["n_pairs"]) == (8, 24)
    exact = slope_summary(hidden_sweep(noise=0.0), "hidden", score="mean_r", pairs_by=["layers"], n_boot=20)
    assert exact["effect"].item() == pytest.approx(0.02, rel=1e-10)


def test_sign_flips_are_exact_when_few_and_sampled_when_many():
    rng = np.random.default_rng(0)
    assert sign_flip_pvalue(np.array([1.0, 2.0, 3.0, 4.0]), 100, rng) == pytest.approx(2 / 16)
    assert sign_flip_pvalue(np.array([1.0, -1.0, 2.0, -2.0]), 100, rng) == 1.0
    stats = np.full(20, 1.0)
    assert sign_flip_pvalue(stats, 999, rng) == pytest.approx(1 / 1000)


def test_bad_arguments_are_named():
    table = precision_sweep(subjects=2, targets=3)
    with pytest.raises(ValueError, match=r"baseline 'fp64' is not a value of 'precision'"):
        effect_summary(table, "precision", score="r", baseline="fp64", pairs_by=["model"])
    with pytest.raises(ValueError, match=r"pairs_by\[0\]='size'"):
        effect_summary(table, "precision", score="r", baseline="fp32", pairs_by=["size"])
    with pytest.raises(ValueError, match="cannot also be in pairs_by"):
        effect_summary(table, "precision", score="r", baseline="fp32", pairs_by=["precision"])
    unpaired = table[(table["precision"] != "fp16") | (table["subject"] == 0)].copy()
    unpaired.loc[unpaired["precision"] == "fp16", "model"] += 10
    with pytest.raises(ValueError, match=r"no rows of precision='fp16' pair with precision='fp32'"):
        effect_summary(unpaired, "precision", score="r", baseline="fp32", pairs_by=["model"])
    with pytest.raises(ValueError, match=r"column 'hidden' must be positive"):
        slope_summary(hidden_sweep().assign(hidden=0), "hidden", score="mean_r", pairs_by=["layers"])
    one_size = hidden_sweep().query("hidden == 64")
    with pytest.raises(ValueError, match="no \\['layers'\\] group has more than one value of 'hidden'"):
        slope_summary(one_size, "hidden", score="mean_r", pairs_by=["layers"])


@pytest.mark.parametrize("seed, shift", [(8, 1 / 3), (13, -0.02), (14, -0.02)])
def test_a_constant_effect_lies_inside_its_own_interval_and_draws(seed, shift):
    """Every pair differs by the same amount, so every resample gives the effect up to rounding; without a
    bound reaching the estimate these three lost it by 1e-17 to 6e-17, and a bound a rounding error away is a
    negative error bar, which matplotlib refuses."""
    from cortexscale.report import figures

    table = precision_sweep(seed=seed)
    table = table[table["precision"] != "bf16"].copy()
    fp32 = table["precision"] == "fp32"
    table.loc[~fp32, "r"] = table.loc[fp32, "r"].to_numpy() + shift
    effects = effect_summary(table, "precision", score="r", baseline="fp32", pairs_by=["model"], n_boot=50,
                             n_perm=10)
    row = effects.iloc[0]
    assert row["low"] <= row["effect"] <= row["high"] and row["high"] - row["low"] < 1e-12
    assert row["effect"] == pytest.approx(shift, abs=1e-12)
    bars = figures.effects_plot(effects).axes[0].collections[0].get_segments()
    assert len(bars) == 1 and bars[0][0][0] <= row["effect"] <= bars[0][1][0]


def test_percentile_intervals_reach_their_estimate_and_keep_missing_draws_missing():
    from cortexscale.scaling._resample import percentile_interval

    draws = np.full((20, 3), 0.5)
    draws[:, 2] = np.nan
    low, high = percentile_interval(draws, 0.95, estimate=np.array([0.5 + 1e-16, 0.4, 0.7]))
    assert low[0] <= 0.5 + 1e-16 <= high[0] and (low[1], high[1]) == (0.4, 0.5)
    assert np.isnan(low[2]) and np.isnan(high[2])
    assert percentile_interval(draws, 0.95, estimate=np.array([np.nan, 0.5, 0.5]))[0][0] == 0.5
