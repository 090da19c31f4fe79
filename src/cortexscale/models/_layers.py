"""Transformer building blocks shared by the ViT and the video GPT."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import resolve_layers

__all__ = [
    "Attention", "Block", "DropPath", "Dropout", "MLP", "dropout", "init_weights", "intermediate_layers", "uninitialised",
]


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout. On CPU the mask comes from ``rand >= p``, which is about twice as fast as
    ``F.dropout``'s Bernoulli sampling there; elsewhere it is ``F.dropout``."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    return x * torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))


class Dropout(nn.Module):
    """:func:`dropout` as a module."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p: float, causal: bool) -> torch.Tensor:
    """Scaled dot-product attention of (B, heads, L, d) tensors with attention dropout ``p``.

    Fused kernels handle every case but training-time dropout on CPU, where SDPA falls back to its math
    kernel. There the explicit form is quicker: the scale and the causal mask ride on one ``baddbmm``, and
    the dropout mask is the fast one of :func:`dropout`. The causal mask is top-left aligned, as in SDPA.
    """
    if p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
    B, H, L, d = q.shape
    S = k.shape[-2]
    q2, k2, v2 = q.reshape(B * H, L, d), k.reshape(B * H, S, d), v.reshape(B * H, S, d)
    if causal:
        mask = torch.full((L, S), float("-inf"), dtype=q.dtype, device=q.device).triu_(1)
        scores = torch.baddbmm(mask, q2, k2.transpose(1, 2), alpha=d**-0.5)
    else:
        scores = torch.bmm(q2, k2.transpose(1, 2)).mul_(d**-0.5)
    return torch.bmm(dropout(scores.softmax(dim=-1), p, True), v2).view(B, H, L, d)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch of a sample with probability ``p``."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection; (B, L, D) -> (B, L, D)."""

    def __init__(self, dim: int, heads: int, attn_dropout: float = 0.0, dropout: float = 0.0, causal: bool = False):
        super().__init__()
        self.heads, self.causal, self.attn_dropout = heads, causal, attn_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        y = _attention(q, k, v, p, self.causal)
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, L, D)))


class MLP(nn.Module):
    """Two-layer GELU MLP; (B, L, D) -> (B, L, D)."""

    def __init__(self, dim: int, ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        inner = max(1, int(round(dim * ratio)))
        self.fc1 = nn.Linear(dim, inner)
        self.fc2 = nn.Linear(inner, dim)
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(F.gelu(self.fc1(x), approximate="tanh")))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + DropPath(Attn(LN(x)))``, then ``x + DropPath(MLP(LN(x)))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 attn_dropout: float = 0.0, drop_path: float = 0.0, causal: bool = False):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, attn_dropout, dropout, causal)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio, dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.ln1(x)))
        return x + self.drop_path(self.mlp(self.ln2(x)))


def uninitialised(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with its tensors allocated on the default device but not filled.

    It skips PyTorch's default initialisation, which :func:`init_weights` overwrites anyway (about half
    the construction time of a wide model). The caller must initialise every tensor of the result.
    """
    device = torch.get_default_device()
    with torch.device("meta"):
        module = build()
    return module.to_empty(device=device)


def init_weights(module: nn.Module, n_layers: int) -> None:
    """GPT-2 initialisation: N(0, 0.02) weights, zero biases, residual projections scaled by 1/sqrt(2 n_layers)."""
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            std = 0.02 / math.sqrt(2 * n_layers) if name.endswith(("attn.proj", "mlp.fc2")) else 0.02
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def intermediate_layers(layers: int | Sequence[int] | None, depth: int) -> list[int]:
    """Layers a ``forward_intermediates`` call returns, ascending: every layer ``0..depth`` for None, else
    :func:`cortexscale.layers.resolve_layers` (0 = the embeddings or input, k = output of block or stage k)."""
    return list(range(depth + 1)) if layers is None else resolve_layers(layers, depth)
