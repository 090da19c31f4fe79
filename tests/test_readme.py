"""The README's examples run as written, in order, each block in a namespace of its own (so each carries its
own imports), offline, on the shipped weights and the Alice data.

Two things a reader brings are made here: ``story.wav`` (a few seconds of sound) and, for the hub id of a speech
model that only downloads with network access, a randomly initialised HuBERT of the same depth saved in a local
folder. Nothing else in the code is changed.
"""

import re
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
HUB_SPEECH_ID = "facebook/hubert-base-ls960"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def write_story(path: Path, seconds: float = 4.0, rate: int = 16000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))).clip(-1, 1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((samples * 32767).astype("<i2").tobytes())


def local_speech_model(folder: Path) -> Path:
    """A HuBERT with base's 12 layers but tiny widths, standing in for the hub id offline."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    config = HubertConfig(hidden_size=32, num_hidden_layers=12, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    HubertModel(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    write_story(folder / "story.wav")
    local_speech_model(folder / "hubert")
    return folder


def test_readme_has_the_blocks_this_test_runs():
    blocks = python_blocks()
    assert len(blocks) >= 5
    assert sum(HUB_SPEECH_ID in block for block in blocks) == 1
    assert "make demo" in README.read_text() and "make test" in README.read_text()


@pytest.mark.slow
def test_readme_examples_run_in_order(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    results = []
    for i, block in enumerate(python_blocks()):
        code = block.replace(f'"{HUB_SPEECH_ID}"', repr(str(workdir / "hubert")))
        namespace = {"__name__": f"readme_block_{i}"}
        exec(compile(code, f"README.md python block {i}", "exec"), namespace)
        results.append(namespace)
    tour, training, words, speech, video = results[:5]
    assert tour["r"].shape == (6,) and 0.15 < tour["r"].mean() < 0.19  # the tour gives 0.170
    assert 0 < tour["ceiling"].min() and tour["ceiling"].max() < 1
    assert (workdir / "runs" / "vit-ti16" / "checkpoints").is_dir()
    assert [f.shape for f in training["feats"]] == [(1, 17, 192)] * 3
    assert words["X"].shape == (362, 384) and np.isfinite(words["X"]).all()
    assert speech["X"].shape == (362, 32) and np.abs(speech["X"][:3]).sum() > 0
    assert video["per_frame"][8].shape == (64, 192)
    assert video["per_clip"][3].shape == (4, 255)
    levers = next(n["levers"] for n in results if "levers" in n)
    assert len(levers) == 6 and (levers["low"] <= levers["gain"]).all() and (levers["gain"] <= levers["high"]).all()
    fmri = levers[levers["lever"] == "fMRI data"]
    assert (fmri["gain"] > 0).all() and fmri["gain"].is_monotonic_increasing
