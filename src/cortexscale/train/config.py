"""The training configuration and the conversion of a budget (steps, epochs or FLOPs) to optimizer steps."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from cortexscale.runtime import device_name, resolve_precision

__all__ = ["SCHEDULES", "TrainConfig", "resolve_steps"]

TRAIN_PRECISIONS = ("fp32", "fp16", "bf16")
"""The precisions the loop trains in (autocast to fp16 or bf16 over fp32 weights)."""
SCHEDULES = ("cosine", "constant")
BUDGETS = ("steps", "epochs", "flops")


@dataclass(frozen=True)
class TrainConfig:
    """Everything the training loop needs besides the model and the data.

    Exactly one budget is set: ``steps`` (optimizer steps), ``epochs`` (passes over the training set, may be
    fractional) or ``flops`` (training FLOPs, converted with ``model.flops_per_sample()``). One optimizer step
    sees ``batch_size * grad_accum`` samples. ``eval_every``, ``ckpt_every`` and ``log_every`` count optimizer
    steps; 0 turns periodic evaluation or checkpointing off (the final step is always evaluated, when there
    is validation data, and checkpointed; so is every checkpoint, to mark the best). ``keep_last`` bounds how
    many checkpoints stay on disk besides the marked best (0 keeps all); ``keep_steps`` are steps checkpointed
    whatever ``ckpt_every`` says and never pruned (the checkpoints a study extracts features from).
    ``grad_clip`` of 0 turns clipping off. ``compile``: False, True (torch.compile with inductor) or the name
    of a torch.compile backend (e.g. "aot_eager", quick to compile, for debugging). ``precision`` takes any
    spelling :func:`cortexscale.runtime.resolve_precision` does (``"bfloat16"``, ``torch.bfloat16``, ...) of
    fp32, fp16 or bf16 and is stored as the canonical name. ``device`` is "auto" (CUDA when present), "cpu",
    "cuda", "cuda:N" or a torch.device, stored as a string and resolved when training starts.
    """

    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: str = "cosine"
    grad_clip: float = 1.0
    batch_size: int = 32
    grad_accum: int = 1
    steps: int | None = None
    epochs: float | None = None
    flops: float | None = None
    precision: str = "fp32"
    compile: bool | str = False
    device: str = "auto"
    seed: int = 0
    eval_every: int = 0
    ckpt_every: int = 0
    log_every: int = 1
    keep_last: int = 2
    keep_steps: tuple[int, ...] = ()
    num_workers: int = 0

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "keep_steps", tuple(sorted({int(s) for s in self.keep_steps})))
        if any(s <= 0 for s in self.keep_steps):
            raise ValueError(f"keep_steps must be positive step numbers, got {list(self.keep_steps)}")
        object.__setattr__(self, "precision",
                           resolve_precision(self.precision, TRAIN_PRECISIONS, "TrainConfig.precision"))
        object.__setattr__(self, "device", device_name(self.device, "TrainConfig.device"))
        self._check_budget()
        self._check_ranges()
        if not isinstance(self.compile, (bool, str)):
            raise ValueError(f"compile must be a bool or a torch.compile backend name, got {self.compile!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")

    def _check_budget(self):
        given = [name for name in BUDGETS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"exactly one of steps, epochs, flops must be set, got {given or 'none'}")
        value = getattr(self, given[0])
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{given[0]} must be a positive number, got {value}")
        if given[0] == "steps" and int(value) != value:
            raise ValueError(f"steps must be an integer, got {value}")

    def _check_ranges(self):
        positive = {"lr": self.lr, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                    "log_every": self.log_every, "eps": self.eps}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        non_negative = {"weight_decay": self.weight_decay, "warmup_steps": self.warmup_steps,
                        "grad_clip": self.grad_clip, "eval_every": self.eval_every,
                        "ckpt_every": self.ckpt_every, "keep_last": self.keep_last,
                        "num_workers": self.num_workers, "seed": self.seed}
        for name, value in non_negative.items():
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}")

    @property
    def budget(self) -> str:
        """Name of the budget field that is set: "steps", "epochs" or "flops"."""
        return next(name for name in BUDGETS if getattr(self, name) is not None)

    @property
    def samples_per_step(self) -> int:
        return self.batch_size * self.grad_accum

    def to_dict(self) -> dict:
        """JSON-serialisable dict of every field."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {unknown}")
        return cls(**data)


def resolve_steps(cfg: TrainConfig, n_samples: int | None = None, flops_per_sample: float | None = None) -> int:
    """Number of optimizer steps the budget of ``cfg`` buys.

    ``epochs`` needs ``n_samples`` (length of the training set): steps = floor(epochs * n_samples / samples
    per step). ``flops`` needs ``flops_per_sample`` (training FLOPs of one sample): steps = floor(flops /
    (flops_per_sample * samples per step)). A budget too small for one step raises ValueError naming the
    budget field and the cost of one step.
    """
    per_step = cfg.samples_per_step
    if cfg.budget == "steps":
        return int(cfg.steps)
    if cfg.budget == "epochs":
        if not n_samples or n_samples <= 0:
            raise ValueError(f"an epochs budget needs a training set with a length, got n_samples={n_samples}")
        steps = _floor(cfg.epochs * n_samples / per_step)
        if steps < 1:
            raise ValueError(
                f"epochs={cfg.epochs} of {n_samples} samples is {cfg.epochs * n_samples:g} samples, less than one "
                f"optimizer step of {per_step} samples (batch_size={cfg.batch_size} x grad_accum={cfg.grad_accum})"
            )
        return steps
    if flops_per_sample is None or not flops_per_sample > 0:
        raise ValueError(f"a flops budget needs a positive model.flops_per_sample(), got {flops_per_sample}")
    step_flops = flops_per_sample * per_step
    steps = _floor(cfg.flops / step_flops)
    if steps < 1:
        raise ValueError(
            f"flops={cfg.flops:g} is less than one optimizer step, which costs {step_flops:g} FLOPs "
            f"({flops_per_sample:g} per sample x {per_step} samples)"
        )
    return steps


def _floor(x: float) -> int:
    """floor that forgives float round-off just below an integer (0.3 * 100 / 10 gives 3, not 2)."""
    return math.floor(x * (1 + 1e-12))
