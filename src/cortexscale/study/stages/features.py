"""The ``features`` stage: one feature model's layer features of one stimulus, computed by its family and saved
per layer with the stimulus-clock onsets and durations of the events they describe."""

from __future__ import annotations

import numpy as np

from ..families import FAMILIES
from ..plan import dataset_of
from ..protocol import FeaturesSettings
from ..tasks import stage

__all__ = ["load_features"]


@stage("features", version=2, accelerated=True)
def features(task, context) -> dict:
    s = FeaturesSettings.model_validate(task.settings)
    stimulus = dataset_of(s.dataset).stimuli[s.stimulus]
    out = FAMILIES[s.family].features(s.model, stimulus, s.layers, s.kind, context)
    np.save(context.out / "onsets.npy", out.events["onset"].to_numpy(dtype=np.float64))
    np.save(context.out / "durations.npy", out.events["duration"].to_numpy(dtype=np.float64))
    for layer, array in out.features.items():
        np.save(context.out / f"layer_{layer}.npy", np.asarray(array, dtype=np.float32))
    dims = int(next(iter(out.features.values())).shape[1])
    return {"layers": sorted(out.features), "n_events": int(len(out.events)), "dims": dims, **out.sizes}


def load_features(folder, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onsets and durations (n_events,) on the stimulus clock and features (n_events, d) of one layer of a
    features task's folder."""
    return np.load(folder / "onsets.npy"), np.load(folder / "durations.npy"), np.load(folder / f"layer_{layer}.npy")
