import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cortexscale.models import VQVAE, VQVAEConfig, build_model, load_pretrained, save_pretrained
from cortexscale.models.vqvae import EMACodebook


def tiny(**kw):
    base = dict(frames=4, size=16, hidden=16, n_res_layers=1, codebook_size=32, embedding_dim=8,
                temporal_downsample=2, spatial_downsample=4)
    return VQVAEConfig(**{**base, **kw})


def smooth_video(n, seed=0):
    """Moving sinusoidal gratings (n, 3, 4, 16, 16) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(4.0)[:, None, None]
    y, x = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    clips = []
    for _ in range(n):
        f, phase, speed = torch.rand(3, generator=g) * torch.tensor([0.5, 6.0, 1.0])
        frame = torch.sin(f * (x + y) + phase + speed * t)
        clips.append(torch.stack([frame, frame.roll(3, dims=-1), -frame]))
    return torch.stack(clips)


def test_default_maps_16x128x128_to_4x8x8():
    cfg = VQVAEConfig()
    assert cfg.token_grid == (4, 8, 8)
    assert (cfg.codebook_size, cfg.embedding_dim, cfg.decay, cfg.commitment) == (2048, 256, 0.99, 0.25)
    with torch.device("meta"):
        model = VQVAE(cfg)
        z = model._encode(torch.empty(1, 3, 16, 128, 128))
    assert tuple(z.shape) == (1, 256, 4, 8, 8)


def test_encode_decode_shapes():
    model = VQVAE(tiny()).eval()
    video = smooth_video(2)
    ids = model.encode(video)
    assert ids.shape == (2, 2, 4, 4) and ids.dtype == torch.long
    assert int(ids.max()) < 32
    assert model.decode(ids).shape == video.shape
    with pytest.raises(ValueError, match=r"video must have shape \(B, 3, 4, 16, 16\), got \(2, 3, 4, 8, 8\)"):
        model.encode(torch.zeros(2, 3, 4, 8, 8))


def test_ema_update_matches_hand_computation():
    book = EMACodebook(size=3, dim=2, decay=0.9, eps=1e-5, restart_threshold=0.0)
    book.embed.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
    book.embed_sum.copy_(book.embed)
    book.cluster_size.fill_(1.0)
    flat = torch.tensor([[1.0, 0.0], [9.0, 1.0], [11.0, -1.0]])
    idx = book.assign(flat)
    assert idx.tolist() == [0, 1, 1]
    book.update(flat, idx)
    size = 0.9 * torch.ones(3) + 0.1 * torch.tensor([1.0, 2.0, 0.0])
    sums = 0.9 * torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]) + 0.1 * torch.tensor([[1.0, 0.0], [20.0, 0.0], [0.0, 0.0]])
    n = size.sum()
    smoothed = (size + 1e-5) / (n + 3e-5) * n
    assert torch.allclose(book.cluster_size, size)
    assert torch.allclose(book.embed, sums / smoothed[:, None], atol=1e-5)


def test_dead_codes_restart_at_encoder_outputs():
    torch.manual_seed(0)
    book = EMACodebook(size=4, dim=2, decay=0.5, eps=1e-5, restart_threshold=0.6)
    book.embed.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]]))
    book.embed_sum.copy_(book.embed)
    book.cluster_size.fill_(1.0)
    flat = torch.randn(50, 2) * 0.1
    book.update(flat, book.assign(flat))
    restarted = book.embed[1:]
    assert all(torch.isclose(row, flat).all(dim=1).any() for row in restarted)
    assert torch.equal(book.cluster_size[1:], torch.ones(3))


def test_no_gradient_reaches_the_codebook_and_codes_move_by_ema():
    model = VQVAE(tiny())
    before = model.codebook.embed.clone()
    loss, _ = model.loss({"video": smooth_video(2)})
    loss.backward()
    assert all(not b.requires_grad for b in model.codebook.buffers())
    assert not any(p.grad is None for p in model.parameters())
    assert not torch.equal(before, model.codebook.embed)
    assert bool(model.codebook.initialised)


def test_loss_falls_on_short_run():
    torch.manual_seed(0)
    model = VQVAE(tiny())
    batch = {"video": smooth_video(4)}
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first, _ = model.loss(batch)
    for _ in range(40):
        loss, logs = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first.item()
    assert logs["perplexity"] > 1.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_leaves_the_cpu_convolutions_in_float32(dtype):
    """On the CPU the 3D convolutions run in float32 even under autocast (torch's CPU bf16 conv3d weight
    gradient returned NaNs), so the loss and gradients equal float32's exactly."""
    torch.manual_seed(0)
    model = VQVAE(tiny()).eval()
    video = smooth_video(2)
    full, _ = model.loss({"video": video})
    full.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    with torch.autocast("cpu", dtype=dtype):
        half, logs = model.loss({"video": video})
    half.backward()
    assert half.item() == full.item() and logs["commit"] >= 0
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, [p for p in model.parameters() if p.grad is not None]))


