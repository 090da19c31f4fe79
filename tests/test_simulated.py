"""The simulated dataset: a known signal in every parcel, HRF-convolved, with set SNR, AR(1) noise and a shared
nuisance; test runs repeated so that the noise ceiling is known."""

import numpy as np
import pandas as pd
import pytest

from cortexscale.data import DATASETS, FrameStore, ProceduralGame, SimulatedDataset, load_dataset
from cortexscale.data.simulated import FAMILIES, SOURCES, SimulationSettings, hrf, stimulus_sources
from cortexscale.encoding.preprocessing import zscore_runs

SMALL = dict(subjects=2, parcels=12, train_runs=2, test_runs=2, repeats=4, run_trs=100, size=16)
"""Small enough to render in a second: 2 subjects, 4 runs of 100 scans at TR 2 s (12000 frames of 16 x 16)."""


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("simulated")


@pytest.fixture(scope="module")
def sim(cache):
    return load_dataset("simulated", cache=str(cache), **SMALL)


def noise_of(data, subject):
    """Every presentation's responses minus the signal, stacked (n_presentations, run_trs, parcels)."""
    out = []
    for run in data.runs_of(subject):
        signal = data.signal(subject, run.name)
        for presentation in (run.repeats() if run.split == "test" else run.responses()[None]):
            out.append(presentation - signal)
    return np.stack(out)


def lag1(x):
    """Lag-1 autocorrelation of each column of x (n, k), (k,)."""
    x = x - x.mean(0)
    return (x[1:] * x[:-1]).sum(0) / (x * x).sum(0)


def test_registered_with_runs_stimuli_and_targets(sim, cache):
    assert DATASETS["simulated"] is not None and isinstance(sim, SimulatedDataset)
    sim.check()
    assert sim.subjects == ["sub-01", "sub-02"]
    assert sim.targets == tuple(f"parcel_{p}" for p in range(12))
    runs = sim.runs_of("sub-02")
    assert [(r.name, r.split, r.n_trs, r.tr) for r in runs] == [
        ("train-01", "train", 100, 2.0), ("train-02", "train", 100, 2.0),
        ("test-01", "test", 100, 2.0), ("test-02", "test", 100, 2.0)]
    assert runs[0].responses().shape == (100, 12) and runs[0].repeats() is None
    assert runs[2].repeats().shape == (4, 100, 12)
    np.testing.assert_allclose(runs[2].responses(), runs[2].repeats().mean(0), atol=1e-6)
    store = FrameStore.open(sim.stimuli["test-02"].frames)
    assert len(store) == 4 * 3000 and store.frames.shape[1:] == (16, 16, 3) and store.fps == 15.0
    events = sim.stimuli["test-02"].events
    assert sim.stimuli["test-02"].modality == "video" and len(events) == 3000
    assert events["value"].tolist() == list(range(9000, 12000))
    np.testing.assert_allclose(events["onset"].to_numpy(), np.arange(3000) / 15.0)
    assert sim.sources.shape == (12000, len(SOURCES))


def test_the_video_is_the_game_at_the_stimulus_seed(sim):
    frames, _ = ProceduralGame(seed=1000, size=(16, 16), fps=15.0).render(50, start=3000)
    store = FrameStore.open(sim.stimuli["train-02"].frames)
    np.testing.assert_array_equal(store.frames[3000:3050], frames)


def test_deterministic_from_the_settings_and_the_cache_is_reused(sim, cache, tmp_path, monkeypatch):
    again = load_dataset("simulated", cache=str(tmp_path), **SMALL)
    for a, b in zip(sim.runs, again.runs):
        np.testing.assert_array_equal(a.responses(), b.responses())
    np.testing.assert_array_equal(sim.runs[-1].repeats(), again.runs[-1].repeats())
    other = load_dataset("simulated", cache=str(cache), **{**SMALL, "seed": 1})
    assert not np.allclose(sim.runs[0].responses(), other.runs[0].responses())
    assert other.stimuli["train-01"].frames == sim.stimuli["train-01"].frames

    def no_rendering(*args, **kwargs):
        raise AssertionError("the cached video was rendered again")

    monkeypatch.setattr(ProceduralGame, "render", no_rendering)
    cached = load_dataset("simulated", cache=str(cache), **{**SMALL, "subjects": 40, "seed": 2})
    assert len(cached.subjects) == 40 and len(cached.runs) == 160
    first, last = cached.runs_of("sub-01")[0].responses(), cached.runs_of("sub-40")[0].responses()
    assert not np.allclose(first, last)
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1


