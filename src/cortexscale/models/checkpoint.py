"""The one on-disk format of cortexscale's trainable models: model folders, training checkpoints, run folders.

A **model folder** holds::

    model.safetensors   the weights (tied tensors stored once)
    config.json         {"model": registry name, "config": {the model config's fields}, plus any extras}

``config.json`` is written last, so a folder with it is complete.

A **training checkpoint** is a model folder (its config.json adds "train_config", "step", "total_steps") plus::

    summary.json        step, samples, flops, "val" (this checkpoint's validation metrics, {} when it was
                        not evaluated), "best_val" and "best_step" (the run's best evaluation so far)
    metrics.jsonl       the run's log up to this step
    train_state.pt      optimizer, scheduler, grad scaler, run counters and RNG states; written last

A **run folder** is what ``cortexscale.train.train(model, data, cfg, out_dir)`` writes to ``out_dir``::

    metrics.jsonl
    checkpoints/step_XXXXXXXX/   training checkpoints, the step zero-padded to 8 digits
    checkpoints/best.json        {"checkpoint": "step_XXXXXXXX", "step": N, "metric": "val_loss", "value": v}:
                                 the saved checkpoint with the lowest validation loss, when the run has
                                 validation data; pruning never deletes it

Every loader here takes any of the three: a run folder loads its marked best checkpoint, else its latest.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

from torch import nn

from .._io import atomic_path, write_atomic

__all__ = [
    "BEST",
    "CHECKPOINT_FILES",
    "CONFIG",
    "CheckpointMismatchError",
    "SUMMARY",
    "TRAIN_STATE",
    "WEIGHTS",
    "best_checkpoint",
    "checkpoint_step",
    "list_checkpoints",
    "load_pretrained",
    "load_weights",
    "model_name",
    "read_config",
    "read_json",
    "resolve_checkpoint",
    "save_pretrained",
]

WEIGHTS, CONFIG, SUMMARY, TRAIN_STATE = "model.safetensors", "config.json", "summary.json", "train_state.pt"
BEST = "best.json"
CHECKPOINT_FILES = (WEIGHTS, CONFIG, TRAIN_STATE)
"""The files without which a ``step_*`` folder is not a finished training checkpoint."""
WHICH = ("auto", "latest", "best")
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointMismatchError(ValueError):
    """A readable checkpoint whose tensors or config do not fit the model (names or shapes)."""


def model_name(model: nn.Module) -> str:
    """Registry name of ``model`` in ``cortexscale.models.MODELS``, else its ``model_name`` attribute, else its
    lower-cased class name (models outside the registry load with ``builder=``)."""
    from .registry import MODELS

    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    return getattr(model, "model_name", type(model).__name__.lower())


def read_json(path) -> dict:
    """Parse a JSON file; a missing or broken file raises ValueError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {path}: {err}") from err


