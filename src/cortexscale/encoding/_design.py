"""The design of a ridge problem: features as given, or undelayed features plus FIR delays.

Delays are applied within runs (``run_ids``, one label per sample, runs contiguous);
the delayed design is materialised only by :meth:`Design.dense`. Products with it,
and its kernel, are built from lagged products of the undelayed features instead.
Column layout is delay-major: column ``k * n_base + j`` is feature ``j`` at ``delays[k]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._backend import Backend

__all__ = ["Design", "delay_matrix", "delayed_kernel"]


def _run_positions(run_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each sample within its run, and the length of its run."""
    starts = np.flatnonzero(np.r_[True, run_ids[1:] != run_ids[:-1]])
    lengths = np.diff(np.r_[starts, len(run_ids)])
    pos = np.arange(len(run_ids)) - np.repeat(starts, lengths)
    return pos, np.repeat(lengths, lengths)


def _delay_valid(run_ids: np.ndarray, d: int) -> np.ndarray:
    """Rows whose source row ``i - d`` lies inside the same run (n_samples,) bool."""
    pos, length = _run_positions(run_ids)
    return (pos - d >= 0) & (pos - d < length)


def delay_matrix(B: Backend, X, delays, run_ids: np.ndarray):
    """Materialise delayed features (n, p) -> (n, p * n_delays), delay-major columns."""
    n = X.shape[0]
    blocks = []
    for d in delays:
        shifted = B.zeros((n, X.shape[1]))
        if abs(d) < n:
            if d >= 0:
                shifted[d:] = X[: n - d]
            else:
                shifted[:d] = X[-d:]
        valid = B.asarray(_delay_valid(run_ids, d).astype(np.float32))
        blocks.append(shifted * valid[:, None])
    return _concat(B, blocks, axis=1)


def _concat(B: Backend, arrays, axis):
    if B.name == "numpy":
        return np.concatenate(arrays, axis=axis)
    return B._torch.cat(arrays, dim=axis)


def delayed_kernel(B: Backend, K0, delays, run_ids_a: np.ndarray, run_ids_b: np.ndarray):
    """Kernel of delayed features from the kernel of undelayed ones.

    ``K0 = X_a X_b^T`` (n_a, n_b) of the undelayed features; returns the
    (n_a, n_b) kernel of the delayed designs, ``sum_d K0[i - d, j - d]``, with
    rows whose source falls outside their run contributing zero. This costs
    O(n_a n_b n_delays) instead of a product over ``n_delays`` times more features.
    """
    na, nb = K0.shape
    out = B.zeros((na, nb))
    for d in delays:
        if abs(d) >= min(na, nb):
            continue
        dst_a, src_a = _lag_slices(na, d)
        dst_b, src_b = _lag_slices(nb, d)
        va, vb = _delay_valid(run_ids_a, d)[dst_a], _delay_valid(run_ids_b, d)[dst_b]
        block = K0[src_a, src_b]
        if not (va.all() and vb.all()):
            block = block * (B.asarray(va.astype(np.float32))[:, None] * B.asarray(vb.astype(np.float32))[None, :])
        out[dst_a, dst_b] += block
    return out


def _lag_slices(n: int, d: int) -> tuple[slice, slice]:
    """Destination rows and source rows of a shift by ``d`` (``|d| < n``): ``out[dst] = x[src]``."""
    return (slice(d, None), slice(0, n - d)) if d >= 0 else (slice(0, n + d), slice(-d, None))


@dataclass
class Design:
    """Features as given, or undelayed features plus the delays to apply, optionally centred.

    ``X`` is (n_samples, n_base); with ``delays`` the effective design is
    (n_samples, n_base * n_delays) in delay-major column order. ``mean``
    (n_features,) is subtracted from every row of the effective design.
    """

    X: object
    delays: tuple | None = None
    run_ids: np.ndarray | None = None
    mean: object = None

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1] * (len(self.delays) if self.delays else 1)

    def runs(self) -> np.ndarray:
        return np.zeros(self.n_samples, np.int64) if self.run_ids is None else self.run_ids

    def like(self, X, run_ids=None) -> "Design":
        """A design for new samples with the same delays and centring."""
        return Design(X, self.delays, run_ids, self.mean)

    def on(self, B: Backend) -> "Design":
        """The same design with its arrays in ``B``'s dtype and on its device."""
        return Design(B.asarray(self.X), self.delays, self.run_ids, None if self.mean is None else B.asarray(self.mean))

    def dense(self, B: Backend):
        """The effective (n_samples, n_features) matrix."""
        Xd = delay_matrix(B, self.X, self.delays, self.runs()) if self.delays else self.X
        return Xd if self.mean is None else Xd - self.mean

    def _raw_matmul(self, B: Backend, W):
        if not self.delays:
            return self.X @ W
        n, p0 = self.X.shape
        runs = self.runs()
        out = B.zeros((n, W.shape[1]))
        for k, d in enumerate(self.delays):
            if abs(d) >= n:
                continue
            part = self.X @ W[k * p0 : (k + 1) * p0]
            valid = B.asarray(_delay_valid(runs, d).astype(np.float32))[:, None]
            if d >= 0:
                out[d:] += part[: n - d] * valid[d:]
            else:
                out[:d] += part[-d:] * valid[:d]
        return out

    def matmul(self, B: Backend, W):
        """Effective design times W (n_features, k) -> (n_samples, k), without materialising delays."""
        out = self._raw_matmul(B, W)
        return out if self.mean is None else out - self.mean[None, :] @ W

    def kernel(self, B: Backend, other: "Design | None" = None):
        """(n_self, n_other) linear kernel of the effective designs."""
        other = other or self
        K0 = self.X @ other.X.T
        K = delayed_kernel(B, K0, self.delays, self.runs(), other.runs()) if self.delays else K0
        if self.mean is None:
            return K
        mu = self.mean[:, None]
        a = self._raw_matmul(B, mu)
        b = other._raw_matmul(B, mu)
        return K - a - b.T + float((self.mean * self.mean).sum())

    def rmatmul(self, B: Backend, M):
        """Effective design transposed times M (n_samples, k) -> (n_features, k)."""
        if not self.delays:
            out = self.X.T @ M
        else:
            n = self.n_samples
            runs = self.runs()
            blocks = []
            for d in self.delays:
                Mv = M * B.asarray(_delay_valid(runs, d).astype(np.float32))[:, None]
                src = B.zeros(M.shape)
                if abs(d) < n:
                    if d >= 0:
                        src[: n - d] = Mv[d:]
                    else:
                        src[-d:] = Mv[:d]
                blocks.append(self.X.T @ src)
            out = _concat(B, blocks, axis=0)
        return out if self.mean is None else out - self.mean[:, None] * M.sum(0)[None, :]
