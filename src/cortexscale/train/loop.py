"""One flat training loop for every model that follows the model contract.

A model needs ``loss(batch) -> (scalar loss, dict of float logs)``, ``flops_per_sample()`` and a ``config`` with
``to_dict()``. Training data is a map-style ``torch.utils.data.Dataset`` whose items are dicts of tensors (see
:class:`TensorDictDataset`). Batches are cut from an endless stream of seeded per-epoch permutations, so the
data position is just the number of samples seen and a resumed run reads exactly the batches it would have.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate
from tqdm.auto import tqdm

from cortexscale._io import write_atomic
from cortexscale.models.checkpoint import (
    CheckpointMismatchError,
    checkpoint_step,
    list_checkpoints,
    load_weights,
    read_config,
)
from cortexscale.runtime import resolve_device, resolve_precision, torch_dtype

from .checkpoint import capture_rng, load_train_state, mark_best, prune_checkpoints, restore_rng, save_checkpoint
from .config import TRAIN_PRECISIONS, TrainConfig, resolve_steps
from .schedule import make_scheduler

__all__ = ["TensorDictDataset", "TrainResult", "evaluate", "param_groups", "train"]

_NO_DECAY_MODULES = (nn.Embedding, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._BatchNorm)
_NO_DECAY_WORDS = ("pos_emb", "pos_embed", "position", "cls_token", "mask_token")


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, where its final checkpoint and metrics are, and scores.

    ``best_checkpoint`` is the saved checkpoint with the lowest validation loss (None without val_data);
    ``best_val`` is the best evaluation, which may fall on a step without a checkpoint.
    """

    model: nn.Module
    steps: int
    checkpoint: Path
    metrics_path: Path
    train_loss: float | None = None
    val: dict = field(default_factory=dict)
    best_val: dict = field(default_factory=dict)
    resumed_from: int = 0
    best_checkpoint: Path | None = None


class TensorDictDataset(Dataset):
    """Map-style dataset over a dict of tensors with a common first dimension; item i is {key: tensor[i]}."""

    def __init__(self, tensors: dict):
        self.tensors = tensors
        lengths = {key: len(value) for key, value in tensors.items()}
        if not lengths or len(set(lengths.values())) != 1:
            raise ValueError(f"tensors must be a non-empty dict of equally long tensors, got lengths {lengths}")

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, index: int) -> dict:
        return {key: value[index] for key, value in self.tensors.items()}


class _BatchStream(Sampler):
    """Endless batches of indices from per-epoch permutations seeded by (seed, epoch), starting at sample ``start``."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int = 0):
        self.n, self.batch_size, self.seed, self.start = n, batch_size, seed, start

    def __iter__(self):
        epoch, offset = divmod(self.start, self.n)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        batch = []
        while True:
            batch.append(int(order[offset]))
            offset += 1
            if offset == self.n:
                epoch, offset = epoch + 1, 0
                order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            if len(batch) == self.batch_size:
                yield batch
                batch = []


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: decay for weight matrices, none for biases, norms, embeddings and tokens.

    A parameter skips decay when it has fewer than 2 dimensions, belongs to an embedding or norm module, has
    a position-embedding or token-like name, starts with one of ``model.embedding_prefixes`` or is named by
    ``model.no_weight_decay()``. Each group carries the parameter ``names``. Empty groups are left out.
    """
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    prefixes = tuple(getattr(model, "embedding_prefixes", ()))
    no_decay_ids = set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            if (param.ndim < 2 or isinstance(module, _NO_DECAY_MODULES) or full in skip or full.startswith(prefixes)
                    or any(word in full.lower() for word in _NO_DECAY_WORDS)):
                no_decay_ids.add(id(param))
    groups = {True: {"params": [], "names": [], "weight_decay": weight_decay},
              False: {"params": [], "names": [], "weight_decay": 0.0}}
    for name, param in model.named_parameters():
        if param.requires_grad:
            group = groups[id(param) not in no_decay_ids]
            group["params"].append(param)
            group["names"].append(name)
    return [group for group in groups.values() if group["params"]]


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch_dtype(precision), enabled=precision != "fp32")


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _to_device(batch: dict, device: torch.device) -> dict:
    return {key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
            for key, value in batch.items()}