@pytest.mark.parametrize("field,value,message", [
    ("temporal_downsample", 3, "temporal_downsample must be a power of 2"),
    ("frames", 5, "frames=5 is not divisible by temporal_downsample=2"),
    ("size", 18, "size=18 is not divisible by spatial_downsample=4"),
    ("decay", 1.0, "decay must be in"),
])
def test_bad_config_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        tiny(**{field: value})


def test_flops_match_counter():
    model = VQVAE(tiny())
    with FlopCounterMode(display=False) as counter:
        loss, _ = model.loss({"video": smooth_video(2)})
        loss.backward()
    assert model.flops_per_sample() == counter.get_total_flops() / 2
    codebook = 2.0 * 32 * 8 * 32  # 2 x tokens (2 x 4 x 4) x embedding_dim x codebook_size, forward only
    assert model.flops_per_sample() - sum(2.0 * n * (2 if first else 3) for n, first in model._conv_macs()) == codebook


def test_registry_and_checkpoint_round_trip(tmp_path):
    model = build_model("vqvae", tiny().to_dict())
    model.loss({"video": smooth_video(2)})
    model.eval()
    save_pretrained(model, tmp_path)
    loaded = load_pretrained(tmp_path, device="cpu").eval()
    video = smooth_video(1, seed=3)
    assert torch.equal(model.encode(video), loaded.encode(video))


def test_encoder_intermediates():
    model = VQVAE(tiny()).eval()
    video = smooth_video(1)
    feats = model.forward_intermediates(video)
    assert torch.equal(feats[0], video)
    assert [tuple(f.shape[2:]) for f in feats[1:]] == [(2, 8, 8), (2, 4, 4), (2, 4, 4), (2, 4, 4)]
    assert feats[-1].shape[1] == 8
    assert torch.equal(model.forward_intermediates(video, layers=-1)[0], feats[-1])


def test_encode_leaves_codebook_untouched_and_matches_forward():
    model = VQVAE(tiny())
    video = smooth_video(2)
    model.loss({"video": video})
    state = {k: v.clone() for k, v in model.codebook.state_dict().items()}
    ids = model.encode(video)
    assert all(torch.equal(state[k], v) for k, v in model.codebook.state_dict().items())
    model.eval()
    _, _, _, forward_ids, _ = model(video)
    assert torch.equal(ids, forward_ids)


@pytest.mark.parametrize("field,value", [("eps", 0.0), ("restart_threshold", -1.0), ("hidden", 0)])
def test_bad_scalar_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        tiny(**{field: value})


def test_decode_rejects_ids_outside_the_codebook():
    model = VQVAE(tiny()).eval()
    ids = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    ids[0, 1, 2, 3] = 32
    with pytest.raises(ValueError, match=r"\[0, 32\), got 32 at index \(0, 1, 2, 3\)"):
        model.decode(ids)


def test_quantiser_runs_in_float32_under_autocast():
    book = EMACodebook(size=4, dim=3, decay=0.9, eps=1e-5, restart_threshold=0.0).train()
    book.initialised.fill_(True)
    codes = book.embed.clone()
    z = torch.randn(2, 3, 1, 2, 2).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z_q, q, ids, _ = book(z)
    assert z_q.dtype == q.dtype == book.embed.dtype == torch.float32
    flat = z.float().movedim(1, -1).reshape(-1, 3)
    assert torch.equal(ids.flatten(), torch.cdist(flat, codes).argmin(dim=1))
