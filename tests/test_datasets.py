"""The dataset interface: stimuli on their own clock, runs that point at them, checks that name what is wrong."""

import warnings
import wave

import numpy as np
import pandas as pd
import pytest

from cortexscale.data import ALICE_ROIS, DATASETS, Dataset, Run, Stimulus, load_alice, load_dataset
from cortexscale.data import audio as audio_module


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


def write_wav(path, seconds, rate=8000):
    """A mono 16-bit WAV of ``seconds`` of a quiet tone."""
    samples = 0.1 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


def test_sound_events_of_each_kind_of_stimulus(tmp_path):
    story = write_wav(tmp_path / "story.wav", 2.5)
    sound = Stimulus("s", "text", words(), audio=str(story)).sound_events()
    assert list(sound.columns[:3]) == ["onset", "duration", "value"] and len(sound) == 1
    assert (sound["onset"][0], sound["value"][0]) == (0.0, str(story))
    np.testing.assert_allclose(sound["duration"][0], 2.5)
    film = Stimulus("f", "video", words(), frames=tmp_path, audio=write_wav(tmp_path / "film.wav", 1.25))
    assert isinstance(film.audio, type(story)) and film.sound_events()["duration"][0] == pytest.approx(1.25)
    clips = pd.DataFrame({"onset": [0.0, 3.0], "duration": [2.5, 2.5], "value": [str(story)] * 2})
    pd.testing.assert_frame_equal(Stimulus("a", "audio", clips).sound_events(), clips)
    assert Stimulus("t", "text", words()).sound_events() is None


def test_sound_events_decode_when_the_header_gives_no_duration(tmp_path, monkeypatch):
    story = write_wav(tmp_path / "story.wav", 1.5)
    monkeypatch.setattr(audio_module, "audio_info", lambda path: {"sample_rate": 8000, "channels": 1,
                                                                  "duration": float("nan")})
    assert Stimulus("s", "text", words(), audio=story).sound_events()["duration"][0] == pytest.approx(1.5)


def test_an_audio_stimulus_takes_no_audio(tmp_path):
    clips = pd.DataFrame({"onset": [0.0], "duration": [1.0], "value": ["a.wav"]})
    with pytest.raises(ValueError, match=r"stimulus 'clips': an audio stimulus takes no audio="):
        Stimulus("clips", "audio", clips, audio=tmp_path / "a.wav")


def with_sound(path, **run_changes):
    """The toy dataset whose story has the sound ``path``."""
    data = toy(**run_changes)
    stimulus = Stimulus("story", "text", words(), audio=path)
    return Dataset(data.name, data.targets, {"story": stimulus}, data.runs)


def test_check_reads_the_sound_and_keeps_it_inside_the_scan(tmp_path):
    with_sound(write_wav(tmp_path / "fits.wav", 25.0)).check()
    long = write_wav(tmp_path / "long.wav", 26.5)
    with pytest.warns(UserWarning, match=r"dataset 'toy', run s1/r1: the audio of stimulus 'story' \(.*long.wav\) "
                                         r"runs to 26.5 s on its clock, past the end of the scan of 12 TRs of 2 s "
                                         "from 0 s at 24 s"):
        with_sound(long).check()
    short = write_wav(tmp_path / "short.wav", 1.0)
    with pytest.raises(ValueError, match=r"run s1/r1: the audio of stimulus 'story' \(.*short.wav, 0 to 1 s on its "
                                         r"clock\) is not heard during the scan of 12 TRs of 2 s from 10 s"):
        with_sound(short, first_scan_time=10.0).check()


def test_check_names_a_missing_or_unreadable_sound(tmp_path):
    missing = tmp_path / "none.wav"
    with pytest.raises(FileNotFoundError, match=f"dataset 'toy', run s1/r1: the audio of stimulus 'story': audio "
                                                f"file not found: {missing}"):
        with_sound(missing).check()
    (tmp_path / "noise.wav").write_bytes(b"not a sound at all")
    with pytest.raises(ValueError, match=r"run s1/r1: the audio of stimulus 'story' \(.*noise.wav\): cannot read"):
        with_sound(tmp_path / "noise.wav").check()


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
