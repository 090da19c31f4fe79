"""Vision transformer with AugReg-style regularisation and variants decoded from strings ("S/16")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import Block, Dropout, init_weights, intermediate_layers, uninitialised
from .configs import VIT_SIZES, ViTConfig, parse_variant
from .counting import attention_train_flops, linear_weights

__all__ = ["VIT_SIZES", "ViT", "ViTConfig", "parse_variant"]


class ViT(nn.Module):
    """Pre-LN vision transformer: patch embedding, class token, learned positions, blocks, head."""

    config_class = ViTConfig
    embedding_prefixes = ("pos_emb", "cls_token")

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = c = config
        self.patch_embed = nn.Conv2d(c.in_chans, c.width, c.patch, stride=c.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.width))
        self.pos_emb = nn.Parameter(torch.zeros(1, c.n_patches + 1, c.width))
        self.drop = Dropout(c.dropout)
        rates = [c.drop_path * i / max(c.depth - 1, 1) for i in range(c.depth)]
        self.blocks = uninitialised(lambda: nn.ModuleList(
            Block(c.width, c.heads, c.mlp_ratio, c.dropout, c.attn_dropout, rate) for rate in rates
        ))
        self.norm = nn.LayerNorm(c.width)
        self.head = nn.Linear(c.width, c.n_classes)
        init_weights(self, c.depth)
        nn.init.normal_(self.pos_emb, std=0.02)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.zeros_(self.head.weight)

    def reset_head(self, n_classes: int) -> None:
        """Replace the classifier with a zero-initialised one of ``n_classes`` outputs (transfer)."""
        self.config = replace(self.config, n_classes=n_classes)
        self.head = nn.Linear(self.config.width, n_classes).to(self.head.weight.device)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) -> tokens (B, 1 + N, width)."""
        c = self.config
        if x.ndim != 4 or tuple(x.shape[1:]) != (c.in_chans, c.image_size, c.image_size):
            raise ValueError(f"images must have shape (B, {c.in_chans}, {c.image_size}, {c.image_size}), "
                             f"got {tuple(x.shape)}")
        h = self.patch_embed(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1) + self.pos_emb
        return self.drop(h)

    def forward_intermediates(self, x: torch.Tensor, layers: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """Hidden states of images (B, C, H, W) at ``layers`` (:mod:`cortexscale.layers`: 0 = patch and position
        embeddings, k = output of block k; None = all 0..depth), ascending: each (B, 1 + N, width), class token first."""
        want = intermediate_layers(layers, len(self.blocks))
        h = self._embed(x)
        out = [h] if want[0] == 0 else []
        for k, block in enumerate(self.blocks, start=1):
            if len(out) == len(want):
                break
            h = block(h)
            if k in want:
                out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, n_classes)."""
        h = self._embed(x)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        return self.head(h[:, 0] if self.config.pool == "cls" else h[:, 1:].mean(dim=1))

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy against hard labels (B,) or soft labels (B, n_classes), as Mixup makes."""
        logits = self(batch["image"]).float()
        label = batch["label"]
        if label.ndim == 1:
            loss = F.cross_entropy(logits, label)
            hard = label
        else:
            loss = -(label * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
            hard = label.argmax(dim=-1)
        acc = (logits.argmax(dim=-1) == hard).float().mean()
        return loss, {"loss": loss.item(), "accuracy": acc.item()}

    def flops_per_sample(self) -> float:
        """Training FLOPs per image; the patch embedding gets no input gradient, so it costs 2x its forward."""
        c = self.config
        seq = c.n_patches + 1
        patch = 4.0 * self.patch_embed.weight.numel() * c.n_patches
        return patch + 6.0 * (linear_weights(self.blocks) * seq + linear_weights(self.head)) + attention_train_flops(
            c.depth, seq, c.width
        )
