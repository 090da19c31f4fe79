"""The dataset interface: stimuli on their own clock, runs that point at them, checks that name what is wrong."""

import warnings

import numpy as np
import pandas as pd
import pytest

from cortexscale.data import ALICE_ROIS, DATASETS, Dataset, Run, Stimulus, load_alice, load_dataset


def words(n=20, step=1.0):
    return pd.DataFrame({"onset": np.arange(n) * step, "duration": 0.5, "value": ["word"] * n})


def toy(**run_changes):
    rng = np.random.default_rng(0)
    stimulus = Stimulus("story", "text", words())
    base = dict(subject="s1", name="r1", stimulus="story", tr=2.0, first_scan_time=0.0, n_trs=12,
                source=rng.standard_normal((12, 3)))
    runs = (Run(**{**base, **run_changes}), Run(**{**base, "name": "r2", "split": "test"}))
    return Dataset("toy", ("a", "b", "c"), {"story": stimulus}, runs)


def test_a_good_dataset_passes_and_reads_lazily():
    calls = []

    def read():
        calls.append(1)
        return np.ones((12, 3), np.float64)

    data = toy(source=read)
    assert not calls
    data.check()
    assert data.runs[0].responses().dtype == np.float32 and len(calls) == 2
    assert data.subjects == ["s1"]
    assert [r.name for r in data.runs_of("s1", "test")] == ["r2"]
    np.testing.assert_allclose(data.runs[0].frame_times[:3], [0.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="has no subject 's9'"):
        data.runs_of("s9")


@pytest.mark.parametrize("change, match", [
    (dict(stimulus="other"), r"run s1/r1: stimulus 'other' is not one of the dataset's \['story'\]"),
    (dict(source=np.ones((11, 3))), r"run s1/r1: responses have shape \(11, 3\); expected \(12, 3\)"),
    (dict(source=np.full((12, 3), np.nan)), r"responses hold 36 non-finite value\(s\), the first at index \(0, 0\)"),
    (dict(n_trs=8, source=np.ones((8, 3))), "runs to 19.5 s on its clock, but the scan of 8 TRs of 2 s from 0 s ends "
                                            "at 16 s"),
    (dict(first_scan_time=100.0), "no event of stimulus 'story' falls inside the scan"),
    (dict(repeats_source=np.ones((1, 12, 3))), r"repeats must be \(n_repeats >= 2, n_trs, n_targets\)"),
    (dict(repeats_source=np.ones((2, 12, 2))), r"repeats\[0\] have shape \(12, 2\)"),
])
def test_bad_runs_are_named(change, match):
    with pytest.raises(ValueError, match=match):
        toy(**change).check()


@pytest.mark.parametrize("kwargs, match", [
    (dict(split="val"), "split must be one of"),
    (dict(tr=0.0), "tr must be a positive number"),
    (dict(n_trs=0), "n_trs must be a positive integer"),
])
def test_bad_run_fields_are_named(kwargs, match):
    base = dict(subject="s1", name="r1", stimulus="x", tr=2.0, first_scan_time=0.0, n_trs=3)
    with pytest.raises(ValueError, match=match):
        Run(**{**base, **kwargs})


def test_stimulus_checks():
    with pytest.raises(ValueError, match="modality must be one of"):
        Stimulus("x", "smell", words())
    with pytest.raises(ValueError, match="a video stimulus needs frames="):
        Stimulus("x", "video", words())
    with pytest.raises(ValueError, match="onsets must be sorted"):
        Stimulus("x", "text", words().iloc[::-1])
    assert Stimulus("x", "text", words(4)).end == 3.5


def test_the_registry_names_its_loaders():
    assert "alice" in DATASETS
    with pytest.raises(ValueError, match=r"unknown dataset loader 'nope'; registered loaders: \[.*'alice'"):
        load_dataset("nope")


def test_alice_through_the_loader_equals_load_alice():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        data = load_dataset("alice", resolution="10mm")
        direct = load_alice(resolution="10mm")
    data.check()
    assert data.targets == ALICE_ROIS and len(data.subjects) == 27 and data.subjects == direct.subjects
    run = data.runs_of("s18")[0]
    assert (run.tr, run.first_scan_time, run.n_trs, run.split) == (2.0, 20.0, 362, "train")
    np.testing.assert_array_equal(run.responses(), direct.responses[0].astype(np.float32))
    assert data.stimuli["alice"].modality == "text" and len(data.stimuli["alice"].events) == 2127
    assert data.identity == "alice:10mm"
