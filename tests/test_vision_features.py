import numpy as np
import pytest
import torch

from cortexscale.data.video import FrameStore, resize_frames
from cortexscale.features.vision import clip_events, clip_features, clip_starts, frame_features
from cortexscale.layers import default_layer
from cortexscale.models import VQVAE, VideoGPT, VideoGPTConfig, ViT, ViTConfig, VQVAEConfig

T = 4
GRID = (2, 4, 4)


def random_frames(n, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def scaled(frames):
    return torch.from_numpy(np.array(frames)).float().div(127.5).sub(1.0)


def make_vit(**kw):
    torch.manual_seed(0)
    return ViT(ViTConfig(**{**dict(width=32, depth=4, heads=2, patch=8, image_size=32, n_classes=3), **kw}))


def make_vqvae():
    """Tiny tokenizer whose codebook is drawn from its encoder's outputs, so clips use many codes."""
    torch.manual_seed(0)
    vq = VQVAE(VQVAEConfig(frames=T, size=16, hidden=16, n_res_layers=1, temporal_downsample=2,
                           spatial_downsample=4, codebook_size=32, embedding_dim=8))
    with torch.no_grad():
        z = vq._encode(scaled(random_frames(8, 16, seed=1)).reshape(2, T, 16, 16, 3).permute(0, 4, 1, 2, 3))
        vq.codebook.initialise(z.movedim(1, -1).reshape(-1, z.shape[1]))
    return vq.eval()


def make_gpt(cond=False, **kw):
    torch.manual_seed(1)
    base = dict(vocab_size=32, grid=GRID, hidden=24, layers=4, heads=2, cond=cond)
    return VideoGPT(VideoGPTConfig(**{**base, **kw}))


def clip_video(frames, start):
    """Frames start..start+T-1 resized to 16 and scaled: (1, 3, T, 16, 16)."""
    return scaled(resize_frames(frames[start:start + T], (16, 16)))[None].permute(0, 4, 1, 2, 3)


def gpt_mean(gpt, tokens, layer, cond=None):
    """Mean over the clip's tokens (hidden,) of block ``layer``, the GPT in eval mode."""
    gpt.eval()
    return gpt.forward_intermediates(tokens, [layer], cond)[0].mean(dim=1)[0].numpy()


@pytest.fixture
def frames():
    return random_frames(10)


@pytest.fixture
def video():
    return random_frames(20, 24)


def test_frame_features_shapes_and_layers(frames):
    vit = make_vit()
    out = frame_features(vit, frames, progress=False, device="cpu")
    assert list(out) == [default_layer(4)] == [3]
    assert out[3].shape == (10, 32) and out[3].dtype == np.float32
    assert list(frame_features(vit, frames, [-1, 0, 3], progress=False, device="cpu")) == [0, 3, 4]
    assert list(frame_features(vit, frames, 1, progress=False, device="cpu")) == [1]


@pytest.mark.parametrize("depth, layer", [(1, 1), (2, 2), (4, 3), (8, 6), (12, 9), (24, 18)])
def test_default_layer_is_three_quarters_up(depth, layer):
    assert default_layer(depth) == layer


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_frame_features_match_a_manual_forward(frames, pool):
    vit = make_vit()
    out = frame_features(vit, frames, [1, 3], pool=pool, progress=False, device="cpu")
    with torch.no_grad():
        hidden = vit.forward_intermediates(scaled(frames[6:7]).permute(0, 3, 1, 2), [1, 3])
    for layer, h in zip([1, 3], hidden):
        want = h[0, 0] if pool == "cls" else h[0, 1:].mean(dim=0)
        np.testing.assert_allclose(out[layer][6], want.numpy(), atol=1e-5)
    assert not np.allclose(out[1], out[3])


def test_frame_features_do_not_depend_on_batch_size(frames):
    vit = make_vit()
    one = frame_features(vit, frames, [0, 2], batch_size=1, progress=False, device="cpu")
    seven = frame_features(vit, frames, [0, 2], batch_size=7, pool="cls", progress=False, device="cpu")
    for layer in (0, 2):
        np.testing.assert_allclose(one[layer], seven[layer], atol=1e-5)


def test_frames_are_resized_to_the_model_input():
    vit = make_vit()
    big = np.random.default_rng(0).integers(0, 256, (5, 48, 40, 3), dtype=np.uint8)
    got = frame_features(vit, big, progress=False, device="cpu")
    want = frame_features(vit, resize_frames(big, (32, 32)), progress=False, device="cpu")
    np.testing.assert_array_equal(got[3], want[3])


def test_frame_store_gives_the_same_as_the_array(frames, video, tmp_path):
    vit = make_vit()
    store = FrameStore.from_frames(frames, tmp_path / "s", fps=10)
    np.testing.assert_array_equal(frame_features(vit, store, progress=False, device="cpu")[3],
                                  frame_features(vit, frames, progress=False, device="cpu")[3])
    vq, gpt = make_vqvae(), make_gpt(cond=True)
    store = FrameStore.from_frames(video, tmp_path / "v", fps=10)
    np.testing.assert_array_equal(clip_features(vq, gpt, store, progress=False, device="cpu")[3],
                                  clip_features(vq, gpt, video, progress=False, device="cpu")[3])


def test_models_run_in_eval_mode_and_keep_their_training_flag(frames, video):
    vit = make_vit(dropout=0.3).train()
    first = frame_features(vit, frames, progress=True, device="cpu")
    assert vit.training
    np.testing.assert_array_equal(first[3], frame_features(vit, frames, progress=False, device="cpu")[3])
    vq, gpt = make_vqvae().train(), make_gpt(dropout=0.3, attn_dropout=0.3).train()
    first = clip_features(vq, gpt, video, progress=True, device="cpu")
    assert vq.training and gpt.training
    np.testing.assert_array_equal(first[3], clip_features(vq, gpt, video, progress=False, device="cpu")[3])


@pytest.mark.parametrize("dtype", [torch.bfloat16, "bf16", "fp16"])
def test_reduced_precision_is_close_to_float32(frames, video, dtype, device):
    vit = make_vit()
    full = frame_features(vit, frames, [1, 3], progress=False, device=device)
    half = frame_features(vit, frames, [1, 3], progress=False, device=device, dtype=dtype)
    for layer in (1, 3):
        assert half[layer].dtype == np.float32 and np.isfinite(half[layer]).all()
        assert not np.array_equal(half[layer], full[layer])
        assert np.corrcoef(half[layer].ravel(), full[layer].ravel())[0, 1] > 0.99
    vq, gpt = make_vqvae(), make_gpt(cond=True)
    full = clip_features(vq, gpt, video, progress=False, device=device)[3]
    half = clip_features(vq, gpt, video, progress=False, device=device, dtype=dtype)[3]
    assert np.isfinite(half).all() and np.corrcoef(half.ravel(), full.ravel())[0, 1] > 0.99


def test_half_precision_leaves_the_tokenizer_in_float32(video, device):
    vq, gpt = make_vqvae(), make_gpt()
    seen = {}
    encode, forward = vq.encode, gpt.forward_intermediates

    def spy_encode(x):
        seen["vqvae"] = torch.is_autocast_enabled(x.device.type)
        return encode(x)

    def spy_forward(tokens, *args):
        seen["gpt"] = torch.is_autocast_enabled(tokens.device.type)
        return forward(tokens, *args)

    vq.encode, gpt.forward_intermediates = spy_encode, spy_forward
    clip_features(vq, gpt, video, progress=False, device=device, dtype="bf16")
    assert seen == {"vqvae": False, "gpt": True}


def test_float32_dtype_is_full_precision(frames):
    vit = make_vit()
    np.testing.assert_array_equal(frame_features(vit, frames, progress=False, device="cpu", dtype=torch.float32)[3],
                                  frame_features(vit, frames, progress=False, device="cpu")[3])


def test_clip_features_match_a_manual_encode_and_forward(video):
    vq, gpt = make_vqvae(), make_gpt()
    out = clip_features(vq, gpt, video, layers=[0, -1], progress=False, device="cpu")
    assert list(out) == [0, 4]
    assert out[0].shape == (5, 24) and out[4].dtype == np.float32
    with torch.no_grad():
        ids = vq.encode(clip_video(video, 8))
        assert ids.shape == (1, *GRID) and len(ids.unique()) > 4
        for layer in (0, 4):
            np.testing.assert_allclose(out[layer][2], gpt_mean(gpt, ids, layer), atol=1e-5)


def test_clip_features_do_not_depend_on_batch_size(video):
    vq, gpt = make_vqvae(), make_gpt(cond=True)
    starts = [0, 3, 5, 9, 16, 2, 11]
    one = clip_features(vq, gpt, video, starts, batch_size=1, progress=False, device="cpu")[3]
    three = clip_features(vq, gpt, video, starts, batch_size=3, progress=False, device="cpu")[3]
    assert one.shape == (7, 24)
    np.testing.assert_allclose(one, three, atol=1e-5)


def test_cond_model_sees_the_previous_clip(video):
    vq, gpt = make_vqvae(), make_gpt(cond=True)
    out = clip_features(vq, gpt, video, progress=False, device="cpu")[3]
    changed = video.copy()
    changed[:T] = 255 - changed[:T]
    moved = clip_features(vq, gpt, changed, progress=False, device="cpu")[3]
    assert np.abs(out[:2] - moved[:2]).max(axis=1).min() > 1e-4
    np.testing.assert_array_equal(out[2:], moved[2:])
    with torch.no_grad():
        first, second = vq.encode(clip_video(video, 0)), vq.encode(clip_video(video, T))
        np.testing.assert_allclose(out[0], gpt_mean(gpt, first, 3, first), atol=1e-5)
        np.testing.assert_allclose(out[1], gpt_mean(gpt, second, 3, first), atol=1e-5)


def test_cond_clip_of_any_start_uses_the_frames_just_before_it(video):
    vq, gpt = make_vqvae(), make_gpt(cond=True)
    out = clip_features(vq, gpt, video, starts=np.array([2, 9]), layers=1, progress=False, device="cpu")[1]
    with torch.no_grad():
        early, late, before = (vq.encode(clip_video(video, s)) for s in (2, 9, 9 - T))
        np.testing.assert_allclose(out[0], gpt_mean(gpt, early, 1, early), atol=1e-5)
        np.testing.assert_allclose(out[1], gpt_mean(gpt, late, 1, before), atol=1e-5)


def test_clip_starts_and_events():
    np.testing.assert_array_equal(clip_starts(20, 4), [0, 4, 8, 12, 16])
    np.testing.assert_array_equal(clip_starts(19, 4), [0, 4, 8, 12])
    starts = clip_starts(10, 4, stride=3)
    np.testing.assert_array_equal(starts, [0, 3, 6])
    assert starts.dtype == np.int64
    events = clip_events(11, fps=2.0, length=4, offset=1.5)
    assert list(events.columns) == ["onset", "duration", "value"]
    np.testing.assert_allclose(events["onset"], [1.5, 3.5])
    np.testing.assert_allclose(events["duration"], [2.0, 2.0])
    np.testing.assert_array_equal(events["value"], [0, 4])
    assert events["value"].dtype == np.int64
    features = clip_features(make_vqvae(), make_gpt(), random_frames(20, 16), progress=False, device="cpu")[3]
    assert len(clip_events(20, fps=10.0, length=T)) == len(features)


@pytest.mark.parametrize("call, match", [
    (lambda: clip_starts(3, 4), "fewer than one clip"),
    (lambda: clip_starts(10, 0), "length"),
    (lambda: clip_starts(10, 4, stride=0), "stride"),
    (lambda: clip_events(3, fps=10.0, length=4), "fewer than one clip"),
    (lambda: clip_events(10, fps=0.0, length=4), "fps"),
    (lambda: clip_events(10, fps=10.0, length=4, offset=float("nan")), "offset"),
])
def test_clip_timing_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("bad, match", [
    (np.zeros((32, 32, 3), np.uint8), r"\(N, H, W, 3\) uint8, got shape \(32, 32, 3\)"),
    (np.zeros((2, 32, 32, 4), np.uint8), r"got shape \(2, 32, 32, 4\)"),
    (np.zeros((2, 32, 32, 3), np.float32), r"got shape \(2, 32, 32, 3\) \(float32\)"),
    (np.zeros((0, 32, 32, 3), np.uint8), "no frames"),
])
def test_bad_frames_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        frame_features(make_vit(), bad, progress=False)
    with pytest.raises(ValueError, match=match):
        clip_features(make_vqvae(), make_gpt(), bad, progress=False)


@pytest.mark.parametrize("kwargs, match", [
    (dict(pool="max"), "pool must be one of"),
    (dict(layers=[5]), "layer 5 is out of range: the model has layers 0..4"),
    (dict(layers=-6), "layer -6 is out of range"),
    (dict(layers=[1.5]), "layer 1.5 is not an integer"),
    (dict(layers=[]), "layers is empty"),
    (dict(batch_size=0), "batch_size"),
    (dict(dtype="int8"), "dtype must be"),
    (dict(dtype=torch.float64), "dtype must be"),
])
def test_frame_feature_errors(frames, kwargs, match):
    with pytest.raises(ValueError, match=match):
        frame_features(make_vit(), frames, progress=False, **kwargs)


@pytest.mark.parametrize("gpt_kw, starts, kwargs, match", [
    (dict(grid=(2, 2, 2)), None, {}, r"token grid \(2, 4, 4\).*grid \(2, 2, 2\)"),
    (dict(vocab_size=16), None, {}, "codebook_size=32 exceeds the video GPT's vocab_size=16"),
    ({}, [0, 17], {}, r"starts\[1\] = 17"),
    ({}, [-1], {}, r"starts\[0\] = -1"),
    ({}, [0.0, 4.0], {}, "integer frame indices"),
    ({}, [[0, 4]], {}, "1-D"),
    ({}, [], {}, "non-empty"),
    ({}, None, dict(layers=[0, 9]), "layer 9 is out of range"),
    ({}, None, dict(batch_size=-1), "batch_size"),
    ({}, None, dict(dtype="fp8"), "dtype must be"),
])
def test_clip_feature_errors(video, gpt_kw, starts, kwargs, match):
    with pytest.raises(ValueError, match=match):
        clip_features(make_vqvae(), make_gpt(**gpt_kw), video, starts, progress=False, **kwargs)


def test_too_few_frames_for_a_clip():
    with pytest.raises(ValueError, match="3 frames, fewer than one clip of 4 frames"):
        clip_features(make_vqvae(), make_gpt(), random_frames(3, 16), progress=False)

