"""Saving and loading trainable models: ``model.safetensors`` + ``config.json`` in one folder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_path, write_atomic

__all__ = ["load_pretrained", "load_weights", "model_name", "save_pretrained"]

WEIGHTS, CONFIG = "model.safetensors", "config.json"


def model_name(model: nn.Module) -> str:
    """The registry name of ``model``'s class."""
    from . import MODELS

    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not in cortexscale.models.MODELS ({sorted(MODELS)})")


def save_pretrained(model: nn.Module, folder, name: str | None = None, extra: dict | None = None) -> Path:
    """Write the weights and ``{"model": name, "config": {...}, **extra}`` to ``folder``, each atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(state, str(tmp))
    meta = {"model": name or model_name(model), "config": model.config.to_dict(), **(extra or {})}
    write_atomic(folder / CONFIG, json.dumps(meta, indent=2))
    return folder


def load_weights(model: nn.Module, path, strict: bool = True) -> nn.Module:
    """Load a safetensors file into ``model``; any missing, unexpected or mis-shaped tensor is named."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint weights not found: {path}")
    try:
        state = load_file(str(path))
    except Exception as err:
        raise ValueError(f"cannot read checkpoint weights {path}: {err}") from err
    own = model.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise ValueError(f"{path}: parameter {key!r} has shape {tuple(value.shape)} in the checkpoint "
                             f"but {tuple(own[key].shape)} in the model")
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if strict and (missing or unexpected):
        raise ValueError(f"{path}: parameters missing from the checkpoint {missing}, unexpected {unexpected}")
    model.load_state_dict(state, strict=strict)
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
