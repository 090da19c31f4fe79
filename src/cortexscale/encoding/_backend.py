"""Array backends for the ridge solvers.

A backend is a small object with the handful of array operations the solvers
need, so that each solver is written once and runs on numpy, torch CPU and
torch CUDA. ``BACKENDS`` is the registry; tests loop over every entry that is
available on the machine.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Callable

import numpy as np

from ..runtime import resolve_device, resolve_precision

__all__ = ["BACKENDS", "Backend", "available_backends", "get_backend", "resolve_dtype"]

_NUMPY_NAMES = {"fp32": "float32", "fp64": "float64"}


def resolve_dtype(dtype, what: str = "dtype") -> str:
    """numpy name ("float32" or "float64") of any spelling of fp32 or fp64 that ``resolve_precision`` accepts."""
    return _NUMPY_NAMES[resolve_precision(dtype, tuple(_NUMPY_NAMES), what)]


class Backend:
    """Operations shared by every backend; subclasses fill in the array kernels.

    ``dtype`` is any spelling of fp32 or fp64 (``"fp32"``, ``"float64"``, ``torch.float32``,
    ``np.float64``, ...); ``dtype_name`` holds its numpy name.
    """

    name = "abstract"

    def __init__(self, dtype="fp32"):
        self.dtype_name = resolve_dtype(dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype_name!r})"

    def with_dtype(self, dtype) -> "Backend":
        """The same backend, on the same device, computing in ``dtype`` (fp32 or fp64)."""
        twin = copy.copy(self)
        twin.dtype_name = resolve_dtype(dtype)
        return twin

    #: decompositions up to this size run in float64 whatever the dtype: they are cheap,
    #: and float32 LAPACK eigenvectors cost up to ~1e-5 in cross-validated scores.
    small_eigh = 1024

    def eigh(self, a, in_float64: bool = False):
        """Eigendecomposition of a symmetric matrix ``a`` (m, m): eigenvalues (m,) ascending, eigenvectors (m, m).

        A float32 ``a`` is decomposed in float64, and the result cast back, when ``in_float64``
        is set or ``m <= small_eigh``. A float32 decomposition that fails to converge is
        retried in float64, then by SVD, with a warning; it never raises for a finite input.
        """
        if self.dtype_name == "float32" and not in_float64 and a.shape[0] > self.small_eigh:
            try:
                return self._eigh(self.astype(a, "float32"))
            except Exception as err:  # LinAlgError (numpy) or torch's _LinAlgError
                warnings.warn(
                    f"eigh of a {tuple(a.shape)} float32 matrix failed to converge ({type(err).__name__}); "
                    "retrying in float64",
                    RuntimeWarning,
                    stacklevel=2,
                )
        try:
            d, v = self._eigh(self.astype(a, "float64"))
            return self.astype(d, self.dtype_name), self.astype(v, self.dtype_name)
        except Exception as err:
            warnings.warn(f"float64 eigh of a {tuple(a.shape)} matrix failed ({type(err).__name__}); "
                          "falling back to SVD", RuntimeWarning, stacklevel=2)
        u, s, _ = self._svd(self.astype(a, "float64"))
        order = self.argsort(s)
        return self.astype(s[order], self.dtype_name), self.astype(u[:, order], self.dtype_name)

    def spd_inverse(self, a):
        """Inverse of a symmetric positive (semi)definite ``a`` (m, m).

        Cholesky of the lower triangle first; an indefinite or singular ``a`` (round-off)
        is inverted through its eigendecomposition with a relative eigenvalue floor instead.
        """
        try:
            return self._cho_inverse(a)
        except Exception:
            d, v = self.eigh((a + a.T) * 0.5)
            d = self.clip_nonneg(d, floor=float(d.max()) * 1e-10)
            return (v / d[None, :]) @ v.T


def _lapack_eigh(a: np.ndarray):
    """LAPACK's divide-and-conquer ``syevd`` through scipy, ascending eigenvalues.

    On the CPU it beats both ``numpy.linalg.eigh`` and ``torch.linalg.eigh`` (about
    1.6 s against 2-2.8 s for a 3000 x 3000 float32 kernel on two cores) and gives
    more nearly orthogonal float32 eigenvectors than torch's.
    """
    from scipy.linalg import eigh

    return eigh(a, driver="evd", check_finite=False)


class NumpyBackend(Backend):
    name = "numpy"
    device = "cpu"

    @property
    def dtype(self):
        return np.dtype(self.dtype_name)

    def asarray(self, x, dtype: str | None = None):
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        return np.ascontiguousarray(x, dtype=np.dtype(dtype or self.dtype_name))

    def to_numpy(self, x) -> np.ndarray:
        return np.asarray(x)

    def astype(self, x, dtype: str):
        return x.astype("float32" if dtype == "bfloat16" else dtype, copy=False)

    def zeros(self, shape, dtype: str | None = None):
        return np.zeros(shape, dtype=dtype or self.dtype_name)

    def eye(self, n):
        return np.eye(n, dtype=self.dtype_name)

    def _eigh(self, a):
        return _lapack_eigh(a)

    def _svd(self, a):
        return np.linalg.svd(a, full_matrices=False)

    def argsort(self, x):
        return np.argsort(x)

    def clip_nonneg(self, x, floor: float = 0.0):
        return np.maximum(x, floor)

    def _cho_inverse(self, a):
        from scipy.linalg import cho_factor, cho_solve

        return cho_solve(cho_factor(a, lower=True, check_finite=False), np.eye(len(a), dtype=a.dtype),
                         check_finite=False)

    def to_lowp(self, a):
        """numpy has no fast bf16 product, so reduced precision is a no-op here."""
        return a

    def sum(self, x, axis=None):
        return x.sum(axis=axis)

    def argmax(self, x, axis=0):
        return np.argmax(x, axis=axis)

    def take_along(self, x, idx, axis=0):
        return np.take_along_axis(x, idx, axis=axis)

    def synchronize(self):
        pass


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, dtype="fp32", device="cpu"):
        super().__init__(dtype)
        self.device = resolve_device(device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dtype={self.dtype_name!r}, device={str(self.device)!r})"

    @property
    def _torch(self):
        import torch

        return torch

    @property
    def dtype(self):
        return getattr(self._torch, self.dtype_name)

    def asarray(self, x, dtype: str | None = None):
        torch = self._torch
        dt = getattr(torch, dtype or self.dtype_name)
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=dt).contiguous()
        return torch.as_tensor(np.ascontiguousarray(x), dtype=dt, device=self.device)

    def to_numpy(self, x) -> np.ndarray:
        return x.detach().cpu().numpy()

    def astype(self, x, dtype: str):
        return x.to(getattr(self._torch, dtype))

    def zeros(self, shape, dtype: str | None = None):
        return self._torch.zeros(shape, dtype=getattr(self._torch, dtype or self.dtype_name), device=self.device)

    def eye(self, n):
        return self._torch.eye(n, dtype=self.dtype, device=self.device)

    def _eigh(self, a):
        if self.device.type == "cpu":
            d, v = _lapack_eigh(a.numpy())
            return self._torch.from_numpy(d), self._torch.from_numpy(v)
        return self._torch.linalg.eigh(a)

    def _svd(self, a):
        return self._torch.linalg.svd(a, full_matrices=False)

    def argsort(self, x):
        return self._torch.argsort(x)

    def clip_nonneg(self, x, floor: float = 0.0):
        return x.clamp(min=floor)

    def _cho_inverse(self, a):
        L, info = self._torch.linalg.cholesky_ex(a)
        if int(info) != 0:
            raise np.linalg.LinAlgError(f"matrix not positive definite (leading minor {int(info)})")
        return self._torch.cholesky_inverse(L)

    def to_lowp(self, a):
        return a.to(self._torch.bfloat16)

    def sum(self, x, axis=None):
        return x.sum() if axis is None else x.sum(dim=axis)

    def argmax(self, x, axis=0):
        return self._torch.argmax(x, dim=axis)

    def take_along(self, x, idx, axis=0):
        return self._torch.take_along_dim(x, idx, dim=axis)

    def synchronize(self):
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a core dependency
        return False


BACKENDS: dict[str, Callable[..., Backend]] = {
    "numpy": NumpyBackend,
    "torch": lambda dtype="fp32": TorchBackend(dtype, "cpu"),
    "torch_cuda": lambda dtype="fp32": TorchBackend(dtype, "cuda"),
}


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine."""
    return [name for name in BACKENDS if name != "torch_cuda" or _cuda_available()]


