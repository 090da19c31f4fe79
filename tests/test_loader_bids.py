"""The BIDS loader: fMRIPrep BOLD masked to parcels or voxels, confounds regressed out, z-scored, cached."""

import json
import sys
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cortexscale.data import DATASETS, bids_dataset, load_dataset
from cortexscale.data.bids import BoldSource, regress_out

SHAPE, N_TRS, TR = (6, 6, 6), 30, 1.5
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
AFFINE[:3, 3] = [-6.0, -6.0, -6.0]
SPACE, TASK = "MNI152NLin2009cAsym", "listen"
RUNS = ("1", "2")


def atlas_data():
    labels = np.zeros(SHAPE, np.int16)
    labels[:2] = 1
    labels[2:4, :3] = 2
    labels[4:, :, 4:] = 7
    return labels


def mask_data():
    mask = np.zeros(SHAPE, np.uint8)
    mask[1, 2, 3] = mask[4, 0, 5] = mask[0, 5, 1] = 1
    return mask


def save_image(path, data, affine=AFFINE, tr=None):
    image = nib.Nifti1Image(data, affine)
    if tr is not None:
        image.header.set_zooms((2.0, 2.0, 2.0, tr))
        image.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, path)
    return path


class Study:
    """A BIDS root with fMRIPrep derivatives: 2 subjects x 2 runs, each BOLD = noise + 4 * trans_x."""

    def __init__(self, root):
        self.root = root
        self.derivatives = root / "derivatives" / "fmriprep"
        self.bold, self.confounds = {}, {}
        rng = np.random.default_rng(1)
        for subject in ("01", "02"):
            for run in RUNS:
                self._write_run(rng, subject, run)
        self.atlas = save_image(root / "atlas.nii.gz", atlas_data())
        self.mask = save_image(root / "mask.nii.gz", mask_data())

    def func(self, top, subject):
        return top / f"sub-{subject}" / "func"

    def bold_path(self, subject, run):
        return self.func(self.derivatives, subject) / (
            f"sub-{subject}_task-{TASK}_run-{run}_space-{SPACE}_desc-preproc_bold.nii.gz")

    def _write_run(self, rng, subject, run):
        prefix = f"sub-{subject}_task-{TASK}_run-{run}"
        trans_x = rng.standard_normal(N_TRS)
        bold = 100 + rng.standard_normal((*SHAPE, N_TRS)) + 4 * trans_x
        self.bold[subject, run] = bold.astype(np.float32)
        save_image(self.bold_path(subject, run), self.bold[subject, run], tr=TR)
        fd = np.abs(rng.standard_normal(N_TRS))
        table = pd.DataFrame({"trans_x": trans_x, "framewise_displacement": fd, "csf": rng.standard_normal(N_TRS)})
        self.confounds[subject, run] = table
        written = table.astype(object)
        written.loc[0, "framewise_displacement"] = "n/a"
        written.to_csv(self.func(self.derivatives, subject) / f"{prefix}_desc-confounds_timeseries.tsv", sep="\t",
                       index=False)
        events = pd.DataFrame({"onset": [1.0, 10.0, 20.0], "duration": [2.0, 2.0, 2.0],
                               "trial_type": ["tone", "word", "tone"]})
        self.func(self.root, subject).mkdir(parents=True, exist_ok=True)
        events.to_csv(self.func(self.root, subject) / f"{prefix}_events.tsv", sep="\t", index=False)

    def load(self, **settings):
        settings = {"atlas": self.atlas, "standardize": False, **settings}
        return bids_dataset(self.root, TASK, SPACE, **settings)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return Study(tmp_path_factory.mktemp("bids"))


def test_runs_stimuli_and_timing(study):
    data = load_dataset("bids", root=study.root, task=TASK, space=SPACE, atlas=study.atlas,
                        test_runs=["task-listen_run-2"])
    data.check()
    assert DATASETS["bids"] is bids_dataset
    assert data.subjects == ["sub-01", "sub-02"] and data.targets == ("parcel_1", "parcel_2", "parcel_7")
    assert [run.label for run in data.runs] == ["sub-01/task-listen_run-1", "sub-01/task-listen_run-2",
                                                "sub-02/task-listen_run-1", "sub-02/task-listen_run-2"]
    run = data.runs[1]
    assert (run.tr, run.first_scan_time, run.n_trs, run.split) == (TR, 0.0, N_TRS, "test")
    assert run.stimulus == "sub-01_task-listen_run-2" and data.runs[0].split == "train"
    stimulus = data.stimuli[run.stimulus]
    assert stimulus.modality == "text" and list(stimulus.events["value"]) == ["tone", "word", "tone"]
    assert data.atlas == study.atlas and data.identity.startswith("bids:")


