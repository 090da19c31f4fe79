"""Videos decoded with PyAV into a memory-mapped frame store, served as training clips.

A store is a folder with ``frames.npy`` (N, H, W, 3) uint8, ``times.npy`` (N,) float64 seconds and
``meta.json`` (source path, size in bytes, mtime, SHA-256, frame size, fps, frame count). Every file is
written atomically and ``meta.json`` last, so a folder with a ``meta.json`` is complete.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .._io import atomic_path, write_atomic

__all__ = ["ClipDataset", "FrameStore", "resize_frames"]

_BATCH = 64
_FORMAT_VERSION = 1


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, h, w, 3) uint8 -> (n, H, W, 3) uint8, antialiased bilinear (torch ``F.interpolate``)."""
    import torch
    import torch.nn.functional as F

    if frames.shape[1:3] == tuple(size):
        return frames
    x = torch.from_numpy(np.array(frames, dtype=np.uint8)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_size(size) -> tuple[int, int]:
    size = (size, size) if np.isscalar(size) else tuple(size)
    if len(size) != 2 or any(int(s) != s or s < 1 for s in size):
        raise ValueError(f"size must be (H, W) positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _source_meta(path: Path) -> dict:
    stat = path.stat()
    return {"source": str(path.resolve()), "source_bytes": stat.st_size, "source_mtime": stat.st_mtime,
            "source_sha256": _sha256(path)}


def _decoded(path: Path, progress: bool):
    """Yield (time in seconds from the first frame, (h, w, 3) uint8) in presentation order; also the fps."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise ValueError(f"cannot read video {path}: {err}") from err
    with container:
        if not container.streams.video:
            raise ValueError(f"cannot read video {path}: it has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise ValueError(f"cannot read video {path}: its frame rate is unknown")
        yield float(rate)
        t0 = None
        bar = tqdm(total=stream.frames or None, desc=f"decoding {path.name}", unit="frame", disable=not progress)
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else None
                t0 = t if t0 is None else t0
                yield (t - t0 if t is not None else None), frame.to_ndarray(format="rgb24")
                bar.update()
        except av.error.FFmpegError as err:
            raise ValueError(f"cannot read video {path}: decoding failed: {err}") from err
        finally:
            bar.close()


def _resampled(decoded, source_fps: float, fps: float | None):
    """Pick, for each time j / fps, the decoded frame nearest in time; yields (time, frame)."""
    if fps is None:
        for i, (t, frame) in enumerate(decoded):
            yield (i / source_fps if t is None else t), frame
        return
    j, prev = 0, None
    for i, (t, frame) in enumerate(decoded):
        t = i / source_fps if t is None else t
        if prev is not None:
            while j / fps < (prev[0] + t) / 2:
                yield j / fps, prev[1]
                j += 1
        prev = (t, frame)
    if prev is not None:
        while j / fps < prev[0] + 0.5 / source_fps:
            yield j / fps, prev[1]
            j += 1


def _npy_header(n: int, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": (n, *size, 3)})
    return buffer.getvalue()


class FrameStore:
    """Frames (N, H, W, 3) uint8 memory-mapped from a store folder; ``times`` (N,) in seconds; ``fps``."""

    def __init__(self, folder, frames: np.ndarray, times: np.ndarray, meta: dict):
        self.folder, self.frames, self.times, self.meta = Path(folder), frames, times, meta
        self.fps = float(meta["fps"])

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return f"FrameStore({str(self.folder)!r}, n_frames={len(self)}, size={tuple(self.frames.shape[1:3])}, fps={self.fps:g})"

    @classmethod
    def open(cls, folder) -> "FrameStore":
        """Open a store written by :meth:`build` or :meth:`from_frames`."""
        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no frame store at {folder}: {meta_path.name} is missing")
        meta = json.loads(meta_path.read_text())
        frames = np.load(folder / "frames.npy", mmap_mode="r")
        expected = (meta["n_frames"], *meta["size"], 3)
        if frames.shape != expected:
            raise ValueError(f"{folder / 'frames.npy'} holds {frames.shape}, {meta_path} says {expected}")
        return cls(folder, frames, np.load(folder / "times.npy"), meta)

    @classmethod
    def build(cls, video_path, out_dir, size=(128, 128), fps: float | None = None, progress: bool = True) -> "FrameStore":
        """Decode ``video_path`` into ``out_dir`` at ``size`` (H, W) and ``fps`` (None: the source rate).

        Resampling picks the source frame nearest each time ``j / fps``. A store already built from the
        same file (same bytes, by SHA-256) with the same settings is reused.
        """
        video_path, out_dir, size = Path(video_path), Path(out_dir), _check_size(size)
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be positive or None, got {fps!r}")
        if not video_path.is_file():
            raise FileNotFoundError(f"video not found: {video_path}")
        source = _source_meta(video_path)
        settings = {"size": list(size), "requested_fps": fps}
        reused = cls._reusable(out_dir, source, settings)
        if reused is not None:
            return reused
        decoded = _decoded(video_path, progress)
        source_fps = next(decoded)
        n, times = cls._write_frames(out_dir / "frames.npy", _resampled(decoded, source_fps, fps), size)
        if n == 0:
            raise ValueError(f"cannot read video {video_path}: it holds no frames")
        meta = {**source, **settings, "version": _FORMAT_VERSION, "source_fps": source_fps,
                "fps": fps or source_fps, "n_frames": n}
        cls._finish(out_dir, np.asarray(times), meta)
        return cls.open(out_dir)

    @classmethod
    def from_frames(cls, frames: np.ndarray, out_dir, fps: float, source: str = "array") -> "FrameStore":
        """Write frames (N, H, W, 3) uint8, e.g. from :class:`ProceduralGame`, as a store at ``fps``."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        with atomic_path(Path(out_dir) / "frames.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, frames, allow_pickle=False)
        meta = {"source": source, "size": list(frames.shape[1:3]), "requested_fps": fps, "version": _FORMAT_VERSION,
                "source_fps": fps, "fps": fps, "n_frames": len(frames),
                "frames_sha256": hashlib.sha256(np.ascontiguousarray(frames).data).hexdigest()}
        cls._finish(Path(out_dir), np.arange(len(frames)) / fps, meta)
        return cls.open(out_dir)

    @classmethod
    def _reusable(cls, out_dir: Path, source: dict, settings: dict) -> "FrameStore | None":
        try:
            meta = json.loads((out_dir / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        keep = ("source_sha256", "size", "requested_fps", "version")
        wanted = {**source, **settings, "version": _FORMAT_VERSION}
        if any(meta.get(k) != wanted[k] for k in keep):
            return None
        try:
            return cls.open(out_dir)
        except (OSError, ValueError):
            return None

    @staticmethod
    def _write_frames(path: Path, frames, size: tuple[int, int]) -> tuple[int, list]:
        """Stream (time, frame) pairs into an .npy file, resizing in batches; returns (count, times)."""
        header_len = len(_npy_header(0, size))
        n, times, batch = 0, [], []
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            handle.write(b"\0" * header_len)

            def flush():
                handle.write(resize_frames(np.stack(batch), size).tobytes())
                batch.clear()

            for t, frame in frames:
                times.append(t)
                batch.append(frame)
                n += 1
                if len(batch) == _BATCH:
                    flush()
            if batch:
                flush()
            header = _npy_header(n, size)
            if len(header) != header_len:
                raise RuntimeError(f"npy header length changed for {n} frames")
            handle.seek(0)
            handle.write(header)
        return n, times

    @staticmethod
    def _finish(out_dir: Path, times: np.ndarray, meta: dict) -> None:
        with atomic_path(out_dir / "times.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(times, np.float64), allow_pickle=False)
        write_atomic(out_dir / "meta.json", json.dumps(meta, indent=1))

    def clips(self, length: int = 16, stride: int = 16, starts=None) -> "ClipDataset":
        """Clips of ``length`` frames every ``stride`` frames (or at the given start frames)."""
        return ClipDataset(self, length, stride, starts)


class ClipDataset:
    """Item i: {"video": (3, length, H, W) float32 in [-1, 1]}, frames ``starts[i] .. starts[i] + length - 1``.

    A map-style dataset, as ``torch.utils.data.DataLoader`` takes it."""

    def __init__(self, store: FrameStore, length: int = 16, stride: int = 16, starts=None):
        if int(length) != length or length < 1 or int(stride) != stride or stride < 1:
            raise ValueError(f"length and stride must be positive integers, got {length!r}, {stride!r}")
        n = len(store)
        if starts is None:
            starts = np.arange(0, n - length + 1, stride)
        starts = np.asarray(starts, dtype=np.int64)
        if starts.ndim != 1:
            raise ValueError(f"starts must be 1-D, got shape {starts.shape}")
        bad = np.flatnonzero((starts < 0) | (starts + length > n))
        if len(bad):
            raise ValueError(f"starts[{bad[0]}] = {starts[bad[0]]} puts a {length}-frame clip outside the {n} frames of the store")
        self.store, self.length, self.starts = store, int(length), starts

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict:
        import torch

        s = int(self.starts[index])
        x = torch.from_numpy(np.array(self.store.frames[s : s + self.length]))
        return {"video": x.permute(3, 0, 1, 2).float().div_(127.5).sub_(1.0)}