def test_signal_has_unit_variance_and_noise_the_set_snr(sim):
    for subject in sim.subjects:
        signal = sim.signal(subject, "train-01")
        np.testing.assert_allclose(signal.var(0), 1.0, rtol=1e-6)
        ratio = noise_of(sim, subject).var(1).mean(0) * sim.snr(subject)
        assert 0.85 < np.median(ratio) < 1.15
        assert np.all((ratio > 0.6) & (ratio < 1.5)), ratio


def test_snr_range_is_log_uniform_and_a_single_value_is_exact(cache):
    wide = load_dataset("simulated", cache=str(cache), **{**SMALL, "parcels": 400, "subjects": 1, "snr": (0.1, 10.0)})
    logs = np.log10(wide.snr("sub-01"))
    assert logs.min() >= -1 and logs.max() <= 1 and abs(np.median(logs)) < 0.15
    fixed = load_dataset("simulated", cache=str(cache), **{**SMALL, "snr": 0.5})
    np.testing.assert_array_equal(fixed.snr("sub-02"), 0.5)


def test_noise_is_ar1_plus_a_shared_nuisance(sim, cache):
    """Lag-1 autocorrelation of the noise: the variance-weighted mix of the two AR(1) coefficients, less the
    small-sample bias (1 + 4 rho) / n of a mean-centred estimate; cross-parcel correlation: the nuisance share."""
    s = sim.settings
    noise = noise_of(sim, "sub-01")
    rho = (1 - s.nuisance) * s.noise_ar + s.nuisance * s.nuisance_ar
    expected = rho - (1 + 4 * rho) / s.run_trs
    assert abs(np.mean([lag1(n) for n in noise]) - expected) < 0.04
    corr = np.mean([np.corrcoef(n.T) for n in noise], axis=0)
    off = np.abs(corr[~np.eye(len(corr), dtype=bool)])
    assert abs(off.mean() - s.nuisance) < 0.05
    white = load_dataset("simulated", cache=str(cache), **{**SMALL, "noise_ar": 0.0, "nuisance": 0.0})
    noise = noise_of(white, "sub-01")
    assert abs(np.mean([lag1(n) for n in noise])) < 0.03
    corr = np.mean([np.corrcoef(n.T) for n in noise], axis=0)
    assert np.abs(corr[~np.eye(len(corr), dtype=bool)]).mean() < 0.03


def test_hrf_shape():
    kernel = hrf(0.1, peak=6.0)
    assert abs(kernel.sum() - 1) < 1e-9
    assert abs(np.argmax(kernel) * 0.1 - 6.0) < 0.15
    assert kernel[int(2 / 0.1)] < 0.1 * kernel.max() and kernel[int(10 / 0.1)] < 0.5 * kernel.max()
    assert kernel[int(15 / 0.1):].min() < -0.05 * kernel.max()           # the undershoot
    assert abs(np.argmax(hrf(0.1, peak=4.5)) * 0.1 - 4.5) < 0.15
    with pytest.raises(ValueError, match="peak"):
        hrf(0.1, peak=-1.0)


def test_responses_lag_the_stimulus_by_the_hrf(sim):
    """The noise-free signal is best explained by the sources of 2-4 scans (4-8 s) before, not of the same scan."""
    s = sim.settings
    per = s.frames_per_run
    run = sim.runs_of("sub-01")[0]
    scans = sim.sources[:per].reshape(s.run_trs, -1, len(SOURCES)).mean(1)
    signal = sim.signal("sub-01", run.name)
    fits = []
    for lag in range(7):
        X = np.column_stack([scans[: s.run_trs - lag], np.ones(s.run_trs - lag)])
        y = signal[lag:]
        residual = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
        fits.append(1 - residual.var(0).mean() / y.var(0).mean())
    assert int(np.argmax(fits)) in (2, 3, 4)
    assert fits[0] < max(fits) - 0.2


def test_repeats_share_the_signal_and_not_the_noise(sim):
    run = sim.runs_of("sub-02", split="test")[0]
    repeats = run.repeats()
    noise = repeats - sim.signal("sub-02", run.name)
    between = np.mean([np.corrcoef(noise[0, :, p], noise[1, :, p])[0, 1] for p in range(12)])
    assert abs(between) < 0.1
    snr = sim.snr("sub-02")
    r = np.array([np.corrcoef(repeats[0, :, p], repeats[1, :, p])[0, 1] for p in range(12)])
    assert abs(np.mean(r - snr / (snr + 1))) < 0.1