def test_parcel_means_equal_a_hand_computation(study):
    data = study.load()
    labels = atlas_data()
    bold = study.bold["02", "1"].astype(np.float64)
    expected = np.stack([bold[labels == label].mean(axis=0) for label in (1, 2, 7)], axis=1)
    np.testing.assert_allclose(data.runs_of("sub-02")[0].responses(), expected, rtol=1e-5)


def test_confound_regression_removes_a_planted_confound(study):
    trans_x = study.confounds["01", "1"]["trans_x"].to_numpy()
    raw = study.load().runs[0].responses()
    cleaned = study.load(confounds=["trans_x"]).runs[0].responses()
    assert min(abs(np.corrcoef(trans_x, column)[0, 1]) for column in raw.T) > 0.9
    assert max(abs(np.corrcoef(trans_x, column)[0, 1]) for column in cleaned.T) < 1e-4
    np.testing.assert_allclose(cleaned.mean(axis=0), raw.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(cleaned, regress_out(raw.astype(np.float64), trans_x[:, None]), rtol=1e-4)


def test_leading_na_confounds_are_filled_with_zero(study):
    table = study.confounds["01", "1"]
    kept = table[["trans_x", "framewise_displacement"]].to_numpy().copy()
    kept[0, 1] = 0.0
    raw = study.load().runs[0].responses().astype(np.float64)
    cleaned = study.load(confounds=["trans_x", "framewise_displacement"]).runs[0].responses()
    np.testing.assert_allclose(cleaned, regress_out(raw, kept), rtol=1e-4, atol=1e-4)


def test_standardize_z_scores_each_target(study):
    responses = study.load(standardize=True).runs[2].responses()
    np.testing.assert_allclose(responses.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(responses.std(axis=0), 1.0, rtol=1e-5)


def test_voxels_through_a_mask(study):
    data = study.load(atlas=None, mask=study.mask, subjects=["sub-01"])
    data.check()
    assert data.targets == ("voxel_0_5_1", "voxel_1_2_3", "voxel_4_0_5") and data.atlas == study.mask
    bold = study.bold["01", "2"]
    expected = np.stack([bold[0, 5, 1], bold[1, 2, 3], bold[4, 0, 5]], axis=1)
    np.testing.assert_allclose(data.runs[1].responses(), expected, rtol=1e-6)


def test_label_names_from_a_tsv_or_a_list(study, tmp_path):
    tsv = tmp_path / "atlas_dseg.tsv"
    pd.DataFrame({"index": [7, 1, 2], "name": ["insula", "V1", "A1"]}).to_csv(tsv, sep="\t", index=False)
    assert study.load(labels=tsv).targets == ("V1", "A1", "insula")
    assert study.load(labels=["a", "b", "c"]).targets == ("a", "b", "c")
    with pytest.raises(ValueError, match="labels list has 2 names but atlas .* has 3 labels"):
        study.load(labels=["a", "b"])
    pd.DataFrame({"index": [1, 2], "name": ["V1", "A1"]}).to_csv(tsv, sep="\t", index=False)
    with pytest.raises(ValueError, match=r"do not name label\(s\) \[7\]"):
        study.load(labels=tsv)


def test_subject_selection(study):
    assert study.load(subjects=["02"]).subjects == ["sub-02"]
    assert study.load(subjects=["sub-02", "01"]).subjects == ["sub-02", "sub-01"]
    with pytest.raises(ValueError, match=r"subject\(s\) \['sub-05'\] have no matching BOLD runs .* "
                                         r"subjects found: \['sub-01', 'sub-02'\]"):
        study.load(subjects=["05"])


def test_an_atlas_off_the_bold_grid_is_refused_before_masking(study, tmp_path):
    small = save_image(tmp_path / "small.nii.gz", atlas_data()[:5])
    with pytest.raises(ValueError, match=r"atlas .*small.nii.gz \(shape \(5, 6, 6\)\) and BOLD .*sub-01_task-listen"
                                         r"_run-1_space-.*_bold.nii.gz \(shape \(6, 6, 6\) x 30 volumes\) are not on "
                                         "the same grid: their shapes differ"):
        study.load(atlas=small)
    shifted = save_image(tmp_path / "shifted.nii.gz", atlas_data(), affine=AFFINE + np.diag([1.0, 0, 0, 0]))
    with pytest.raises(ValueError, match="their affines differ by up to 1"):
        study.load(atlas=shifted)


def test_missing_files_are_named(tmp_path):
    study = Study(tmp_path)
    events = study.func(study.root, "02") / f"sub-02_task-{TASK}_run-2_events.tsv"
    events.unlink()
    with pytest.raises(FileNotFoundError, match=f"events of run sub-02/task-listen_run-2 not found: {events}"):
        study.load()
    assert study.load(subjects=["01"]).subjects == ["sub-01"]
    confounds = study.func(study.derivatives, "01") / f"sub-01_task-{TASK}_run-1_desc-confounds_timeseries.tsv"
    confounds.unlink()
    with pytest.raises(FileNotFoundError, match=f"confounds of run sub-01/task-listen_run-1 not found: {confounds}"):
        study.load(subjects=["01"], confounds=["csf"])
    with pytest.raises(FileNotFoundError, match="atlas image not found: .*none.nii.gz"):
        study.load(atlas=tmp_path / "none.nii.gz")
    with pytest.raises(FileNotFoundError, match="no preprocessed BOLD files .*task-rest"):
        bids_dataset(study.root, "rest", SPACE, atlas=study.atlas)


@pytest.mark.parametrize("settings, match", [
    (dict(mask="m.nii.gz"), "give exactly one of atlas= .* or mask="),
    (dict(atlas=None), "give exactly one of atlas="),
    (dict(confounds="csf"), "confounds must be a list of column names"),
    (dict(confounds=["csf", "dvars"]), r"have no column\(s\) \['dvars'\]"),
    (dict(modality="video"), "modality must be 'text' or 'audio'"),
    (dict(test_runs=["task-listen_run-9"]), r"test_runs \['task-listen_run-9'\] name no run"),
])
def test_bad_settings_are_refused(study, settings, match):
    with pytest.raises(ValueError, match=match):
        study.load(**settings)


def test_tr_from_the_json_sidecar_over_the_header(tmp_path):
    study = Study(tmp_path)
    sidecar = study.bold_path("01", "1").with_name(study.bold_path("01", "1").name.replace(".nii.gz", ".json"))
    sidecar.write_text(json.dumps({"RepetitionTime": 2.0, "SkullStripped": False}))
    runs = study.load().runs
    assert (runs[0].tr, runs[1].tr) == (2.0, TR)
    sidecar.write_text(json.dumps({"RepetitionTime": 0}))
    with pytest.raises(ValueError, match="RepetitionTime must be a positive number"):
        study.load()


def test_masked_series_are_cached_atomically(tmp_path):
    study = Study(tmp_path)
    run = study.load(cache=True, subjects=["01"]).runs[0]
    assert isinstance(run.source, BoldSource)
    first = run.responses()
    cached = run.source.cache_file
    assert cached.parent == study.derivatives / "cortexscale_cache" and cached.is_file()
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name]
    np.testing.assert_array_equal(np.load(cached), first)
    np.save(cached, np.zeros_like(first))
    assert (run.responses() == 0).all()
    elsewhere = study.load(cache=tmp_path / "mine", subjects=["01"]).runs[0]
    np.testing.assert_array_equal(elsewhere.responses(), first)
    assert elsewhere.source.cache_file.parent == tmp_path / "mine"
    other_atlas = study.load(cache=True, atlas=None, mask=study.mask, subjects=["01"]).runs[0]
    assert other_atlas.source.cache_file != cached and other_atlas.responses().shape == (N_TRS, 3)


def test_masking_is_deferred_to_the_read(tmp_path):
    study = Study(tmp_path)
    run = study.load(subjects=["01"]).runs[0]
    save_image(study.bold_path("01", "1"), np.zeros((*SHAPE, N_TRS), np.float32), tr=TR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (run.responses() == 0).all()


def test_without_nilearn_the_error_names_the_extra(study, monkeypatch):
    monkeypatch.setitem(sys.modules, "nilearn", None)
    with pytest.raises(ImportError, match=r"nilearn is needed .* pip install 'cortexscale\[data\]'"):
        study.load()


def test_without_a_cache_each_run_is_masked_once_per_process_until_its_file_changes(tmp_path, monkeypatch):
    study = Study(tmp_path)
    calls = []
    real = BoldSource._mask
    monkeypatch.setattr(BoldSource, "_mask", lambda self: calls.append(self.bold) or real(self))
    run = study.load(subjects=["01"]).runs[0]
    first = run.responses()
    again = study.load(subjects=["01"]).runs[0].responses()   # a fresh load in the same process
    np.testing.assert_array_equal(first, again)
    assert len(calls) == 1 and not run.source.masked().flags.writeable
    save_image(study.bold_path("01", "1"), np.zeros((*SHAPE, N_TRS), np.float32), tr=TR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (run.responses() == 0).all() and len(calls) == 2


def test_the_memory_keeps_at_most_its_limit_dropping_the_least_recently_read(tmp_path, monkeypatch):
    import cortexscale.data.bids as bids

    study = Study(tmp_path)
    runs = study.load(subjects=["01"]).runs[:2]
    calls = []
    real = BoldSource._mask
    monkeypatch.setattr(BoldSource, "_mask", lambda self: calls.append(self.bold.name) or real(self))
    monkeypatch.setattr(bids, "MEMORY_LIMIT", runs[0].source.shape[0] * runs[0].source.shape[1] * 4)  # one run
    for run in (runs[0], runs[0], runs[1], runs[1], runs[0]):
        run.responses()
    assert calls == [runs[0].source.bold.name, runs[1].source.bold.name, runs[0].source.bold.name]
