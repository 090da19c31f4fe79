"""The training engine on the real models, with AugReg as the on-device augmentation."""

import json
import math

import pytest
import torch

from cortexscale.models import VQVAE, VQVAEConfig, ViT, ViTConfig, load_pretrained
from cortexscale.train import AugReg, TensorDictDataset, TrainConfig, train


def read_losses(path):
    return [json.loads(line)["loss"] for line in path.read_text().splitlines()]


def test_vit_trains_with_augreg_and_mixup(tmp_path, device):
    torch.manual_seed(0)
    labels = torch.arange(32) % 4
    images = torch.zeros(32, 3, 16, 16)
    for c in range(4):
        images[labels == c, c % 3, : 8 * (c // 2 + 1)] = 1.0
    data = TensorDictDataset({"image": images * 2 - 1, "label": labels})
    model = ViT(ViTConfig(width=32, depth=2, heads=2, patch=4, image_size=16, n_classes=4))
    cfg = TrainConfig(lr=2e-3, batch_size=16, steps=12, warmup_steps=2, log_every=1, weight_decay=0.03,
                      device=device)
    result = train(model, data, cfg, tmp_path, augment=AugReg("light2", n_classes=4), progress=False)
    losses = read_losses(result.metrics_path)
    assert len(losses) == 12 and all(map(torch.isfinite, torch.tensor(losses)))
    assert sum(losses[-3:]) < sum(losses[:3])


def test_vqvae_trains_and_reloads(tmp_path, device):
    torch.manual_seed(0)
    t = torch.arange(4.0)[:, None, None]
    x = torch.arange(16.0)
    clips = torch.stack([torch.sin(0.3 * (x[None, :, None] + x[None, None, :]) + k + 0.5 * t) for k in range(8)])
    data = TensorDictDataset({"video": clips[:, None].expand(8, 3, 4, 16, 16).contiguous()})
    cfg_model = VQVAEConfig(frames=4, size=16, hidden=16, n_res_layers=1, codebook_size=32, embedding_dim=8,
                            temporal_downsample=2, spatial_downsample=4)
    cfg = TrainConfig(lr=2e-3, batch_size=4, steps=15, warmup_steps=1, log_every=1, precision="bf16", device=device)
    result = train(VQVAE(cfg_model), data, cfg, tmp_path, progress=False)
    losses = read_losses(result.metrics_path)
    assert losses[-1] < 0.7 * losses[0]
    reloaded = load_pretrained(result.checkpoint, device=device).eval()
    result.model.eval()
    video = data.tensors["video"][:2].to(device)
    assert torch.equal(reloaded.encode(video), result.model.encode(video))


def test_procedural_video_to_tokens_to_gpt(tmp_path, device):
    """The seed study's chain at toy size: generator -> frame store -> VQ-VAE -> tokens -> video GPT."""
    from cortexscale.data import FrameStore, ProceduralGame, nested_subsets
    from cortexscale.models import VideoGPT, VideoGPTConfig

    torch.manual_seed(0)
    frames, latents = ProceduralGame(seed=1, size=(16, 16)).render(96)
    store = FrameStore.from_frames(frames, tmp_path / "store", fps=15.0)
    split = nested_subsets(len(store.frames), sizes=(64,), val_size=16, unit=4)
    clips = store.clips(length=4, starts=split.train[64])
    assert len(clips) == 16 and clips[0]["video"].shape == (3, 4, 16, 16)
    video = torch.stack([clips[i]["video"] for i in range(len(clips))])

    vq_cfg = VQVAEConfig(frames=4, size=16, hidden=16, n_res_layers=1, codebook_size=16, embedding_dim=8,
                         temporal_downsample=2, spatial_downsample=4)
    vq = train(VQVAE(vq_cfg), TensorDictDataset({"video": video}),
               TrainConfig(lr=2e-3, batch_size=8, steps=6, device=device), tmp_path / "vq", progress=False).model.eval()
    with torch.no_grad():
        tokens = vq.encode(video.to(device)).cpu()
    assert tokens.shape == (16, 2, 4, 4)

    gpt_cfg = VideoGPTConfig(vocab_size=16, grid=(2, 4, 4), hidden=32, layers=2, heads=4)
    run = train(VideoGPT(gpt_cfg), TensorDictDataset({"tokens": tokens}),
                TrainConfig(lr=3e-3, batch_size=8, steps=20, log_every=1, warmup_steps=2, device=device),
                tmp_path / "gpt", progress=False)
    records = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
    assert records[-1]["tokens"] == 20 * 8 * 32
    assert records[-1]["loss"] < records[0]["loss"]


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_training_reaches_the_fp32_loss(tmp_path, device, precision):
    """Ahmadi et al. trained in fp16 at fp32's accuracy: the held-out loss after the same steps agrees."""
    from cortexscale.models import VideoGPT, VideoGPTConfig
    from cortexscale.train import evaluate

    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 8, (1, 2, 4, 4), generator=g)
    tokens = (base + torch.randint(0, 2, (64, 1, 1, 1), generator=g)) % 16
    train_set, val_set = TensorDictDataset({"tokens": tokens[:48]}), TensorDictDataset({"tokens": tokens[48:]})
    losses = {}
    for p in ("fp32", precision):
        torch.manual_seed(0)
        model = VideoGPT(VideoGPTConfig(vocab_size=16, grid=(2, 4, 4), hidden=32, layers=2, heads=2,
                                        dropout=0.0, attn_dropout=0.0))
        cfg = TrainConfig(lr=3e-3, batch_size=16, steps=40, warmup_steps=4, precision=p, device=device)
        run = train(model, train_set, cfg, tmp_path / p, progress=False)
        losses[p] = evaluate(run.model, val_set, 16, device=device)["val_loss"]
    assert losses["fp32"] < 0.7 * math.log(16)
    assert abs(losses[precision] - losses["fp32"]) < 0.05 * losses["fp32"]
