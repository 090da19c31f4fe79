"""The ``features`` stage: one feature model's layer features of one stimulus, saved per layer with the
stimulus-clock onsets of the events they describe."""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from ...data import audio_steps
from ...features import clip_events, extract_features, load_audio_model, load_language_model
from ...models import count_parameters, load_pretrained
from ..plan import dataset_of, resolve_source
from ..tasks import stage

__all__ = ["load_features", "model_sizes"]


def model_sizes(model: nn.Module) -> dict:
    """Parameters with and without embeddings (every ``nn.Embedding``, and a model's own embedding prefixes)."""
    return {"params": count_parameters(model), "params_non_embedding": count_parameters(model, non_embedding=True)}


def _pretrained(settings: dict, stimulus, layers: list[int], device: str) -> tuple[dict, np.ndarray, dict]:
    source, kind = resolve_source(settings["source"]), settings["kind"]
    events = stimulus.events
    if kind == "audio":
        model = load_audio_model(source, device=device, dtype=settings.get("dtype"))
        events = audio_steps(events, stride=0.1)
    else:
        model = load_language_model(source, causal=settings.get("causal"), device=device, dtype=settings.get("dtype"))
    feats = extract_features(model, events, layers, kind=kind, context=tuple(settings["context"]),
                             window=tuple(settings["window"]), audio_window=settings["audio_window"], device=device,
                             progress=False)
    sizes = model_sizes(model.model)
    if settings.get("params"):
        sizes["params"] = float(settings["params"])
    if settings.get("train_tokens"):
        sizes["train_data"] = float(settings["train_tokens"])
    return feats, events["onset"].to_numpy(), sizes


def _video(settings: dict, stimulus, layers: list[int], device: str, inputs: dict) -> tuple[dict, np.ndarray, dict]:
    from ...data import FrameStore

    store = FrameStore.open(stimulus.frames)
    frames = stimulus.events["value"].to_numpy(dtype=np.int64)
    onsets = stimulus.events["onset"].to_numpy()
    model = load_pretrained(inputs["model"] / "run", device=device)
    if settings["family"] == "videogpt":
        vqvae = load_pretrained(inputs["tokenizer"] / "run", device=device)
        length = vqvae.config.frames
        starts = np.arange(0, len(frames) - length + 1, length)
        events = pd.DataFrame({"onset": onsets[starts], "duration": length / store.fps, "value": frames[starts]})
        feats = extract_features((vqvae, model), events, layers, kind="clips", frames=store, device=device,
                                 progress=False)
        return feats, events["onset"].to_numpy(), model_sizes(model)
    events = stimulus.events.assign(value=frames)
    feats = extract_features(model, events, layers, kind="frames", frames=store, pool=settings["pool"], device=device,
                             progress=False)
    return feats, onsets, model_sizes(model)


@stage("features", version=1, accelerated=True)
def features(task, context) -> dict:
    s = task.settings
    stimulus = dataset_of(s["dataset"]).stimuli[s["stimulus"]]
    model = s["model"]
    if model["family"] == "pretrained":
        feats, onsets, sizes = _pretrained({**model, "kind": s["kind"]}, stimulus, s["layers"], context.device)
    else:
        feats, onsets, sizes = _video(model, stimulus, s["layers"], context.device, context.inputs)
    np.save(context.out / "onsets.npy", np.asarray(onsets, dtype=np.float64))
    for layer, array in feats.items():
        np.save(context.out / f"layer_{layer}.npy", np.asarray(array, dtype=np.float32))
    return {"layers": sorted(feats), "n_events": int(len(onsets)), "dims": int(next(iter(feats.values())).shape[1]),
            **sizes}


def load_features(folder, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Onsets (n_events,) on the stimulus clock and features (n_events, d) of one layer of a features task."""
    return np.load(folder / "onsets.npy"), np.load(folder / f"layer_{layer}.npy")
