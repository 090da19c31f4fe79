"""Saving and loading trainable models: ``model.safetensors`` + ``config.json`` in one folder."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from .._io import atomic_path, write_atomic

__all__ = ["CheckpointMismatchError", "load_pretrained", "load_weights", "model_name", "save_pretrained"]

WEIGHTS, CONFIG = "model.safetensors", "config.json"


class CheckpointMismatchError(ValueError):
    """A readable checkpoint whose tensors do not fit the model (names or shapes)."""


def model_name(model: nn.Module) -> str:
    """The registry name of ``model``'s class."""
    from . import MODELS

    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not in cortexscale.models.MODELS ({sorted(MODELS)})")


def save_pretrained(model: nn.Module, folder, name: str | None = None, extra: dict | None = None) -> Path:
    """Write the weights and ``{"model": name, "config": {...}, **extra}`` to ``folder``, each atomically.

    Tied (shared) tensors are stored once.
    """
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS) as tmp:
        save_model(model, str(tmp))
    meta = {"model": name or model_name(model), "config": model.config.to_dict(), **(extra or {})}
    write_atomic(folder / CONFIG, json.dumps(meta, indent=2))
    return folder


def _stored_shapes(path: Path) -> dict[str, tuple]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except Exception as err:
        raise ValueError(f"cannot read checkpoint weights {path}: {err}") from err


def load_weights(model: nn.Module, path, device="cpu") -> nn.Module:
    """Load a safetensors file into ``model`` in place; a missing, unexpected or mis-shaped tensor is named."""
    from safetensors.torch import load_model

    path = Path(path)
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
    missing, _ = load_model(model, str(path), strict=False, device=str(device))
    if missing:
        raise CheckpointMismatchError(f"{path}: parameters missing from the checkpoint: {sorted(missing)}")
    return model


def load_pretrained(folder, device="cpu") -> nn.Module:
    """Rebuild a registered model from ``folder/config.json`` and load ``folder/model.safetensors``."""
    from . import build_model

    folder = Path(folder)
    cfg_path = folder / CONFIG
    if not cfg_path.is_file():
        raise FileNotFoundError(f"no {CONFIG} in checkpoint folder {folder}")
    try:
        meta = json.loads(cfg_path.read_text())
        name, config = meta["model"], meta["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{cfg_path}: expected JSON with 'model' and 'config' keys ({err})") from err
    model = build_model(name, config)
    load_weights(model, folder / WEIGHTS)
    return model.to(device)