def test_noise_ceiling_recovers_the_true_ceiling(sim):
    """The ceiling the study's ceiling stage computes (repeats z-scored per run, cc_max) is within 0.06 of
    sqrt(N snr / (N snr + 1)) on average per subject, 0.2 for every parcel, unbiased to 0.03."""
    from cortexscale.study.protocol import CeilingSettings, DatasetRef, Evaluation
    from cortexscale.study.stages.ceiling import ceiling_of

    errors = []
    for subject in sim.subjects:
        settings = CeilingSettings(dataset=DatasetRef(name="sim", loader="simulated"), subject=subject,
                                   members=[subject], all_subjects=sim.subjects, evaluation=Evaluation(mode="test-runs"))
        estimate, method = ceiling_of(sim, settings)
        assert method == "repeats"
        error = estimate - sim.true_ceiling(subject)
        assert np.abs(error).mean() < 0.06 and np.abs(error).max() < 0.2
        errors.append(error)
    assert abs(np.mean(errors)) < 0.03
    snr = sim.snr("sub-01")
    np.testing.assert_allclose(sim.true_ceiling("sub-01", repeats=1), np.sqrt(snr / (snr + 1)))
    assert np.all(sim.true_ceiling("sub-01") > sim.true_ceiling("sub-01", repeats=1))


def test_true_ceiling_matches_a_noiseless_model_on_the_mean_of_the_repeats(sim):
    subject = "sub-01"
    tests = sim.runs_of(subject, split="test")
    signal = np.concatenate([zscore_runs(sim.signal(subject, r.name)) for r in tests])
    mean = np.concatenate([zscore_runs(r.repeats().mean(0)) for r in tests])
    r = (signal * mean).mean(0)
    assert np.abs(r - sim.true_ceiling(subject)).mean() < 0.06


def test_sources_of_known_frames():
    frames = np.zeros((4, 4, 4, 3), np.uint8)
    frames[1:, :, :2] = 255          # the left half turns white at frame 1
    frames[3, :, :, 0] = 255         # frame 3: red everywhere on top of that
    latents = pd.DataFrame({"scene_cut": [0, 0, 1, 0], "enemy_spawn": [0, 1, 0, 0], "hit": [0, 0, 0, 1],
                            "enemy0_x": [np.nan, 15.0, 4.0, 4.0], "enemy0_y": [np.nan, 3.0, 3.0, 5.0],
                            "enemy1_x": [np.nan, np.nan, 12.0, np.nan], "enemy1_y": [np.nan] * 4})
    src = pd.DataFrame(stimulus_sources(frames, latents), columns=SOURCES)
    np.testing.assert_array_equal(src["enemies"], [0, 1, 2, 1])
    np.testing.assert_array_equal(src["enemies_left"], [0, 0, 1, 1])
    np.testing.assert_array_equal(src["enemies_right"], [0, 1, 1, 0])
    np.testing.assert_array_equal(src["enemies_flying"], [0, 0, 0, 1])
    np.testing.assert_array_equal(src[["scene_cut", "enemy_spawn", "hit"]].sum().to_numpy(), [1, 1, 1])
    np.testing.assert_allclose(src["transient"], [0, 0.5, 0, 0.5 * 0.299], atol=1e-6)
    np.testing.assert_allclose(src["luminance_left_right"], [0, 1, 1, 1 - 0.299], atol=1e-6)
    np.testing.assert_allclose(src["luminance"], [0, 0.5, 0.5, 0.5 + 0.5 * 0.299], atol=1e-6)
    np.testing.assert_allclose(src["red_green"], [0, 0, 0, 0.5], atol=1e-6)
    np.testing.assert_allclose(src["luminance_top_bottom"], 0, atol=1e-6)
    np.testing.assert_allclose(src["contrast"], [0, 1 / 3, 1 / 3, (1 - 0.299) / 3], atol=1e-6)
    following = stimulus_sources(frames[1:2], latents.iloc[:1], previous=frames[0])
    assert following[0, SOURCES.index("transient")] == pytest.approx(0.5)
    assert [n for names in FAMILIES.values() for n in names] == list(SOURCES)


def test_bad_settings_are_named(cache):
    with pytest.raises(ValueError, match="unknown simulated dataset setting.*'parcel'"):
        load_dataset("simulated", cache=str(cache), parcel=3)
    for field, value in [("repeats", 1), ("subjects", 0), ("subjects", "two"), ("seed", True), ("run_trs", 2.5),
                         ("snr", (2.0, 1.0)), ("snr", -1.0), ("snr", "high"), ("noise_ar", 1.0), ("nuisance", 1.5),
                         ("content", 0.8), ("tr", 0.0), ("tr", 0.05), ("hrf_peak", (7, 5))]:
        with pytest.raises(ValueError, match=field):
            SimulationSettings(**{field: value})
    with pytest.raises(ValueError, match="latents"):
        stimulus_sources(np.zeros((3, 4, 4, 3), np.uint8), pd.DataFrame({"hit": [0, 0, 0]}))