def get_backend(backend: Any = "auto", dtype="fp32") -> Backend:
    """Resolve a backend name, device or instance into a :class:`Backend`.

    ``backend`` is ``"numpy"``, ``"torch"`` (torch on the CPU), ``"torch_cuda"``, a device
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``: torch on that device), or ``"auto"``:
    torch on :func:`cortexscale.runtime.resolve_device`'s choice, CUDA when present, else the CPU.
    ``dtype`` is any spelling of fp32 or fp64 (see :func:`resolve_dtype`). An instance is returned as is.
    """
    resolve_dtype(dtype)
    if isinstance(backend, Backend):
        return backend
    if isinstance(backend, str) and backend.strip().lower() == "numpy":
        return NumpyBackend(dtype)
    return TorchBackend(dtype, _torch_device(backend))


def _torch_device(backend):
    """The torch.device that a backend name other than "numpy", or a device, stands for."""
    name = backend.strip().lower() if isinstance(backend, str) else None
    device = {"torch": "cpu", "torch_cuda": "cuda"}.get(name, backend)
    try:
        return resolve_device(device)
    except ValueError as err:
        raise ValueError(
            f"backend must be 'auto', 'numpy', 'torch', 'torch_cuda' or a device ('cpu', 'cuda', 'cuda:N', "
            f"a torch.device); backend={backend!r} fails: {err}"
        ) from None
