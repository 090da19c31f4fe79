"""Where and in what precision things run: one device resolver and one set of precision names.

Every stage (training, feature extraction, encoding, model loading) takes ``device=`` and a precision
(``precision=`` for training, ``dtype=`` for features and ridge) through these two functions, so a study
file names them once.

Precisions have one short canonical name each, :data:`PRECISIONS`; the long numpy/torch names, ``half``
and ``double``, and torch or numpy dtypes are accepted everywhere as aliases. Devices are ``"auto"`` (CUDA
when present, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

__all__ = ["PRECISIONS", "cpu_threads", "device_name", "resolve_device", "resolve_precision", "torch_dtype"]

PRECISIONS = ("fp32", "fp16", "bf16", "fp64")
"""Canonical precision names: float32, float16, bfloat16, float64."""

_ALIASES = {
    "fp32": "fp32", "float32": "fp32", "float": "fp32", "single": "fp32",
    "fp16": "fp16", "float16": "fp16", "half": "fp16",
    "bf16": "bf16", "bfloat16": "bf16",
    "fp64": "fp64", "float64": "fp64", "double": "fp64",
}


def _dtype_name(value) -> str | None:
    """'float32' of torch.float32, numpy.float32 or numpy.dtype('float32'); None for anything else."""
    text = str(value)
    if text.startswith("torch."):
        return text[len("torch."):]
    try:
        import numpy as np

        if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
            return np.dtype(value).name
    except TypeError:
        return None
    return None


def resolve_precision(value, allowed=PRECISIONS, what: str = "precision") -> str:
    """Canonical name ("fp32", "fp16", "bf16" or "fp64") of a precision name, alias or dtype.

    ``allowed`` limits the canonical names a caller supports; ``what`` names the argument in the error,
    which lists every accepted spelling.
    """
    key = _dtype_name(value) if not isinstance(value, str) else value.strip().lower()
    name = _ALIASES.get(key) if key is not None else None
    if name is None or name not in allowed:
        spellings = sorted(alias for alias, canonical in _ALIASES.items() if canonical in allowed)
        raise ValueError(f"{what} must be one of {list(allowed)} (also accepted: {spellings}, or the matching "
                         f"torch or numpy dtype), got {value!r}")
    return name


def torch_dtype(value):
    """The torch dtype of a precision name, alias or dtype (``"bf16"`` -> ``torch.bfloat16``)."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
            "fp64": torch.float64}[resolve_precision(value)]


def device_name(device, what: str = "device") -> str:
    """The spelling of ``device`` ("auto" for None; "cpu", "cuda", "cuda:N", "mps" or a ``torch.device``'s),
    checked without importing torch or asking the machine; ``what`` names the argument in the error."""
    if device is None:
        return "auto"
    text = device.strip().lower() if isinstance(device, str) else str(device)
    if text != "auto" and not re.fullmatch(r"(cpu|cuda|mps)(:\d+)?", text):
        raise ValueError(f"{what} must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}")
    return text


def resolve_device(device="auto"):
    """``torch.device`` of ``device``: "auto" or None is CUDA when present, else the CPU.

    Asking for CUDA on a machine without it raises ValueError rather than failing later inside torch.
    """
    import torch

    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        out = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}") from err
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asks for CUDA, but torch sees no CUDA device; use 'auto' or 'cpu'")
    return out


@contextmanager
def cpu_threads(n: int | None):
    """Run the block with ``n`` CPU threads in torch and in the BLAS/OpenMP pools numpy and scipy use, then
    restore them (None: leave them as they are). The setting is process-wide while the block runs."""
    if n is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)
