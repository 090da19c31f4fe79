"""The generic loader: a YAML or JSON sidecar describing stimuli, runs and targets; lazy responses."""

import json
import subprocess
import sys
import wave

import h5py
import numpy as np
import pytest
import yaml

from cortexscale.data import DATASETS, generic_dataset, load_dataset
from cortexscale.data.generic import HDF5Source, NpySource

N_TRS, N_TARGETS = 10, 3


def write_events(path, n=8, step=2.0):
    lines = ["onset\tduration\tword"] + [f"{i * step}\t0.5\tw{i}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_wav(path, seconds, rate=8000):
    """A silent mono 16-bit WAV of ``seconds``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(np.zeros(int(seconds * rate), "<i2").tobytes())
    return path


def build(tmp_path, **changes):
    """A two-stimulus, three-run study on disk; returns (sidecar dict, responses by run name)."""
    rng = np.random.default_rng(0)
    (tmp_path / "events").mkdir()
    (tmp_path / "bold").mkdir()
    (tmp_path / "frames").mkdir()
    write_events(tmp_path / "events" / "story.tsv")
    write_events(tmp_path / "events" / "movie.tsv", n=5, step=1.0)
    (tmp_path / "targets.txt").write_text("lh.A\nlh.B\nrh.A\n\n")
    arrays = {"r1": rng.standard_normal((N_TRS, N_TARGETS)).astype(np.float32),
              "r2": rng.standard_normal((N_TRS, N_TARGETS)),
              "test": rng.standard_normal((N_TRS, N_TARGETS)),
              "repeats": rng.standard_normal((2, N_TRS, N_TARGETS))}
    np.save(tmp_path / "bold" / "r1.npy", arrays["r1"])
    np.save(tmp_path / "bold" / "r2.npy", arrays["r2"])
    with h5py.File(tmp_path / "bold" / "s2.h5", "w") as handle:
        handle["movie/mean"] = arrays["test"]
        handle["movie/repeats"] = arrays["repeats"]
    sidecar = {
        "name": "toy",
        "tr": 2.0,
        "targets": "targets.txt",
        "stimuli": [{"id": "story", "modality": "text", "events": "events/story.tsv"},
                    {"id": "movie", "modality": "video", "events": "events/movie.tsv", "frames": "frames"}],
        "runs": [{"subject": "s1", "name": "r1", "stimulus": "story", "responses": "bold/r1.npy"},
                 {"subject": "s1", "name": "r2", "stimulus": "story", "responses": "bold/r2.npy",
                  "first_scan_time": 1.0},
                 {"subject": "s2", "stimulus": "movie", "responses": "bold/s2.h5:movie/mean",
                  "repeats": "bold/s2.h5:movie/repeats", "split": "test", "tr": 1.0}],
    }
    sidecar.update(changes)
    return sidecar, arrays


def save(tmp_path, sidecar, kind="yaml"):
    path = tmp_path / f"study.{kind}"
    path.write_text(yaml.safe_dump(sidecar) if kind == "yaml" else json.dumps(sidecar))
    return path


@pytest.mark.parametrize("kind", ["yaml", "json"])
def test_a_sidecar_becomes_a_checked_dataset(tmp_path, kind):
    sidecar, arrays = build(tmp_path)
    data = load_dataset("generic", path=save(tmp_path, sidecar, kind))
    data.check()
    assert DATASETS["generic"] is generic_dataset
    assert data.name == "toy" and data.targets == ("lh.A", "lh.B", "rh.A") and data.subjects == ["s1", "s2"]
    assert set(data.stimuli) == {"story", "movie"} and data.stimuli["movie"].frames == tmp_path / "frames"
    assert list(data.stimuli["story"].events["value"][:2]) == ["w0", "w1"]
    r1, r2, test = data.runs
    assert (r1.name, r1.tr, r1.first_scan_time, r1.n_trs, r1.split) == ("r1", 2.0, 0.0, N_TRS, "train")
    assert (r2.first_scan_time, test.name, test.tr, test.split) == (1.0, "movie", 1.0, "test")
    np.testing.assert_array_equal(r1.responses(), arrays["r1"])
    np.testing.assert_allclose(r2.responses(), arrays["r2"].astype(np.float32))
    np.testing.assert_allclose(test.responses(), arrays["test"].astype(np.float32))
    np.testing.assert_allclose(test.repeats(), arrays["repeats"].astype(np.float32))
    assert r1.repeats() is None and data.identity.startswith("generic:")


def test_responses_are_read_on_access_not_at_load(tmp_path):
    sidecar, arrays = build(tmp_path)
    data = generic_dataset(save(tmp_path, sidecar))
    assert isinstance(data.runs[0].source, NpySource) and isinstance(data.runs[2].source, HDF5Source)
    assert isinstance(data.runs[0].source(), np.memmap)
    np.save(tmp_path / "bold" / "r1.npy", arrays["r1"] + 1)
    with h5py.File(tmp_path / "bold" / "s2.h5", "r+") as handle:
        handle["movie/mean"][...] = 7.0
    np.testing.assert_array_equal(data.runs[0].responses(), arrays["r1"] + 1)
    assert (data.runs[2].responses() == 7.0).all()


def test_targets_as_a_list_or_a_count_and_an_atlas(tmp_path):
    sidecar, _ = build(tmp_path, targets=3, name="counted")
    (tmp_path / "atlas.nii.gz").write_bytes(b"")
    assert generic_dataset(save(tmp_path, {**sidecar, "atlas": "atlas.nii.gz"})).targets == ("t0", "t1", "t2")
    data = generic_dataset(save(tmp_path, {**sidecar, "targets": ["a", "b", "c"]}))
    assert data.targets == ("a", "b", "c") and data.atlas is None


def test_the_identity_follows_the_sidecar_text(tmp_path):
    sidecar, _ = build(tmp_path)
    first = generic_dataset(save(tmp_path, sidecar)).identity
    second = generic_dataset(save(tmp_path, {**sidecar, "tr": 2.5})).identity
    assert first != second and first.split("#")[0] == second.split("#")[0]


def run_change(index, **changes):
    def apply(sidecar):
        sidecar["runs"][index].update(changes)
    return apply


def stimulus_change(index, **changes):
    def apply(sidecar):
        sidecar["stimuli"][index].update(changes)
    return apply


@pytest.mark.parametrize("change, error, match", [
    (lambda s: s.update(colour="red"), ValueError, r"top level: unknown key\(s\) \['colour'\]"),
    (lambda s: s.pop("tr"), ValueError, r"top level: missing required key\(s\) \['tr'\]"),
    (lambda s: s.update(tr=-1), ValueError, "tr: expected a positive finite number, got -1"),
    (lambda s: s.update(targets=["a", "a", "b"]), ValueError, "targets: name 'a' appears twice"),
    (lambda s: s.update(targets=2), ValueError, r"runs\[0\].responses: expected an \(n_trs, 2\) array"),
    (lambda s: s.update(runs=[]), ValueError, "runs: expected a non-empty list"),
    (run_change(2, gain=2), ValueError, r"runs\[2\]: unknown key\(s\) \['gain'\]"),
    (run_change(1, split="val"), ValueError, r"runs\[1\].split: expected one of \('train', 'test'\)"),
    (run_change(1, stimulus="nope"), ValueError, r"runs\[1\].stimulus: 'nope' is not one of the stimuli"),
    (run_change(1, name="r1"), ValueError, r"runs\[1\].name: run s1/r1 is already runs\[0\]"),
    (run_change(1, responses="bold/r2.npy.missing.npy"), FileNotFoundError,
     r"runs\[1\].responses: file not found: .*r2.npy.missing.npy"),
    (run_change(2, responses="bold/s2.h5"), ValueError, r"runs\[2\].responses: name the dataset inside"),
    (run_change(2, responses="bold/s2.h5:movie/nope"), ValueError,
     r"runs\[2\].responses: .*s2.h5 has no dataset 'movie/nope'; datasets found: \['movie/mean', 'movie/repeats'\]"),
    (run_change(2, responses="bold/s2.h5:movie/repeats"), ValueError,
     r"runs\[2\].responses: expected an \(n_trs, 3\) array .* got shape \(2, 10, 3\)"),
    (run_change(2, repeats="bold/s2.h5:movie/mean"), ValueError,
     r"runs\[2\].repeats: expected an \(n_repeats >= 2, 10, 3\) array .* got shape \(10, 3\)"),
    (run_change(0, responses="bold/r1.csv"), ValueError, r"runs\[0\].responses: expected a .npy file"),
    (run_change(0, first_scan_time="soon"), ValueError, r"runs\[0\].first_scan_time: expected a finite number"),
    (stimulus_change(0, modality="smell"), ValueError, r"stimuli\[0\].modality: expected one of"),
    (stimulus_change(0, frames="frames"), ValueError, r"stimuli\[0\]: a video stimulus needs frames"),
    (stimulus_change(1, id="story"), ValueError, r"stimuli\[1\].id: stimulus id 'story' appears twice"),
    (stimulus_change(0, events="events/none.tsv"), FileNotFoundError, r"stimuli\[0\].events: file not found"),
    (stimulus_change(0, audio="audio/none.wav"), FileNotFoundError,
     r"stimuli\[0\].audio: file not found: .*audio/none.wav"),
    (stimulus_change(0, modality="audio", audio="events/story.tsv"), ValueError,
     r"stimuli\[0\].audio: an audio stimulus takes no audio"),
])
def test_bad_sidecars_name_the_field(tmp_path, change, error, match):
    sidecar, _ = build(tmp_path)
    change(sidecar)
    path = save(tmp_path, sidecar)
    with pytest.raises(error, match=match) as caught:
        generic_dataset(path)
    assert str(path) in str(caught.value)


def test_text_and_video_stimuli_take_their_sound(tmp_path):
    sidecar, _ = build(tmp_path)
    story = write_wav(tmp_path / "audio" / "story.wav", 15.0)
    soundtrack = write_wav(tmp_path / "audio" / "movie.wav", 4.0)
    sidecar["stimuli"][0]["audio"] = "audio/story.wav"
    sidecar["stimuli"][1]["audio"] = str(soundtrack)
    data = generic_dataset(save(tmp_path, sidecar))
    data.check()
    assert data.stimuli["story"].audio == story and data.stimuli["movie"].audio == soundtrack
    sound = data.stimuli["story"].sound_events()
    assert (sound["onset"][0], sound["value"][0]) == (0.0, str(story))
    np.testing.assert_allclose([sound["duration"][0], data.stimuli["movie"].sound_events()["duration"][0]],
                               [15.0, 4.0])
    del sidecar["stimuli"][0]["audio"]
    assert generic_dataset(save(tmp_path, sidecar)).stimuli["story"].audio is None


def test_check_warns_of_a_sound_longer_than_the_scan(tmp_path):
    sidecar, _ = build(tmp_path)
    write_wav(tmp_path / "audio" / "story.wav", 40.0)
    sidecar["stimuli"][0]["audio"] = "audio/story.wav"
    data = generic_dataset(save(tmp_path, sidecar))
    with pytest.warns(UserWarning, match=r"dataset 'toy', run s1/r1: the audio of stimulus 'story' \(.*story.wav\) "
                                         "runs to 40 s on its clock, past the end of the scan of 10 TRs of 2 s from "
                                         "0 s at 20 s"):
        data.check()


def test_bad_events_and_files(tmp_path):
    sidecar, _ = build(tmp_path)
    (tmp_path / "events" / "story.tsv").write_text("onset\tduration\n3\t1\n1\t1\n")
    with pytest.raises(ValueError, match=r"stimuli\[0\].events: .*story.tsv: onsets must be sorted"):
        generic_dataset(save(tmp_path, sidecar))
    with pytest.raises(FileNotFoundError, match="dataset sidecar not found"):
        generic_dataset(tmp_path / "none.yaml")
    (tmp_path / "study.txt").write_text("tr: 2")
    with pytest.raises(ValueError, match="must end in .yaml, .yml or .json"):
        generic_dataset(tmp_path / "study.txt")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        generic_dataset(tmp_path / "broken.json")


def test_check_catches_what_the_sidecar_cannot(tmp_path):
    sidecar, _ = build(tmp_path)
    np.save(tmp_path / "bold" / "r2.npy", np.full((N_TRS, N_TARGETS), np.nan))
    data = generic_dataset(save(tmp_path, sidecar))
    with pytest.raises(ValueError, match=r"run s1/r2: responses hold 30 non-finite"):
        data.check()


def test_the_core_package_imports_without_the_data_extra():
    code = ("import sys; sys.modules.update(h5py=None, nibabel=None, nilearn=None, yaml=None); "
            "import cortexscale.data as data; print(sorted(data.DATASETS))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "'bids', 'generic', 'huth'" in done.stdout


@pytest.mark.parametrize("module, kind", [("h5py", "json"), ("yaml", "yaml")])
def test_a_missing_extra_says_how_to_install_it(tmp_path, monkeypatch, module, kind):
    sidecar, _ = build(tmp_path)
    path = save(tmp_path, sidecar, kind)
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf"{module} is needed .* pip install 'cortexscale\[data\]'"):
        generic_dataset(path)
