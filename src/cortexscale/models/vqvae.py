"""VQ-VAE video tokenizer: 3D-conv encoder and decoder around an EMA codebook (VideoGPT's tokenizer)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import intermediate_layers
from .configs import VQVAEConfig, _log2

__all__ = ["EMACodebook", "VQVAE", "VQVAEConfig"]


class ResBlock3d(nn.Module):
    """``x + conv1(act(norm(conv3(act(norm(x))))))`` on (B, C, T, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(1, channels), nn.SiLU(), nn.Conv3d(channels, channels, 3, padding=1),
            nn.GroupNorm(1, channels), nn.SiLU(), nn.Conv3d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _strides(config: VQVAEConfig) -> list[tuple[int, int, int]]:
    n_t = _log2(config.temporal_downsample, "temporal_downsample")
    n_s = _log2(config.spatial_downsample, "spatial_downsample")
    return [(2 if i < n_t else 1, 2 if i < n_s else 1, 2 if i < n_s else 1) for i in range(max(n_t, n_s))]


def _kernel(stride: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(4 if s == 2 else 3 for s in stride)


class EMACodebook(nn.Module):
    """Nearest-neighbour codebook updated by exponential moving averages, never by gradients.

    Codes are initialised from the first training batch; a code whose usage EMA falls below
    ``restart_threshold`` is restarted at a random encoder output of the current batch.
    """

    def __init__(self, size: int, dim: int, decay: float, eps: float, restart_threshold: float):
        super().__init__()
        self.size, self.decay, self.eps, self.restart_threshold = size, decay, eps, restart_threshold
        self.register_buffer("embed", torch.randn(size, dim))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed_sum", self.embed.clone())
        self.register_buffer("initialised", torch.tensor(False))

    def assign(self, flat: torch.Tensor) -> torch.Tensor:
        """Index (N,) of the nearest code for each row of ``flat`` (N, D), by squared distance."""
        with torch.no_grad():
            d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed.T + self.embed.pow(2).sum(1)
            return d.argmin(dim=1)

    @torch.no_grad()
    def _random_rows(self, flat: torch.Tensor, n: int) -> torch.Tensor:
        return flat[torch.randint(flat.shape[0], (n,), device=flat.device)]

    @torch.no_grad()
    def update(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        """One EMA step from encoder outputs ``flat`` (N, D) and their codes ``idx`` (N,)."""
        counts = torch.bincount(idx, minlength=self.size).to(flat.dtype)
        sums = torch.zeros_like(self.embed_sum).index_add_(0, idx, flat)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.size * self.eps) * n
        self.embed.copy_(self.embed_sum / smoothed[:, None])
        dead = self.cluster_size < self.restart_threshold
        if dead.any():
            fresh = self._random_rows(flat, int(dead.sum()))
            self.embed[dead] = fresh
            self.embed_sum[dead] = fresh
            self.cluster_size[dead] = 1.0

    @torch.no_grad()
    def initialise(self, flat: torch.Tensor) -> None:
        rows = self._random_rows(flat, self.size)
        self.embed.copy_(rows)
        self.embed_sum.copy_(rows)
        self.cluster_size.fill_(1.0)
        self.initialised.fill_(True)

    def forward(self, z: torch.Tensor):
        """Quantise z (B, D, T, H, W): straight-through codes (same shape), ids (B, T, H, W), used counts (K,)."""
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            flat = z.movedim(1, -1).reshape(-1, z.shape[1])
            if self.training and not bool(self.initialised):
                self.initialise(flat.detach())
            idx = self.assign(flat.detach())
            if self.training:
                self.update(flat.detach(), idx)
            q = self.embed[idx].view(*z.shape[:1], *z.shape[2:], z.shape[1]).movedim(-1, 1)
            ids = idx.view(z.shape[0], *z.shape[2:])
            counts = torch.bincount(idx, minlength=self.size)
            return z + (q - z).detach(), q, ids, counts


class VQVAE(nn.Module):
    """Video tokenizer: clips (B, C, T, H, W) in [-1, 1] <-> token ids (B, T', H', W')."""

    config_class = VQVAEConfig
    embedding_prefixes = ()

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.config = c = config
        strides = _strides(c)
        down, ch = [], c.in_channels
        for s in strides:
            down += [nn.Conv3d(ch, c.hidden, _kernel(s), stride=s, padding=1)]
            ch = c.hidden
        self.down = nn.ModuleList(down)
        self.enc_res = nn.ModuleList(ResBlock3d(c.hidden) for _ in range(c.n_res_layers))
        self.pre_vq = nn.Sequential(nn.GroupNorm(1, c.hidden), nn.SiLU(), nn.Conv3d(c.hidden, c.embedding_dim, 1))
        self.codebook = EMACodebook(c.codebook_size, c.embedding_dim, c.decay, c.eps, c.restart_threshold)
        self.post_vq = nn.Conv3d(c.embedding_dim, c.hidden, 1)
        self.dec_res = nn.Sequential(*(ResBlock3d(c.hidden) for _ in range(c.n_res_layers)), nn.GroupNorm(1, c.hidden), nn.SiLU())
        up = []
        for i, s in enumerate(reversed(strides)):
            out = c.in_channels if i == len(strides) - 1 else c.hidden
            up += [nn.ConvTranspose3d(c.hidden, out, _kernel(s), stride=s, padding=1)]
        self.up = nn.ModuleList(up)

    def _check_video(self, video: torch.Tensor) -> None:
        c = self.config
        want = (c.in_channels, c.frames, c.size, c.size)
        if video.ndim != 5 or tuple(video.shape[1:]) != want:
            raise ValueError(f"video must have shape (B, {', '.join(map(str, want))}), got {tuple(video.shape)}")

    def _stages(self):
        return [*self.down, *self.enc_res, self.pre_vq]

    def forward_intermediates(self, video: torch.Tensor, layers: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """Encoder activations of clips (B, C, T, H, W) at ``layers`` (:mod:`cortexscale.layers`: 0 = the input,
        k = output of stage k of the downsampling convs, residual blocks and pre-quantisation conv; None =
        all), ascending: each (B, C_k, t, h, w)."""
        self._check_video(video)
        stages = self._stages()
        want = intermediate_layers(layers, len(stages))
        h = video
        out = [h] if want[0] == 0 else []
        for k, stage in enumerate(stages, start=1):
            if len(out) == len(want):
                break
            h = stage(h)
            if k <= len(self.down):
                h = F.silu(h)
            if k in want:
                out.append(h)
        return out

    def _encode(self, video: torch.Tensor) -> torch.Tensor:
        return self.forward_intermediates(video, layers=-1)[0]

    def _decode(self, q: torch.Tensor) -> torch.Tensor:
        h = self.dec_res(self.post_vq(q))
        for i, layer in enumerate(self.up):
            h = layer(h)
            if i < len(self.up) - 1:
                h = F.silu(h)
        return h

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T', H', W') of clips (B, C, T, H, W); the codebook is left untouched, even in training mode."""
        z = self._encode(video)
        with torch.autocast(z.device.type, enabled=False):
            ids = self.codebook.assign(z.float().movedim(1, -1).reshape(-1, z.shape[1]))
        return ids.view(z.shape[0], *z.shape[2:])

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Reconstructed clips (B, C, T, H, W) from token ids (B, T', H', W')."""
        if ids.ndim != 4 or tuple(ids.shape[1:]) != self.config.token_grid:
            raise ValueError(f"ids must have shape (B, {', '.join(map(str, self.config.token_grid))}), got {tuple(ids.shape)}")
        bad = (ids < 0) | (ids >= self.config.codebook_size)
        if bad.any():
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"ids of shape {tuple(ids.shape)} must lie in [0, {self.config.codebook_size}), "
                             f"got {int(ids[where])} at index {where}")
        q = self.codebook.embed[ids].movedim(-1, 1)
        return self._decode(q)

    def forward(self, video: torch.Tensor):
        """Reconstruction (B, C, T, H, W), encoder output z and its quantisation (B, D, T', H', W'), ids, counts.

        On CPU the 3D convolutions run in float32 even under autocast: torch's CPU bfloat16 conv3d weight
        gradient intermittently returned NaN entries (torch 2.13) from finite inputs.
        """
        with torch.autocast("cpu", enabled=False) if video.device.type == "cpu" else contextlib.nullcontext():
            video = video.float() if video.device.type == "cpu" else video
            z = self._encode(video)
            z_q, q, ids, counts = self.codebook(z)
            return self._decode(z_q), z, q, ids, counts

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Reconstruction MSE plus ``commitment`` x ||z - sg(e)||^2."""
        video = batch["video"]
        recon, z, q, _, counts = self(video)
        rec = F.mse_loss(recon.float(), video.float())
        commit = F.mse_loss(z.float(), q.detach())
        p = counts.float() / counts.sum()
        perplexity = torch.exp(-(p * torch.log(p + 1e-10)).sum())
        loss = rec + self.config.commitment * commit
        logs = {"loss": loss.item(), "recon": rec.item(), "commit": commit.item(),
                "perplexity": perplexity.item(), "used_codes": (counts > 0).float().mean().item()}
        return loss, logs

    def _conv_macs(self) -> list[tuple[int, bool]]:
        """(multiply-adds, is_first_layer) per convolution for one clip, from shapes on the meta device."""
        with torch.device("meta"):
            twin = VQVAE(self.config)
        macs: list[tuple[int, bool]] = []

        def hook(module, inputs, output):
            k = math.prod(module.kernel_size)
            if isinstance(module, nn.ConvTranspose3d):
                n = inputs[0][0].numel() * module.out_channels * k
            else:
                n = output[0].numel() * module.in_channels * k
            macs.append((n, module is twin.down[0]))

        handles = [m.register_forward_hook(hook) for m in twin.modules() if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d))]
        c = self.config
        z = twin._encode(torch.empty(1, c.in_channels, c.frames, c.size, c.size, device="meta"))
        twin._decode(z)
        for h in handles:
            h.remove()
        return macs

    def flops_per_sample(self) -> float:
        """Training FLOPs per clip: 2 x multiply-adds forward, twice that backward (once for the first conv),
        plus the codebook distance product (forward only)."""
        total = sum(2.0 * n * (2 if first else 3) for n, first in self._conv_macs())
        c = self.config
        n_tokens = math.prod(c.token_grid)
        return total + 2.0 * n_tokens * c.embedding_dim * c.codebook_size