def _batch_len(batch: dict) -> int:
    return next(len(value) for value in batch.values() if torch.is_tensor(value))


def _tokens_per_sample(model: nn.Module) -> float | None:
    value = getattr(model, "tokens_per_sample", None)
    return value() if callable(value) else value


def _check_dataset(data, name: str) -> None:
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise ValueError(f"{name} must be a map-style Dataset (with __len__ and __getitem__), got {type(data)}")
    if len(data) == 0:
        raise ValueError(f"{name} is empty")
    first = data[0]
    if not isinstance(first, dict) or not any(torch.is_tensor(v) for v in first.values()):
        raise ValueError(f"{name}[0] must be a dict of tensors, got {type(first).__name__}")


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, batch_size: int, device="auto", precision="fp32") -> dict:
    """Sample-weighted mean of ``model.loss`` and its logs over ``data``, in eval mode, as {"val_<key>": float}.

    ``model`` is moved to ``device``; ``precision`` is fp32, fp16 or bf16 in any spelling of
    :func:`cortexscale.runtime.resolve_precision`. Uses no global RNG, so evaluating does not change what
    training does next.
    """
    device = resolve_device(device)
    precision = resolve_precision(precision, TRAIN_PRECISIONS, "evaluate precision")
    model.to(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=default_collate,
                        generator=torch.Generator().manual_seed(0))
    totals, count = {}, 0
    for batch in loader:
        batch = _to_device(batch, device)
        size = _batch_len(batch)
        with _autocast(device, precision):
            loss, logs = model.loss(batch)
        for key, value in {"loss": loss.float().item(), **logs}.items():
            totals[key] = totals.get(key, 0.0) + float(value) * size
        count += size
    model.train(was_training)
    return {f"val_{key}": value / count for key, value in totals.items()}


def _optimizer_step(loss_fn, batches, optimizer, scaler, params, cfg, device, augment, tokens_per_sample):
    """Grad-accumulation micro-steps, unscale, clip, step. Returns (loss tensor, logs, tokens, grad norm)."""
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=device)
    logs, tokens = {}, 0
    for _ in range(cfg.grad_accum):
        batch = _to_device(next(batches), device)
        if "tokens" in batch:
            tokens += batch["tokens"].numel()
        elif tokens_per_sample:
            tokens += _batch_len(batch) * tokens_per_sample
        if augment is not None:
            batch = augment(batch)
        with _autocast(device, cfg.precision):
            loss, micro_logs = loss_fn(batch)
        scaler.scale(loss / cfg.grad_accum).backward()
        total += loss.detach().float() / cfg.grad_accum
        for key, value in micro_logs.items():
            logs[key] = logs.get(key, 0.0) + float(value) / cfg.grad_accum
    scaler.unscale_(optimizer)
    norm = nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
    scaler.step(optimizer)
    scaler.update()
    return total, logs, tokens, norm


