import shutil

import numpy as np
import pytest

from cortexscale.data import ALICE_ROIS, data_root, load_alice
from cortexscale.data.paths import DATA_ENV_VAR

EXPECTED_ROIS = ("LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG")
TEXTGRID_NAME = "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid"


@pytest.fixture(scope="module")
def alice():
    with pytest.warns(UserWarning, match=r"\['s33'\]"):
        return load_alice()


def test_shapes_and_subjects(alice):
    assert alice.responses.shape == (27, 362, 6)
    assert alice.responses.dtype == np.float64
    assert len(alice.subjects) == 27 and alice.n_subjects == 27
    assert "s33" not in alice.subjects
    assert alice.subjects[0] == "s18"
    assert [int(s[1:]) for s in alice.subjects] == sorted(int(s[1:]) for s in alice.subjects)
    assert alice.word_rate_hrf.shape == (27, 362)
    assert alice.sound_power_hrf.shape == (27, 362)
    assert alice.word_counts.shape == (362,)
    assert list(alice.words.columns) == ["onset", "duration", "value"]


def test_rois_and_timing(alice):
    assert tuple(alice.rois) == EXPECTED_ROIS == ALICE_ROIS
    assert alice.tr == 2.0
    assert alice.frame_times[0] == 20.0
    np.testing.assert_allclose(np.diff(alice.frame_times), 2.0)
    assert alice.frame_times.shape == (362,)


def test_no_subject_is_all_zeros(alice):
    assert all(alice.responses[i].any() for i in range(alice.n_subjects))
    assert (alice.responses.std(axis=1) > 0).all()


def test_regressors_agree_across_subjects(alice):
    for name in ("word_rate_hrf", "sound_power_hrf"):
        values = getattr(alice, name)
        assert np.corrcoef(values).min() > 0.999, name


def test_keep_empty_subjects_and_10mm():
    with pytest.warns(UserWarning, match="sound-power file is a copy"):
        data = load_alice("10mm", drop_empty=False)
    assert data.responses.shape == (28, 362, 6)
    s33 = data.subjects.index("s33")
    assert not data.responses[s33].any()
    assert data.resolution == "10mm"


def test_data_root_uses_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path))
    assert data_root() == tmp_path.resolve()
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=f"{DATA_ENV_VAR}.*nowhere"):
        data_root()


def test_data_root_default_falls_back_to_project(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    root = data_root()
    assert (root / "alice").is_dir()
    assert root.name == "data" and root.parent.name == "shared"


def test_bad_root_names_the_path_and_env_var(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_alice(root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "alice" / "alice_data_shared") in message
    assert DATA_ENV_VAR in message


def test_bad_resolution():
    with pytest.raises(ValueError, match="resolution"):
        load_alice("8mm")


def _small_copy(tmp_path, subjects=("s18", "s22")):
    """A two-subject copy of the release in tmp_path (test scratch only, never in the project)."""
    src = data_root() / "alice" / "alice_data_shared"
    dst = tmp_path / "alice" / "alice_data_shared"
    (dst / "6mm").mkdir(parents=True)
    for s in subjects:
        shutil.copy(src / "6mm" / f"{s}-timecourses.txt", dst / "6mm")
        for kind in ("rate", "sndpwr"):
            shutil.copy(src / f"{s}-{kind}.txt", dst)
    (dst.parent / "alice_stim_shared").mkdir()
    shutil.copy(src.parent / "alice_stim_shared" / TEXTGRID_NAME, dst.parent / "alice_stim_shared")
    return dst


def test_wrong_shape_names_file_and_shape(tmp_path):
    dst = _small_copy(tmp_path)
    bad = dst / "6mm" / "s22-timecourses.txt"
    rows = bad.read_text().splitlines()
    bad.write_text("\n".join(rows[:300]) + "\n")
    with pytest.raises(ValueError, match=r"s22-timecourses\.txt has shape \(300, 6\); expected \(362, 6\)"):
        load_alice(root=tmp_path)


def test_missing_regressor_file_is_named(tmp_path):
    dst = _small_copy(tmp_path)
    (dst / "s18-sndpwr.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"s18-sndpwr\.txt"):
        load_alice(root=tmp_path)


def test_small_copy_loads_the_same_values(tmp_path, alice):
    _small_copy(tmp_path)
    small = load_alice(root=tmp_path)
    assert small.subjects == ["s18", "s22"]
    np.testing.assert_array_equal(small.responses, alice.responses[:2])
    np.testing.assert_array_equal(small.word_rate_hrf, alice.word_rate_hrf[:2])
    np.testing.assert_array_equal(small.word_counts, alice.word_counts)


def test_word_counts_are_words_per_scan_window(alice):
    assert len(alice.words) == 2127  # the word count the issue gives for Alice
    edges = np.append(alice.frame_times, alice.frame_times[-1] + alice.tr)
    expected, _ = np.histogram(alice.words["onset"], bins=edges)
    np.testing.assert_array_equal(alice.word_counts, expected)
    assert alice.word_counts.sum() == len(alice.words)


def test_shipped_word_rate_lags_the_word_counts(alice):
    """The shipped regressor is HRF-convolved: it follows the counts by a few seconds, peaking at 4-6 s."""
    counts = alice.word_counts - alice.word_counts.mean()
    shipped = alice.word_rate_hrf.mean(axis=0)
    lags = np.arange(6)
    r = [np.corrcoef(counts[: len(counts) - lag], shipped[lag:])[0, 1] for lag in lags]
    assert lags[int(np.argmax(r))] in (2, 3)
    assert abs(r[0]) < 0.2 < max(r)


def test_missing_textgrid_is_named(tmp_path):
    _small_copy(tmp_path)
    (tmp_path / "alice" / "alice_stim_shared" / TEXTGRID_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=r"word-timing file not found: .*pad_1\.TextGrid"):
        load_alice(root=tmp_path)
