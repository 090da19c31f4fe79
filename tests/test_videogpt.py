import itertools

import pytest
import torch

from cortexscale.models import VideoGPT, VideoGPTConfig
from cortexscale.models.videogpt import split_axes

HIDDEN = (6, 15, 30, 63, 126, 255, 576, 1024)
LAYERS = (1, 2, 4, 8, 16)
HEADS = (1, 2, 4, 8)


def tiny(**kw):
    base = dict(vocab_size=16, grid=(2, 2, 2), hidden=24, layers=2, heads=2, dropout=0.0, attn_dropout=0.0)
    return VideoGPTConfig(**{**base, **kw})


@pytest.fixture
def one_thread():
    """Tiny inputs gain nothing from threads, and on a shared machine each op's thread sync costs milliseconds."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_seed_grid_constructs_and_runs(hidden, one_thread):
    tokens = torch.randint(4, (1, 1, 2, 2))
    for layers, heads in itertools.product(LAYERS, HEADS):
        if hidden % heads:
            with pytest.raises(ValueError) as err:
                VideoGPTConfig(vocab_size=4, grid=(1, 2, 2), hidden=hidden, layers=layers, heads=heads)
            msg = str(err.value)
            below = (hidden // heads) * heads
            assert f"hidden={hidden}" in msg and f"heads={heads}" in msg
            assert str(below + heads) in msg and (below == 0 or str(below) in msg)
            continue
        model = VideoGPT(VideoGPTConfig(vocab_size=4, grid=(1, 2, 2), hidden=hidden, layers=layers, heads=heads))
        with torch.no_grad():
            logits = model(tokens)
        assert logits.shape == (1, 4, 4)
        assert torch.isfinite(logits).all()


@pytest.mark.parametrize("hidden", [1, 2, 6, 15, 63, 64, 576, 1024])
def test_position_split_sums_to_hidden(hidden):
    widths = split_axes(hidden)
    assert sum(widths) == hidden and max(widths) - min(widths) <= 1


def test_position_embedding_is_factorised():
    model = VideoGPT(tiny(hidden=64, heads=4, grid=(2, 3, 4)))
    pos = model.position_embedding().reshape(2, 3, 4, 64)
    dt, dh, dw = split_axes(64)
    assert (dt, dh, dw) == (22, 21, 21)
    assert torch.equal(pos[0, 0, 0, :dt], pos[0, 2, 3, :dt])
    assert torch.equal(pos[1, 1, 0, dt:dt + dh], pos[0, 1, 3, dt:dt + dh])
    assert torch.equal(pos[0, 0, 2, dt + dh:], pos[1, 2, 2, dt + dh:])


def test_causal_future_tokens_do_not_change_earlier_logits():
    torch.manual_seed(0)
    model = VideoGPT(tiny()).eval()
    a = torch.randint(16, (1, 2, 2, 2))
    b = a.clone()
    b.view(-1)[5] = (a.view(-1)[5] + 1) % 16
    la, lb = model(a), model(b)
    assert torch.allclose(la[:, :6], lb[:, :6])
    assert not torch.allclose(la[:, 6:], lb[:, 6:])


def test_condition_on_previous_clip():
    torch.manual_seed(0)
    model = VideoGPT(tiny(cond=True)).eval()
    tokens = torch.randint(16, (2, 2, 2, 2))
    prev = torch.randint(16, (2, 2, 2, 2))
    out = model(tokens, prev)
    assert out.shape == (2, 8, 16)
    assert not torch.allclose(out, model(tokens, (prev + 1) % 16))
    with pytest.raises(ValueError, match="cond_tokens is required"):
        model(tokens)


def test_forward_intermediates_shapes_and_indices():
    model = VideoGPT(tiny(layers=3)).eval()
    tokens = torch.randint(16, (2, 2, 2, 2))
    feats = model.forward_intermediates(tokens)
    assert len(feats) == 4 and all(f.shape == (2, 8, 24) for f in feats)
    last = model.forward_intermediates(tokens, layers=-1)
    assert len(last) == 1 and torch.equal(last[0], feats[-1])
    picked = model.forward_intermediates(tokens, layers=[-1, 1])
    assert torch.equal(picked[0], feats[1]) and torch.equal(picked[1], feats[3])
    h = model._embed(tokens, None)
    assert torch.equal(feats[0], h)
    for k, block in enumerate(model.blocks, start=1):
        h = block(h)
        assert torch.equal(feats[k], h)
    with pytest.raises(ValueError, match="layer 4 is out of range"):
        model.forward_intermediates(tokens, layers=[4])


def test_bad_token_shape_is_named():
    model = VideoGPT(tiny())
    with pytest.raises(ValueError, match=r"tokens must have shape \(B, 2, 2, 2\)"):
        model(torch.zeros(1, 3, 2, 2, dtype=torch.long))


def test_loss_falls_on_short_run():
    torch.manual_seed(0)
    model = VideoGPT(tiny(hidden=32, heads=4, grid=(2, 4, 4)))
    batch = {"tokens": torch.randint(16, (4, 2, 4, 4))}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first, _ = model.loss(batch)
    for _ in range(40):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first.item()


@pytest.mark.parametrize("dtype, loss_tol, grad_tol", [(torch.bfloat16, 3e-4, 3e-2), (torch.float16, 3e-5, 5e-3)])
def test_low_precision_loss_and_gradients_are_close_to_float32(dtype, loss_tol, grad_tol):
    """Relative errors under autocast, measured: loss 3.3e-5 / 4e-7, worst gradient 8.5e-3 / 1e-3 (bf16 / fp16)."""
    torch.manual_seed(0)
    model = VideoGPT(tiny(dropout=0.0, attn_dropout=0.0)).train()
    batch = {"tokens": torch.randint(16, (2, 2, 2, 2))}

    def loss_and_grads(autocast):
        model.zero_grad()
        with torch.autocast("cpu", dtype=dtype, enabled=autocast):
            loss, _ = model.loss(batch)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    full, full_grads = loss_and_grads(False)
    half, half_grads = loss_and_grads(True)
    assert half != full and half == pytest.approx(full, rel=loss_tol)
    worst = max(((a - b).norm() / a.norm()).item() for a, b in zip(full_grads, half_grads))
    assert 0 < worst <= grad_tol


def test_config_round_trip_and_unknown_field():
    cfg = tiny(cond=True)
    assert VideoGPTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown VideoGPTConfig fields"):
        VideoGPTConfig.from_dict({**cfg.to_dict(), "depth": 3})
    with pytest.raises(ValueError, match="dropout"):
        tiny(dropout=1.5)


def test_defaults_match_the_seed_study():
    cfg = VideoGPTConfig()
    assert (cfg.hidden, cfg.layers, cfg.heads, cfg.dropout, cfg.attn_dropout) == (576, 8, 4, 0.2, 0.3)
    assert cfg.grid == (4, 8, 8) and cfg.vocab_size == 2048


def test_weights_follow_gpt2_initialisation():
    torch.manual_seed(0)
    layers = 4
    model = VideoGPT(tiny(hidden=128, heads=4, layers=layers, vocab_size=64))
    for name, p in model.named_parameters():
        if name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")):
            assert torch.equal(p, torch.ones_like(p)), name
        elif name.endswith("bias"):
            assert torch.equal(p, torch.zeros_like(p)), name
        else:
            residual = name.endswith(("attn.proj.weight", "mlp.fc2.weight"))
            std = 0.02 / (2 * layers) ** 0.5 if residual else 0.02
            n = p.numel()
            assert p.mean().abs().item() < 5 * std / n**0.5, name
            assert p.std().item() == pytest.approx(std, rel=5 / (2 * n) ** 0.5), name
