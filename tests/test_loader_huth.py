"""The Huth-lab loader: HDF5 responses per subject and story, TextGrid words per story, sound files per story,
trims and repeats."""

import json
import wave

import h5py
import numpy as np
import pytest

from cortexscale.data import DATASETS, huth_dataset, load_dataset
from study_fixtures import textgrid

N_TRS, N_VOXELS, TR = 12, 4, 2.0


class Stories:
    """Two subjects, train stories alpha and beta, a test story gamma heard 3 times (a 3-D array)."""

    def __init__(self, root, voxels=None):
        self.root = root
        self.arrays = {}
        rng = np.random.default_rng(2)
        for subject in ("S1", "S2"):
            n = (voxels or {}).get(subject, N_VOXELS)
            for story in ("alpha", "beta"):
                self.write(subject, story, rng.standard_normal((N_TRS, n)))
            self.write(subject, "gamma", rng.standard_normal((3, N_TRS, n)))
        for story in ("alpha", "beta", "gamma"):
            self.grid(story, [(1.0 + 1.5 * i, 1.5 + 1.5 * i, f"{story}{i}") for i in range(12)], 20.0)

    def write(self, subject, story, values, name="data", file=None):
        folder = self.root / "preprocessed_data" / subject
        folder.mkdir(parents=True, exist_ok=True)
        with h5py.File(folder / (file or f"{story}.hf5"), "w") as handle:
            handle[name] = values
        self.arrays[subject, file or story] = values

    def grid(self, story, words, xmax):
        folder = self.root / "TextGrids"
        folder.mkdir(exist_ok=True)
        (folder / f"{story}.TextGrid").write_text(textgrid(words, xmax))

    def sounds(self, folder, seconds=18.0, suffix=".wav", rate=8000):
        """A silent sound file per story in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        for story in ("alpha", "beta", "gamma"):
            with wave.open(str(folder / f"{story}{suffix}"), "wb") as handle:
                handle.setnchannels(1)
                handle.setsampwidth(2)
                handle.setframerate(rate)
                handle.writeframes(np.zeros(int(seconds * rate), "<i2").tobytes())
        return folder

    def load(self, **settings):
        return huth_dataset(self.root, **{"train_stories": ["alpha", "beta"], "test_stories": ["gamma"],
                                          **settings})


@pytest.fixture
def stories(tmp_path):
    return Stories(tmp_path)


def test_stories_become_runs_with_their_shapes(stories):
    data = load_dataset("huth", root=stories.root, train_stories=["alpha", "beta"], test_stories=["gamma"])
    data.check()
    assert DATASETS["huth"] is huth_dataset
    assert data.subjects == ["S1", "S2"] and data.targets == ("v0", "v1", "v2", "v3")
    assert [(r.label, r.split) for r in data.runs_of("S2")] == [("S2/alpha", "train"), ("S2/beta", "train"),
                                                               ("S2/gamma", "test")]
    run = data.runs[0]
    assert (run.stimulus, run.tr, run.first_scan_time, run.n_trs) == ("alpha", TR, 0.0, N_TRS)
    assert run.responses().shape == (N_TRS, N_VOXELS) and run.repeats() is None
    np.testing.assert_allclose(data.runs[4].responses(), stories.arrays["S2", "beta"].astype(np.float32))
    words = data.stimuli["beta"].events
    assert list(words["value"][:2]) == ["beta0", "beta1"] and len(words) == 12
    np.testing.assert_allclose(words["onset"][:2], [1.0, 2.5])
    assert data.identity.startswith("huth:")


def test_a_repeated_story_gives_its_mean_and_its_repeats(stories):
    run = stories.load().runs_of("S1", "test")[0]
    gamma = stories.arrays["S1", "gamma"]
    np.testing.assert_allclose(run.responses(), gamma.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(run.repeats(), gamma.astype(np.float32))


def test_repeats_from_several_files(stories):
    rng = np.random.default_rng(3)
    reps = [rng.standard_normal((N_TRS, N_VOXELS)) for _ in range(2)]
    for subject in ("S1", "S2"):
        stories.write(subject, "delta", reps[0].mean() + reps[1])
        for i, values in enumerate(reps):
            stories.write(subject, "delta", values, file=f"delta_rep{i}.hf5")
    stories.grid("delta", [(1.0, 1.5, "one"), (4.0, 4.5, "two")], 10.0)
    data = stories.load(test_stories=["delta"], repeats="{story}_rep*.hf5")
    data.check()
    np.testing.assert_allclose(data.runs_of("S1", "test")[0].repeats(), np.stack(reps).astype(np.float32))
    assert all(run.repeats() is None for run in data.runs if run.split == "train")
    (stories.root / "preprocessed_data" / "S2" / "delta_rep1.hf5").unlink()
    with pytest.raises(ValueError, match=r"subject S2, story 'delta': the repeats pattern .* finds one file"):
        stories.load(test_stories=["delta"], repeats="{story}_rep*.hf5")
    for i, values in enumerate(reps):
        stories.write("S1", "gamma", values, file=f"gamma_rep{i}.hf5")
    with pytest.raises(ValueError, match="responses already hold repeats .* the repeats pattern .* finds 2 more files"):
        stories.load(repeats="{story}_rep*.hf5", subjects=["S1"])


def test_responses_are_read_on_access(stories):
    data = stories.load()
    with h5py.File(stories.root / "preprocessed_data" / "S1" / "alpha.hf5", "r+") as handle:
        handle["data"][...] = 5.0
    assert (data.runs[0].responses() == 5.0).all()


def test_trimming_drops_scans_and_moves_the_first_scan(stories):
    data = stories.load(first_scan_time=-4.0, trim_start=2, trim_end=1)
    data.check()
    run = data.runs_of("S1")[1]
    assert (run.n_trs, run.first_scan_time) == (N_TRS - 3, -4.0 + 2 * TR)
    np.testing.assert_allclose(run.frame_times[:2], [0.0, 2.0])
    np.testing.assert_allclose(run.responses(), stories.arrays["S1", "beta"][2:-1].astype(np.float32))
    test = data.runs_of("S1", "test")[0]
    assert test.repeats().shape == (3, N_TRS - 3, N_VOXELS)
    np.testing.assert_allclose(test.responses(), stories.arrays["S1", "gamma"][:, 2:-1].mean(axis=0), atol=1e-6)
    with pytest.raises(ValueError, match=r"subject S1, story 'alpha': .*alpha.hf5 has 12 TRs, too few to trim 8 at "
                                         "the start and 4 at the end"):
        stories.load(trim_start=8, trim_end=4)


def test_a_story_shorter_than_its_textgrid_fails_the_check(stories):
    stories.write("S2", "beta", np.ones((5, N_VOXELS)))
    data = stories.load()
    assert data.runs_of("S2")[1].n_trs == 5
    with pytest.raises(ValueError, match=r"run S2/beta: stimulus 'beta' runs to 18 s on its clock, but the scan of "
                                         r"5 TRs of 2 s from 0 s ends at 10 s"):
        data.check()


def test_missing_files_are_named(stories):
    missing = stories.root / "preprocessed_data" / "S2" / "beta.hf5"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=f"subject S2, story 'beta': responses not found: {missing}"):
        stories.load()
    assert len(stories.load(subjects=["S1"]).runs) == 3
    (stories.root / "TextGrids" / "gamma.TextGrid").unlink()
    with pytest.raises(FileNotFoundError, match="TextGrid of story 'gamma' not found: .*gamma.TextGrid"):
        stories.load(subjects=["S1"])
    with pytest.raises(FileNotFoundError, match=r"subject folder\(s\) \['S9'\] not found"):
        stories.load(subjects=["S9"])
    with pytest.raises(ValueError, match="subject S1, story 'alpha': .*alpha.hf5 has no dataset 'resp'"):
        stories.load(subjects=["S1"], dataset="resp", test_stories=None)


def test_story_lists_and_target_names_from_files(stories, tmp_path):
    (tmp_path / "train.txt").write_text("beta\n\nalpha\n")
    (tmp_path / "voxels.txt").write_text("a\nb\nc\nd\n")
    data = stories.load(train_stories=tmp_path / "train.txt", test_stories=None, target_names=tmp_path / "voxels.txt")
    assert [r.name for r in data.runs_of("S1")] == ["beta", "alpha"] and data.targets == ("a", "b", "c", "d")
    assert [r.split for r in stories.load(stories=["gamma"], train_stories=None, test_stories=None).runs] == [
        "train", "train"]
    (tmp_path / "voxels.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="target_names lists 2 names; the responses have 4 voxels"):
        stories.load(target_names=tmp_path / "voxels.txt")


@pytest.mark.parametrize("settings, match", [
    (dict(stories=["alpha"]), "give stories= .* or train_stories=/test_stories=, not both"),
    (dict(train_stories=None, test_stories=None), "no stories"),
    (dict(test_stories=["alpha"]), r"stories \['alpha'\] are both train and test stories"),
    (dict(train_stories=["alpha", "alpha"]), r"train_stories: the list names \['alpha'\] more than once"),
    (dict(trim_start=-1), "trim_start must be a non-negative whole number"),
    (dict(tr=0), "tr must be a positive number"),
    (dict(subjects="S1"), "subjects must be a list"),
])
def test_bad_settings_are_refused(stories, settings, match):
    with pytest.raises(ValueError, match=match):
        stories.load(**settings)


def test_subjects_with_different_voxel_counts_are_refused(tmp_path):
    stories = Stories(tmp_path, voxels={"S2": 6})
    with pytest.raises(ValueError, match=r"differ in their number of voxels \(4 voxels in \['S1/alpha'.*6 voxels "
                                         r"in \['S2/alpha'"):
        stories.load()
    assert stories.load(subjects=["S2"]).targets == tuple(f"v{i}" for i in range(6))


def test_stories_get_their_sound_from_a_relative_or_absolute_folder(stories, tmp_path):
    folder = stories.sounds(tmp_path.parent / f"{tmp_path.name}-stimuli")
    relative = stories.load(audio=f"../{folder.name}")
    relative.check()
    for story in ("alpha", "beta", "gamma"):
        stimulus = relative.stimuli[story]
        assert stimulus.modality == "text" and stimulus.audio == stories.root / ".." / folder.name / f"{story}.wav"
        sound = stimulus.sound_events()
        assert (len(sound), sound["onset"][0], sound["value"][0]) == (1, 0.0, str(stimulus.audio))
        np.testing.assert_allclose(sound["duration"][0], 18.0)
    absolute = stories.load(audio=str(folder))
    assert absolute.stimuli["beta"].audio == folder / "beta.wav"
    assert absolute.identity == relative.identity
    assert json.loads(relative.identity.removeprefix("huth:"))["audio"] == str(folder.resolve())
    assert all(stimulus.audio is None for stimulus in stories.load().stimuli.values())


def test_the_audio_suffix_and_the_identity(stories):
    stories.sounds(stories.root / "stimuli", suffix=".flac.wav")
    plain = stories.load()
    assert "audio" not in json.loads(plain.identity.removeprefix("huth:"))
    with_audio = stories.load(audio="stimuli", audio_suffix=".flac.wav")
    assert with_audio.stimuli["gamma"].audio == stories.root / "stimuli" / "gamma.flac.wav"
    stories.sounds(stories.root / "stimuli")
    other_suffix = stories.load(audio="stimuli")
    assert len({plain.identity, with_audio.identity, other_suffix.identity}) == 3


def test_a_missing_sound_is_named(stories):
    folder = stories.sounds(stories.root / "stimuli")
    (folder / "beta.wav").unlink()
    with pytest.raises(FileNotFoundError, match=f"sound of story 'beta' not found: {folder / 'beta.wav'}"):
        stories.load(audio="stimuli")
    with pytest.raises(FileNotFoundError, match="sound of story 'alpha' not found: .*elsewhere/alpha.wav"):
        stories.load(audio="elsewhere")


def test_a_sound_longer_than_the_scan_is_warned_about_and_one_after_it_refused(stories):
    """The released arrays keep fewer scans than the recording lasts (the Huth lab trims the end), so a sound
    may outlast the scan: a warning; one heard in no scan is an error."""
    stories.sounds(stories.root / "stimuli", seconds=30.0)
    with pytest.warns(UserWarning, match=r"run S1/alpha: the audio of stimulus 'alpha' \(.*alpha.wav\) runs to 30 s "
                                         r"on its clock, past the end of the scan of 12 TRs of 2 s from 0 s at 24 s"):
        stories.load(audio="stimuli").check()
    stories.sounds(stories.root / "stimuli", seconds=2.0)
    with pytest.raises(ValueError, match=r"the audio of stimulus 'alpha' \(.*, 0 to 2 s on its clock\) is not heard "
                                         r"during the scan of 12 TRs of 2 s from 6 s"):
        stories.load(audio="stimuli", first_scan_time=6.0).check()
