"""Video GPT: a causal transformer over the flattened (t, h, w) grid of VQ-VAE tokens."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import Block, Dropout, init_weights, intermediate_layers, uninitialised
from .configs import VideoGPTConfig, split_axes
from .counting import attention_train_flops, linear_weights

__all__ = ["VideoGPT", "VideoGPTConfig", "split_axes"]


class VideoGPT(nn.Module):
    """Causal transformer over video tokens; every token of the clip is predicted from those before it.

    A learned start embedding shifts the clip right by one position. With ``cond``, the previous clip's
    tokens come first as context and only the current clip is scored.
    """

    config_class = VideoGPTConfig
    embedding_prefixes = ("tok_emb", "sos", "pos_", "segment")

    def __init__(self, config: VideoGPTConfig):
        super().__init__()
        self.config = config
        c = config
        T, H, W = c.grid
        dt, dh, dw = split_axes(c.hidden)
        self.tok_emb = nn.Embedding(c.vocab_size, c.hidden)
        self.sos = nn.Parameter(torch.zeros(c.hidden))
        self.pos_t = nn.Parameter(torch.zeros(T, dt))
        self.pos_h = nn.Parameter(torch.zeros(H, dh))
        self.pos_w = nn.Parameter(torch.zeros(W, dw))
        self.segment = nn.Parameter(torch.zeros(2, c.hidden)) if c.cond else None
        self.drop = Dropout(c.dropout)
        self.blocks = uninitialised(lambda: nn.ModuleList(
            Block(c.hidden, c.heads, c.mlp_ratio, c.dropout, c.attn_dropout, causal=True) for _ in range(c.layers)
        ))
        self.ln_f = nn.LayerNorm(c.hidden)
        self.head = nn.Linear(c.hidden, c.vocab_size, bias=False)
        init_weights(self, c.layers)
        for p in (self.sos, self.pos_t, self.pos_h, self.pos_w):
            nn.init.normal_(p, std=0.02)
        if self.segment is not None:
            nn.init.normal_(self.segment, std=0.02)

    @property
    def tokens_per_sample(self) -> int:
        return self.config.n_tokens

    def position_embedding(self) -> torch.Tensor:
        """Factorised (t, h, w) embedding, concatenated per axis: (T*H*W, hidden)."""
        T, H, W = self.config.grid
        parts = (
            self.pos_t[:, None, None, :].expand(T, H, W, -1),
            self.pos_h[None, :, None, :].expand(T, H, W, -1),
            self.pos_w[None, None, :, :].expand(T, H, W, -1),
        )
        return torch.cat(parts, dim=-1).reshape(T * H * W, -1)

    def _check_tokens(self, tokens: torch.Tensor, name: str) -> torch.Tensor:
        grid = self.config.grid
        if tokens.ndim == 2 and tokens.shape[1] == self.config.n_tokens:
            return tokens
        if tokens.ndim != 4 or tuple(tokens.shape[1:]) != grid:
            raise ValueError(f"{name} must have shape (B, {grid[0]}, {grid[1]}, {grid[2]}) or "
                             f"(B, {self.config.n_tokens}), got {tuple(tokens.shape)}")
        return tokens.reshape(tokens.shape[0], -1)

    def _embed(self, tokens: torch.Tensor, cond_tokens: torch.Tensor | None) -> torch.Tensor:
        """Input sequence (B, S, hidden); S = L, or 2 L with a conditioning clip."""
        x = self._check_tokens(tokens, "tokens")
        pos = self.position_embedding()
        h = torch.cat([self.sos.expand(x.shape[0], 1, -1), self.tok_emb(x[:, :-1])], dim=1) + pos
        if self.config.cond:
            if cond_tokens is None:
                raise ValueError("cond_tokens is required: this model was built with cond=True")
            c = self._check_tokens(cond_tokens, "cond_tokens")
            h = torch.cat([self.tok_emb(c) + pos + self.segment[0], h + self.segment[1]], dim=1)
        elif cond_tokens is not None:
            raise ValueError("cond_tokens given, but this model was built with cond=False")
        return self.drop(h)

    def forward_intermediates(self, tokens: torch.Tensor, layers: int | Sequence[int] | None = None,
                              cond_tokens: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Hidden states at the current clip's positions for ``layers`` (:mod:`cortexscale.layers`: 0 = token and
        position embeddings, k = output of block k; None = all 0..layers), ascending: each (B, T*H*W, hidden)."""
        want = intermediate_layers(layers, len(self.blocks))
        L = self.config.n_tokens
        h = self._embed(tokens, cond_tokens)
        out = [h[:, -L:]] if want[0] == 0 else []
        for k, block in enumerate(self.blocks, start=1):
            if len(out) == len(want):
                break
            h = block(h)
            if k in want:
                out.append(h[:, -L:])
        return out

    def forward(self, tokens: torch.Tensor, cond_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits (B, T*H*W, vocab) for tokens (B, T, H, W)."""
        h = self._embed(tokens, cond_tokens)
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h[:, -self.config.n_tokens:]))

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean cross-entropy (nats per token) of the clip's tokens."""
        tokens = batch["tokens"]
        logits = self(tokens, batch.get("cond_tokens"))
        target = self._check_tokens(tokens, "tokens").reshape(-1)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target)
        return loss, {"loss": loss.item()}

    def flops_per_sample(self) -> float:
        """Training FLOPs per clip: 6 N tokens over the blocks and head, plus attention."""
        c, L = self.config, self.config.n_tokens
        seq = 2 * L if c.cond else L
        return 6.0 * (linear_weights(self.blocks) * seq + linear_weights(self.head) * L) + attention_train_flops(
            c.layers, seq, c.hidden
        )
