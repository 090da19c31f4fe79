"""Feature-extraction throughput by inference precision: speech windows, ViT frames, video GPT clips.

Models are built at their published sizes with random weights (nothing is downloaded): HuBERT-base
(95 M parameters; Antonello et al.'s 16.1 s causal window every 0.1 s; the first 16 s of windows are
shorter and run one by one), ViT-B/16 at 224 px, and the
default VQ-VAE (16x128x128 -> 4x8x8) with the default video GPT (576 hidden, 8 layers). Each is timed
in fp32 and, where the device supports it, in bf16 and fp16, in one process; the speed-up over fp32 and
the largest feature difference relative to fp32's spread are printed.

    python benchmarks/inference_bench.py                   # CUDA when present, else CPU (small sizes)
    python benchmarks/inference_bench.py --seconds 60 --frames 512 --clips 64
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cortexscale.features import audio_features, clip_features, frame_features, load_audio_model
from cortexscale.models import VQVAE, VideoGPT, VideoGPTConfig, ViT, ViTConfig, VQVAEConfig

from _results import write_results


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str, warm=None) -> tuple[float, dict]:
    """Seconds of ``fn()`` after a warm-up call of ``warm`` (default ``fn``), and its result."""
    (warm or fn)()
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def hubert_dir(folder: Path) -> Path:
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(folder)
    return folder


def cases(args, device: str, folder: Path) -> dict:
    """name -> (n items, unit, run(dtype, warm-up?) -> {layer: array})."""
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(int(args.seconds * 16000))).astype(np.float32)
    times = np.arange(1, int(round(args.seconds / 0.1)) + 1) * 0.1
    frames = rng.integers(0, 256, (args.frames, 224, 224, 3), dtype=np.uint8)
    video = rng.integers(0, 256, (args.clips * 16, 128, 128, 3), dtype=np.uint8)
    torch.manual_seed(0)
    vit = ViT(ViTConfig.from_variant("B/16")).to(device)
    vq, gpt = VQVAE(VQVAEConfig()).to(device), VideoGPT(VideoGPTConfig()).to(device)
    path = hubert_dir(folder / "hubert")

    loaded = {}

    def speech(dtype, warm=False):
        """The warm-up loads the model and shifts the steps by 0.05 s: the first windows' lengths are met
        once in real use."""
        if dtype not in loaded:
            loaded[dtype] = load_audio_model(path, device=device, dtype=dtype)
        am = loaded[dtype]
        steps = times[:-1] + 0.05 if warm else times
        return audio_features(am, wave, 16000, steps, [9], window=args.window, batch_size=args.batch,
                              progress=False)

    return {
        "hubert_windows": (len(times), "windows/s", speech),
        "vit_b16_frames": (len(frames), "frames/s", lambda dtype, warm=False: frame_features(
            vit, frames, [8], batch_size=args.batch, device=device, dtype=dtype, progress=False)),
        "videogpt_clips": (args.clips, "clips/s", lambda dtype, warm=False: clip_features(
            vq, gpt, video, layers=[5], batch_size=args.batch, device=device, dtype=dtype, progress=False)),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=None, help="audio length (default 60 on CUDA, 4 on CPU)")
    parser.add_argument("--window", type=float, default=None, help="speech window (default 16.1 s on CUDA, 2 on CPU)")
    parser.add_argument("--frames", type=int, default=None, help="ViT frames (default 512 on CUDA, 32 on CPU)")
    parser.add_argument("--clips", type=int, default=None, help="video clips (default 64 on CUDA, 4 on CPU)")
    parser.add_argument("--batch", type=int, default=None, help="items per forward pass (default 64 / 8)")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    big = device == "cuda"
    args.seconds = args.seconds or (60.0 if big else 4.0)
    args.window = args.window or (16.1 if big else 2.0)
    args.frames = args.frames or (512 if big else 32)
    args.clips = args.clips or (64 if big else 4)
    args.batch = args.batch or (64 if big else 8)
    name = torch.cuda.get_device_name() if big else f"cpu ({torch.get_num_threads()} threads)"
    dtypes = ["fp32", "bf16", "fp16"] if big else ["fp32", "bf16"]
    results = {"device": name, "args": vars(args), "cases": {}}
    print(f"device: {name}")
    with tempfile.TemporaryDirectory() as tmp:
        for case, (n, unit, run) in cases(args, device, Path(tmp)).items():
            rows, ref = {}, None
            for dtype in dtypes:
                sec, out = timed(lambda: run(dtype), device, warm=lambda: run(dtype, warm=True))
                feats = next(iter(out.values()))
                ref = feats if ref is None else ref
                rel = float(np.abs(feats - ref).max() / ref.std())
                rows[dtype] = {"s": sec, "rate": n / sec, "max_diff_over_std": rel}
                speedup = rows["fp32"]["s"] / sec
                print(f"{case:16s} {dtype}: {n / sec:10.1f} {unit}, {speedup:.2f}x fp32, "
                      f"max |diff| / std {rel:.3f}", flush=True)
            results["cases"][case] = rows
    write_results("inference_bench", results)
    return results


if __name__ == "__main__":
    main()
