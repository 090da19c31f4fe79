import av
import numpy as np
import pytest
import torch
from PIL import Image

import cortexscale.data.video as video
from cortexscale.data.procedural import ProceduralGame, write_video
from cortexscale.data.video import FrameStore, resize_frames

SOURCE_FPS = 30


def grey_levels(n=30):
    return 10 + 7 * np.arange(n)


@pytest.fixture(scope="module")
def grey_video(tmp_path_factory):
    """n uniform frames, frame i of grey level 10 + 7 i, at 30 fps."""
    frames = np.broadcast_to(grey_levels()[:, None, None, None], (30, 16, 24, 3)).astype(np.uint8)
    return write_video(tmp_path_factory.mktemp("v") / "grey.mp4", frames, fps=SOURCE_FPS)


@pytest.fixture(scope="module")
def game_video(tmp_path_factory):
    frames, _ = ProceduralGame(seed=1, size=(32, 48), fps=SOURCE_FPS).render(24)
    return frames, write_video(tmp_path_factory.mktemp("v") / "game.mp4", frames, fps=SOURCE_FPS)


def test_written_video_decodes_to_its_frames(game_video):
    frames, path = game_video
    with av.open(str(path)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 6


def test_store_at_source_rate_and_size(game_video, tmp_path):
    frames, path = game_video
    store = FrameStore.build(path, tmp_path / "s", size=(32, 48), progress=False)
    assert store.frames.shape == frames.shape and store.frames.dtype == np.uint8
    assert isinstance(store.frames, np.memmap)
    assert store.fps == SOURCE_FPS
    np.testing.assert_allclose(store.times, np.arange(24) / SOURCE_FPS, atol=1e-6)
    assert np.abs(store.frames.astype(int) - frames).mean() < 6
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["frames.npy", "meta.json", "times.npy"]
    assert store.meta["n_frames"] == 24 and store.meta["source"] == str(path.resolve())
    reopened = FrameStore.open(tmp_path / "s")
    assert np.array_equal(reopened.frames, store.frames)


@pytest.mark.parametrize("fps", [None, 9, 45])
def test_resampling_picks_the_nearest_frame(grey_video, tmp_path, fps):
    store = FrameStore.build(grey_video, tmp_path / "s", size=(16, 24), fps=fps, progress=False)
    fps = fps or SOURCE_FPS
    n = int(30 / SOURCE_FPS * fps)
    assert len(store) == n and store.fps == fps
    np.testing.assert_allclose(store.times, np.arange(n) / fps)
    nearest = np.round(np.arange(n) * SOURCE_FPS / fps).astype(int)
    np.testing.assert_allclose(store.frames.mean(axis=(1, 2, 3)), grey_levels()[nearest], atol=3)


def test_resize_matches_pillow_bilinear():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 40, 60, 3), dtype=np.uint8)
    ours = resize_frames(frames, (10, 15))
    ref = np.stack([np.asarray(Image.fromarray(f).resize((15, 10), Image.BILINEAR)) for f in frames])
    assert ours.shape == (2, 10, 15, 3)
    assert np.abs(ours.astype(int) - ref).max() <= 2


def test_store_resizes_with_antialiasing(game_video, tmp_path):
    frames, path = game_video
    store = FrameStore.build(path, tmp_path / "s", size=(16, 24), progress=False)
    full = FrameStore.build(path, tmp_path / "full", size=(32, 48), progress=False)
    assert store.frames.shape == (24, 16, 24, 3)
    assert np.array_equal(store.frames, resize_frames(np.asarray(full.frames), (16, 24)))


def test_same_settings_reuse_the_store(game_video, tmp_path, monkeypatch):
    _, path = game_video
    first = FrameStore.build(path, tmp_path / "s", size=(16, 24), progress=False)

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(video, "_decoded", no_decoding)
    again = FrameStore.build(path, tmp_path / "s", size=(16, 24), progress=False)
    assert np.array_equal(again.frames, first.frames)
    with pytest.raises(AssertionError, match="decoded again"):
        FrameStore.build(path, tmp_path / "s", size=(8, 12), progress=False)
    monkeypatch.undo()
    assert FrameStore.build(path, tmp_path / "s", size=(8, 12), progress=False).frames.shape == (24, 8, 12, 3)


def test_clips_are_scaled_frame_windows(game_video, tmp_path):
    _, path = game_video
    store = FrameStore.build(path, tmp_path / "s", size=(16, 24), progress=False)
    clips = store.clips(length=8, stride=5)
    assert len(clips) == len(range(0, 24 - 8 + 1, 5))
    item = clips[2]["video"]
    assert item.shape == (3, 8, 16, 24) and item.dtype == torch.float32
    expected = torch.from_numpy(np.array(store.frames[10:18])).permute(3, 0, 1, 2) / 127.5 - 1
    assert torch.allclose(item, expected.float())
    assert item.min() >= -1 and item.max() <= 1
    picked = store.clips(length=4, starts=[20, 3])
    assert len(picked) == 2 and torch.allclose(picked[1]["video"], store.clips(4, starts=[3])[0]["video"])
    with pytest.raises(ValueError, match=r"starts\[1\] = 21 puts a 4-frame clip outside the 24 frames"):
        store.clips(length=4, starts=[0, 21])


def test_from_frames_round_trip(tmp_path):
    frames, _ = ProceduralGame(size=(8, 8)).render(10)
    store = FrameStore.from_frames(frames, tmp_path / "s", fps=15)
    assert np.array_equal(FrameStore.open(tmp_path / "s").frames, frames)
    np.testing.assert_allclose(store.times, np.arange(10) / 15)


def test_bad_videos_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="video not found: .*missing.mp4"):
        FrameStore.build(tmp_path / "missing.mp4", tmp_path / "s")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ValueError, match="cannot read video .*broken.mp4"):
        FrameStore.build(bad, tmp_path / "s", progress=False)
    assert not (tmp_path / "s" / "meta.json").exists()
    with pytest.raises(FileNotFoundError, match="no frame store at"):
        FrameStore.open(tmp_path / "s")
    with pytest.raises(ValueError, match="size must be"):
        FrameStore.build(bad, tmp_path / "s", size=(0, 4))
    with pytest.raises(ValueError, match="even height and width"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 5, 6, 3), np.uint8))


def test_nested_subsets_feed_clip_datasets(tmp_path):
    from cortexscale.data.subsets import nested_subsets

    frames, _ = ProceduralGame(size=(8, 8)).render(100)
    store = FrameStore.from_frames(frames, tmp_path / "s", fps=15)
    split = nested_subsets(len(store), sizes=(16, 48), val_size=16, unit=8)
    train = store.clips(length=8, starts=split.train[48])
    assert len(train) == 6
    first = (np.asarray(store.frames[split.train[48][0] : split.train[48][0] + 8]) / 127.5 - 1).transpose(3, 0, 1, 2)
    assert torch.allclose(train[0]["video"], torch.from_numpy(first).float(), atol=1e-6)