def read_config(folder) -> dict:
    """``folder/config.json`` of a model folder, checked to hold "model" (a name) and "config" (a dict)."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG} in model folder {folder}")
    meta = read_json(path)
    if not (isinstance(meta, dict) and isinstance(meta.get("model"), str) and isinstance(meta.get("config"), dict)):
        raise ValueError(f"{path}: expected JSON with 'model' (a name) and 'config' (a dict) keys")
    return meta


def save_pretrained(model: nn.Module, folder, *, extra: dict | None = None) -> Path:
    """Write ``model`` to the model folder ``folder``: weights, then ``{"model", "config", **extra}``.

    An existing config.json is removed first, so a save cut short leaves no folder that looks complete.
    Returns ``folder``.
    """
    from safetensors.torch import save_model

    clash = sorted({"model", "config"} & set(extra or {}))
    if clash:
        raise ValueError(f"extra must not set {clash}: config.json takes them from the model")
    meta = {"model": model_name(model), "config": model.config.to_dict(), **(extra or {})}
    text = json.dumps(meta, indent=2)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG).unlink(missing_ok=True)
    with atomic_path(folder / WEIGHTS) as tmp:
        save_model(model, str(tmp), metadata={"format": "pt"})
    write_atomic(folder / CONFIG, text)
    return folder


def _stored_shapes(path: Path) -> dict[str, tuple]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except Exception as err:
        raise ValueError(f"cannot read checkpoint weights {path}: {err}") from err


def load_weights(model: nn.Module, path, *, device="auto") -> nn.Module:
    """Load a weights file, or a model folder's ``model.safetensors``, into ``model`` in place.

    ``model`` is moved to ``device`` (see :func:`cortexscale.runtime.resolve_device`) and returned. Every name
    and shape is checked first: a missing, unexpected or mis-shaped tensor raises CheckpointMismatchError
    naming the file, the parameter and both shapes.
    """
    from safetensors.torch import load_model

    from ..runtime import resolve_device

    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint weights not found: {path}")
    stored = _stored_shapes(path)
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key in stored and tuple(tensor.shape) != stored[key]:
            raise CheckpointMismatchError(f"{path}: parameter {key!r} has shape {stored[key]} in the checkpoint "
                                          f"but {tuple(tensor.shape)} in the model")
    unexpected = sorted(set(stored) - set(expected))
    if unexpected:
        raise CheckpointMismatchError(f"{path}: parameters {unexpected} are not in the model {type(model).__name__}")
    device = resolve_device(device)
    model.to(device)
    missing, _ = load_model(model, str(path), strict=False, device=str(device))
    if missing:
        raise CheckpointMismatchError(f"{path}: parameters missing from the checkpoint: {sorted(missing)}")
    return model


def checkpoint_step(folder) -> int | None:
    """Step number of a ``step_XXXXXXXX`` folder name, or None."""
    match = _STEP_DIR.match(Path(folder).name)
    return int(match.group(1)) if match else None


def _checkpoints_dir(path: Path) -> Path:
    return path / "checkpoints" if (path / "checkpoints").is_dir() else path


def list_checkpoints(path) -> list[Path]:
    """Finished training checkpoints of a run folder (or of its ``checkpoints`` folder), oldest step first.

    ``step_*`` folders missing one of :data:`CHECKPOINT_FILES` are skipped with a warning; a missing folder
    has none.
    """
    ckpt_dir = _checkpoints_dir(Path(path))
    if not ckpt_dir.is_dir():
        return []
    found = []
    for folder in ckpt_dir.iterdir():
        step = checkpoint_step(folder)
        if step is None or not folder.is_dir():
            continue
        missing = [name for name in CHECKPOINT_FILES if not (folder / name).is_file()]
        if missing:
            warnings.warn(f"ignoring incomplete checkpoint {folder}: missing {missing}", stacklevel=2)
            continue
        found.append((step, folder))
    return [folder for _, folder in sorted(found)]


def best_checkpoint(path) -> Path | None:
    """The checkpoint a run folder (or its ``checkpoints`` folder) marks as best, or None where none is marked.

    A marker naming a checkpoint that is not a finished one raises ValueError naming both.
    """
    ckpt_dir = _checkpoints_dir(Path(path))
    marker = ckpt_dir / BEST
    if not marker.is_file():
        return None
    name = read_json(marker).get("checkpoint")
    if not isinstance(name, str) or checkpoint_step(name) is None:
        raise ValueError(f"{marker}: 'checkpoint' must name a step_XXXXXXXX folder, got {name!r}")
    folder = ckpt_dir / name
    missing = [file for file in CHECKPOINT_FILES if not (folder / file).is_file()]
    if missing:
        raise ValueError(f"{marker} marks {folder} as best, but that checkpoint lacks {missing}")
    return folder


def resolve_checkpoint(path, which: str = "auto") -> Path:
    """The model folder that ``path`` stands for.

    ``path`` is a model folder or training checkpoint (returned as is; ``which`` must then be "auto"), or a run
    folder: ``which="auto"`` gives its marked best checkpoint where it marks one, else its latest;
    ``"latest"`` the latest; ``"best"`` the marked best (an error where none is marked). The errors say what
    was looked for and where.
    """
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder: expected a model folder ({CONFIG} + {WEIGHTS}), a "
                                "training checkpoint or a run folder (checkpoints/step_*)")
    if (path / CONFIG).is_file():
        if which != "auto":
            raise ValueError(f"which={which!r} chooses among a run folder's checkpoints, but {path} is a model "
                             f"folder (it holds {CONFIG})")
        return path
    if not (path / "checkpoints").is_dir():
        raise FileNotFoundError(f"{path} holds neither {CONFIG} (a model folder) nor checkpoints/step_* "
                                "(a run folder)")
    if which != "latest":
        best = best_checkpoint(path)
        if best is not None:
            return best
        if which == "best":
            raise ValueError(f"{path} marks no best checkpoint: checkpoints/{BEST} is written by train() when it "
                             "has val_data; use which='latest'")
    found = list_checkpoints(path)
    if not found:
        raise FileNotFoundError(f"{path / 'checkpoints'} holds no finished checkpoint (a step_* folder with "
                                f"{', '.join(CHECKPOINT_FILES)})")
    return found[-1]


def load_pretrained(path, *, device="auto", which: str = "auto", builder=None) -> nn.Module:
    """Rebuild the model that ``path`` stands for (see :func:`resolve_checkpoint`) and load its weights.

    ``builder(name, config_dict) -> nn.Module`` rebuilds it from config.json (default
    ``cortexscale.models.build_model``, registered models only). The model is returned on ``device``.
    """
    from .registry import MODELS, build_model

    folder = resolve_checkpoint(path, which)
    meta = read_config(folder)
    if builder is None:
        if meta["model"] not in MODELS:
            raise ValueError(f"{folder / CONFIG}: model {meta['model']!r} is not in cortexscale.models.MODELS "
                             f"({sorted(MODELS)}); pass builder=(name, config_dict) -> model to load it")
        builder = build_model
    return load_weights(builder(meta["model"], meta["config"]), folder, device=device)