def _prepare_metrics(path: Path, keep_through: int) -> None:
    """Drop lines of a previous run past ``keep_through`` (and any torn last line) from the JSONL log."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step", math.inf) <= keep_through:
            kept.append(line + "\n")
    write_atomic(path, "".join(kept))


def _append_metrics(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()


def _check_same_config(folder: Path, model: nn.Module) -> None:
    stored = read_config(folder)["config"]
    current = json.loads(json.dumps(model.config.to_dict()))
    differ = sorted(key for key in set(stored) | set(current) if stored.get(key) != current.get(key))
    if differ:
        raise CheckpointMismatchError(
            f"{folder / 'config.json'}: the checkpoint's model config differs from the model's in {differ}; "
            "train into a new out_dir"
        )


def _resume(ckpt_dir, model, optimizer, scheduler, scaler, device):
    """Load the newest readable checkpoint into the training objects; returns (run dict, step) or (None, 0).

    Leftover temporary folders of a save or a pruning that was killed midway are removed first.
    """
    for debris in [*Path(ckpt_dir).glob(".step_*.tmp"), *Path(ckpt_dir).glob(".step_*.old")]:
        shutil.rmtree(debris, ignore_errors=True)
    for folder in reversed(list_checkpoints(ckpt_dir)):
        try:
            _check_same_config(folder, model)
            state = load_train_state(folder)
            load_weights(model, folder, device=device)
        except CheckpointMismatchError:
            raise
        except Exception as err:  # a torn file can fail anywhere inside torch.load or safetensors
            warnings.warn(f"ignoring unreadable checkpoint {folder}: {err}", stacklevel=3)
            continue
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        return state["run"], checkpoint_step(folder)
    return None, 0


def _new_run() -> dict:
    return {"step": 0, "samples": 0, "tokens": 0, "flops": 0.0, "wall": 0.0, "train_time": 0.0,
            "train_loss": None, "val": {}, "val_step": None, "best_val": {}, "best_step": None}


def _build_optimizer(model, cfg, device, total):
    """AdamW over :func:`param_groups`, the warmup-cosine scheduler and a GradScaler enabled for fp16 only."""
    groups = param_groups(model, cfg.weight_decay)
    params = [param for group in groups for param in group["params"]]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    scheduler = make_scheduler(optimizer, cfg, total)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    return optimizer, scheduler, scaler, params


def _loss_fn(model, compile_option):
    if not compile_option:
        return model.loss
    backend = {"backend": compile_option} if isinstance(compile_option, str) else {}
    return torch.compile(model.loss, **backend)


def _batches(data, cfg, start: int, device):
    """Iterator over collated training batches, from sample position ``start`` of the seeded stream."""
    loader = DataLoader(data, batch_sampler=_BatchStream(len(data), cfg.batch_size, cfg.seed, start),
                        num_workers=cfg.num_workers, collate_fn=default_collate,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(cfg.seed))
    return iter(loader)


def _advance(run: dict, loss: float, tokens: int, flops: float, samples: int, seconds: float) -> None:
    run["train_loss"] = loss
    run["step"] += 1
    run["samples"] += samples
    run["tokens"] += tokens
    run["flops"] += flops
    run["train_time"] += seconds


def _record_val(run: dict, val: dict) -> None:
    run["val"], run["val_step"] = val, run["step"]
    if not run["best_val"] or val["val_loss"] < run["best_val"]["val_loss"]:
        run["best_val"], run["best_step"] = dict(val), run["step"]


def _save(out_dir, model, optimizer, scheduler, scaler, run, cfg, total):
    """Write the checkpoint of this step, then mark the best and prune; returns (checkpoint, best or None)."""
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "scaler": scaler.state_dict(), "rng": capture_rng(), "run": run}
    extra = {"train_config": cfg.to_dict(), "step": run["step"], "total_steps": total}
    summary = {key: run[key] for key in ("step", "samples", "flops", "best_val", "best_step")}
    summary["val"] = run["val"] if run.get("val_step") == run["step"] else {}
    folder = save_checkpoint(model, out_dir / "checkpoints" / f"step_{run['step']:08d}", train_state=state,
                             extra=extra, summary=summary, metrics_path=out_dir / "metrics.jsonl")
    return folder, _tidy(out_dir, run["step"], cfg.keep_last, cfg.keep_steps)


def _tidy(out_dir, step: int, keep_last: int, keep_steps=()):
    """Bring the best marker up to date with the checkpoints up to ``step``, then prune; returns the best."""
    best = mark_best(out_dir, upto=step)
    prune_checkpoints(out_dir, keep_last, upto=step, keep_steps=keep_steps)
    return best


def _train_record(run, lr, logs, norm, since, n_data, scaler):
    dt = max(run["train_time"] - since["train_time"], 1e-12)
    record = {"step": run["step"], "epoch": run["samples"] / n_data, "loss": run["train_loss"], "lr": lr,
              "samples": run["samples"], "flops": run["flops"], "wall": run["wall"],
              "samples_per_s": (run["samples"] - since["samples"]) / dt,
              "flops_per_s": (run["flops"] - since["flops"]) / dt, "grad_norm": float(norm)}
    if run["tokens"]:
        record["tokens"] = run["tokens"]
        record["tokens_per_s"] = (run["tokens"] - since["tokens"]) / dt
    if scaler.is_enabled():
        record["loss_scale"] = scaler.get_scale()
    record.update({key: value for key, value in logs.items() if key not in record})
    return record


def _due(step: int, every: int, total: int) -> bool:
    return step == total or (every > 0 and step % every == 0)


def train(model: nn.Module, train_data: Dataset, cfg: TrainConfig, out_dir, val_data: Dataset | None = None,
          augment=None, progress: bool = True, callback=None) -> TrainResult:
    """Train ``model`` on ``train_data`` under ``cfg``, logging to ``out_dir/metrics.jsonl`` and checkpointing
    to ``out_dir/checkpoints/step_XXXXXXXX``; resumes from the newest good checkpoint in ``out_dir``.

    With ``val_data``, every checkpoint is evaluated too, and ``out_dir/checkpoints/best.json`` marks the one
    with the lowest validation loss (kept past ``cfg.keep_last``); ``cortexscale.models.load_pretrained(out_dir)``
    loads it. The folder format is documented in :mod:`cortexscale.models.checkpoint`.

    train_data / val_data: map-style datasets of dicts of tensors (e.g. {"image": (3, H, W), "label": ()}),
    collated into batches of ``cfg.batch_size``. augment: optional callable batch -> batch applied on the
    device before the forward pass. callback: optional callable(info dict with step, loss, model, optimizer)
    run after every optimizer step, while the step's gradients are still in place; raising from it stops
    training (the run resumes from the last checkpoint). Returns a :class:`TrainResult`.
    """
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    _check_dataset(train_data, "train_data")
    if val_data is not None:
        _check_dataset(val_data, "val_data")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.jsonl"
    device = resolve_device(cfg.device)
    flops_per_sample = float(model.flops_per_sample())
    total = resolve_steps(cfg, len(train_data), flops_per_sample)

    model.to(device)
    optimizer, scheduler, scaler, params = _build_optimizer(model, cfg, device, total)
    run, resumed_from = _resume(out_dir / "checkpoints", model, optimizer, scheduler, scaler, device)
    if run is None:
        _seed_all(cfg.seed)
        run = _new_run()
    if run["step"] > total:
        raise ValueError(f"{out_dir} holds a checkpoint at step {run['step']}, past the budget of {total} steps")
    _prepare_metrics(metrics_path, run["step"])
    best = _tidy(out_dir, run["step"], cfg.keep_last, cfg.keep_steps)

    loss_fn = _loss_fn(model, cfg.compile)
    batches = _batches(train_data, cfg, run["samples"], device)
    tokens_per_sample = _tokens_per_sample(model)
    since, checkpoint = dict(run), None
    bar = tqdm(total=total, initial=run["step"], disable=not progress, desc="train", dynamic_ncols=True)
    model.train()
    start_wall, wall0 = time.perf_counter(), run["wall"]
    try:
        while run["step"] < total:
            tick = time.perf_counter()
            loss, logs, tokens, norm = _optimizer_step(loss_fn, batches, optimizer, scaler, params, cfg, device,
                                                       augment, tokens_per_sample)
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            _advance(run, loss.item(), tokens, flops_per_sample * cfg.samples_per_step, cfg.samples_per_step,
                     time.perf_counter() - tick)
            run["wall"] = wall0 + time.perf_counter() - start_wall
            step, record = run["step"], None
            if _due(step, cfg.log_every, total):
                record = _train_record(run, lr, logs, norm, since, len(train_data), scaler)
                since = dict(run)
            if val_data is not None and (_due(step, cfg.eval_every, total) or _due(step, cfg.ckpt_every, total)):
                _record_val(run, evaluate(model, val_data, cfg.batch_size, device, cfg.precision))
                record = {**(record or {"step": step}), **run["val"]}
            if record is not None:
                _append_metrics(metrics_path, record)
                bar.set_postfix(loss=f"{run['train_loss']:.4g}", lr=f"{lr:.3g}")
            if _due(step, cfg.ckpt_every, total) or step in cfg.keep_steps:
                checkpoint, best = _save(out_dir, model, optimizer, scheduler, scaler, run, cfg, total)
            bar.update(1)
            if callback is not None:
                callback({"step": step, "loss": run["train_loss"], "model": model, "optimizer": optimizer})
    finally:
        bar.close()
    checkpoint = checkpoint or list_checkpoints(out_dir / "checkpoints")[-1]
    return TrainResult(model=model, steps=run["step"], checkpoint=checkpoint, metrics_path=metrics_path,
                       train_loss=run["train_loss"], val=run["val"], best_val=run["best_val"],
                       resumed_from=resumed_from, best_checkpoint=best)

