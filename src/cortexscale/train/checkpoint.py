"""Training checkpoints: one folder per step, written whole or not at all.

A checkpoint folder holds ``model.safetensors`` (weights), ``config.json`` ({"model": name, "config": {...},
"train_config": {...}, "step": ...}), ``summary.json`` (step, latest and best validation metrics),
``metrics.jsonl`` (the run's log up to this step) and ``train_state.pt`` (optimizer, scheduler, scaler, step,
RNG states). The folder is filled under a temporary name and renamed into place, with ``train_state.pt``
written last, so a folder without it is never a finished checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_model as _st_save_model

from cortexscale._io import atomic_path, write_atomic
from cortexscale.models._io import CheckpointMismatchError
from cortexscale.models._io import load_weights as _load_weights

__all__ = [
    "CKPT_FILES",
    "CheckpointMismatchError",
    "capture_rng",
    "checkpoint_step",
    "list_checkpoints",
    "load_model",
    "load_train_state",
    "load_weights",
    "model_name",
    "read_json",
    "restore_rng",
    "save_checkpoint",
]

CKPT_FILES = ("model.safetensors", "config.json", "train_state.pt")
_STEP_DIR = re.compile(r"^step_(\d+)$")


def model_name(model: torch.nn.Module) -> str:
    """Registry name of ``model`` in ``cortexscale.models.MODELS``, else its lower-cased class name."""
    try:
        from cortexscale.models import MODELS
    except ImportError:
        MODELS = {}
    for name, cls in dict(MODELS).items():
        if type(model) is cls:
            return name
    return getattr(model, "model_name", type(model).__name__.lower())


def save_checkpoint(folder, model: torch.nn.Module, train_state: dict | None = None, extra: dict | None = None,
                    summary: dict | None = None, metrics_path=None, name: str | None = None) -> Path:
    """Write a checkpoint of ``model`` to ``folder`` atomically (the folder is replaced as a whole).

    ``extra`` is merged into config.json; ``summary`` goes to summary.json; ``metrics_path`` (a JSONL file) is
    copied in as metrics.jsonl; ``train_state`` goes to train_state.pt, last. Returns the folder.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        with atomic_path(tmp / "model.safetensors") as path:
            _st_save_model(model, str(path), metadata={"format": "pt"})
        config = {"model": name or model_name(model), "config": model.config.to_dict(), **(extra or {})}
        write_atomic(tmp / "config.json", json.dumps(config, indent=2))
        if summary is not None:
            write_atomic(tmp / "summary.json", json.dumps(summary, indent=2))
        if metrics_path is not None and Path(metrics_path).exists():
            with atomic_path(tmp / "metrics.jsonl") as path:
                shutil.copyfile(metrics_path, path)
        if train_state is not None:
            with atomic_path(tmp / "train_state.pt") as path:
                torch.save(train_state, path)
        _replace_dir(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        trash = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".old"))
        os.replace(dst, trash / dst.name)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


def load_weights(folder, model: torch.nn.Module, device="cpu") -> torch.nn.Module:
    """Load ``folder/model.safetensors`` into ``model`` in place, after checking every name and shape.

    Raises CheckpointMismatchError (a ValueError) naming the file, the parameter and both shapes.
    """
    return _load_weights(model, Path(folder) / "model.safetensors", device=device)


def load_model(folder, builder=None, device="cpu") -> torch.nn.Module:
    """Rebuild the model of a checkpoint from config.json and load its weights.

    ``builder(name, config_dict) -> nn.Module`` defaults to ``cortexscale.models.build_model``.
    """
    config = read_json(Path(folder) / "config.json")
    if builder is None:
        from cortexscale.models import build_model as builder
    model = builder(config["model"], config["config"])
    return load_weights(folder, model, device=device).to(device)


def read_json(path) -> dict:
    """Parse a JSON file; a missing or broken file raises ValueError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {path}: {err}") from err


def load_train_state(folder) -> dict:
    """The dict saved in ``folder/train_state.pt`` (tensors and plain Python values only)."""
    return torch.load(Path(folder) / "train_state.pt", map_location="cpu", weights_only=True)


def checkpoint_step(folder) -> int | None:
    """Step number encoded in a ``step_XXXXXXXX`` folder name, or None."""
    match = _STEP_DIR.match(Path(folder).name)
    return int(match.group(1)) if match else None


def list_checkpoints(ckpt_dir) -> list[Path]:
    """Complete checkpoint folders under ``ckpt_dir``, oldest step first.

    Folders missing one of CKPT_FILES are skipped with a warning.
    """
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = []
    for folder in ckpt_dir.iterdir():
        step = checkpoint_step(folder)
        if step is None or not folder.is_dir():
            continue
        missing = [name for name in CKPT_FILES if not (folder / name).is_file()]
        if missing:
            warnings.warn(f"ignoring incomplete checkpoint {folder}: missing {missing}", stacklevel=2)
            continue
        found.append((step, folder))
    return [folder for _, folder in sorted(found)]


def capture_rng() -> dict:
    """The torch (CPU and CUDA), numpy and Python RNG states, as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
