"""What training adds to the folder format of :mod:`cortexscale.models.checkpoint`: checkpoints with their
train state, the best-checkpoint marker of a run folder, pruning, and RNG capture.

A checkpoint is filled under a temporary name and renamed into place whole, with ``train_state.pt`` written
last; the best marker is rewritten atomically from what is on disk, so a crash between any two writes
leaves a run that resumes and loads.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from cortexscale._io import atomic_path, write_atomic
from cortexscale.models.checkpoint import (
    BEST,
    SUMMARY,
    TRAIN_STATE,
    best_checkpoint,
    checkpoint_step,
    list_checkpoints,
    read_json,
    save_pretrained,
)

__all__ = [
    "capture_rng",
    "load_train_state",
    "mark_best",
    "prune_checkpoints",
    "restore_rng",
    "save_checkpoint",
]


def save_checkpoint(model: torch.nn.Module, folder, *, train_state: dict | None = None, extra: dict | None = None,
                    summary: dict | None = None, metrics_path=None) -> Path:
    """Write a training checkpoint of ``model`` to ``folder``, replacing any folder there as a whole.

    The model folder comes from :func:`~cortexscale.models.save_pretrained` (``extra`` is merged into its
    config.json); ``summary`` goes to summary.json; ``metrics_path`` (a JSONL file) is copied in as
    metrics.jsonl; ``train_state`` goes to train_state.pt, last. Returns ``folder``.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        save_pretrained(model, tmp, extra=extra)
        if summary is not None:
            write_atomic(tmp / SUMMARY, json.dumps(summary, indent=2))
        if metrics_path is not None and Path(metrics_path).exists():
            with atomic_path(tmp / "metrics.jsonl") as path:
                shutil.copyfile(metrics_path, path)
        if train_state is not None:
            with atomic_path(tmp / TRAIN_STATE) as path:
                torch.save(train_state, path)
        _replace_dir(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _trash(folder: Path) -> Path:
    """Move ``folder`` out of the way in one rename, into a new ``.<name>.*.old`` folder, which is returned."""
    trash = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".old"))
    os.replace(folder, trash / folder.name)
    return trash


def _replace_dir(src: Path, dst: Path) -> None:
    trash = _trash(dst) if dst.exists() else None
    os.replace(src, dst)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def load_train_state(folder) -> dict:
    """The dict saved in ``folder/train_state.pt`` (tensors and plain Python values only)."""
    return torch.load(Path(folder) / TRAIN_STATE, map_location="cpu", weights_only=True)


def _val_loss(folder: Path) -> float | None:
    """The checkpoint's own validation loss from its summary.json, or None where it has none."""
    try:
        value = (read_json(folder / SUMMARY).get("val") or {}).get("val_loss")
    except ValueError:
        return None
    return float(value) if value is not None else None


def mark_best(run_dir, upto: int | None = None) -> Path | None:
    """Mark the finished checkpoint with the lowest validation loss in ``run_dir/checkpoints/best.json``.

    Only checkpoints up to step ``upto`` (all when None) whose summary.json records their own ``val_loss``
    compete; ties go to the earlier step. Where none does, any marker is removed. Returns the best folder.
    """
    ckpt_dir = Path(run_dir) / "checkpoints"
    scored = [(loss, checkpoint_step(folder), folder) for folder in list_checkpoints(ckpt_dir)
              if (upto is None or checkpoint_step(folder) <= upto) and (loss := _val_loss(folder)) is not None]
    if not scored:
        (ckpt_dir / BEST).unlink(missing_ok=True)
        return None
    loss, step, folder = min(scored, key=lambda item: item[:2])
    marker = {"checkpoint": folder.name, "step": step, "metric": "val_loss", "value": loss}
    if _read_marker(ckpt_dir / BEST) != marker:
        write_atomic(ckpt_dir / BEST, json.dumps(marker, indent=2))
    return folder


def _read_marker(path: Path) -> dict | None:
    try:
        return read_json(path)
    except ValueError:
        return None


def prune_checkpoints(run_dir, keep_last: int, upto: int | None = None, keep_steps=()) -> None:
    """Delete all but the ``keep_last`` newest checkpoints up to step ``upto``; the marked best and the
    checkpoints of ``keep_steps`` always stay."""
    keep = best_checkpoint(run_dir)
    found = [folder for folder in list_checkpoints(Path(run_dir) / "checkpoints")
             if (upto is None or checkpoint_step(folder) <= upto) and checkpoint_step(folder) not in keep_steps]
    for folder in found[:-keep_last] if keep_last else []:
        if folder != keep:
            shutil.rmtree(_trash(folder), ignore_errors=True)


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
