"""Training throughput: our video GPT against Hugging Face GPT2LMHeadModel, and the VQ-VAE tokenizer.

Both GPTs get the same width, depth, heads, vocabulary, context (one 4x8x8 token clip = 256 tokens),
dropout (0.2 residual, 0.3 attention), batch, AdamW step and precision, and alternate in one process so
they see the same machine state. A training step is forward, loss, backward and optimizer step.

    python benchmarks/train_bench.py                   # defaults: hidden 576, 8 layers, 4 heads, batch 8
    python benchmarks/train_bench.py --hidden 256 --layers 4 --rounds 5 --device cpu

On CUDA it also gives the fp16 and bf16 speedups over fp32 and the model FLOP utilisation against the
device's dense peak (pass --peak-tflops). Results go to benchmarks/results/ as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cortexscale.models.counting import count_parameters
from cortexscale.models.videogpt import VideoGPT, VideoGPTConfig
from cortexscale.models.vqvae import VQVAE, VQVAEConfig
from cortexscale.runtime import resolve_device, torch_dtype

from _results import write_results

GRID = (4, 8, 8)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ours(args, device):
    cfg = VideoGPTConfig(vocab_size=args.vocab, grid=GRID, hidden=args.hidden, layers=args.layers,
                         heads=args.heads, dropout=0.2, attn_dropout=0.3)
    model = VideoGPT(cfg).to(device)

    def step(tokens):
        loss, _ = model.loss({"tokens": tokens.view(-1, *GRID)})
        return loss

    return model, step


def huggingface(args, device):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=args.vocab, n_positions=GRID[0] * GRID[1] * GRID[2], n_embd=args.hidden,
                     n_layer=args.layers, n_head=args.heads, resid_pdrop=0.2, embd_pdrop=0.2, attn_pdrop=0.3,
                     attn_implementation="sdpa")
    model = GPT2LMHeadModel(cfg).to(device)

    def step(tokens):
        return model(input_ids=tokens, labels=tokens).loss

    return model, step


def time_steps(model, step, tokens, n_steps: int, device: torch.device, precision: str) -> float:
    """Median seconds per training step over ``n_steps`` (after one warm-up step)."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    times = []
    for i in range(n_steps + 1):
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch_dtype(precision), enabled=precision != "fp32"):
            loss = step(tokens)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gpt_bench(args, device: torch.device, precision: str) -> dict:
    torch.manual_seed(0)
    n_ctx = GRID[0] * GRID[1] * GRID[2]
    tokens = torch.randint(args.vocab, (args.batch, n_ctx), device=device)
    contenders = {"ours": ours(args, device), "hf_gpt2": huggingface(args, device)}
    per_round = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, (model, step) in contenders.items():
            per_round[name].append(time_steps(model, step, tokens, args.steps, device, precision))
    out = {}
    for name, (model, _) in contenders.items():
        sec = statistics.median(per_round[name])
        out[name] = {"s_per_step": sec, "tokens_per_s": args.batch * n_ctx / sec,
                     "params": count_parameters(model)}
    out["ratio"] = out["ours"]["tokens_per_s"] / out["hf_gpt2"]["tokens_per_s"]
    flops = contenders["ours"][0].flops_per_sample() * args.batch
    out["ours"]["tflops_per_s"] = flops / out["ours"]["s_per_step"] / 1e12
    return out


def vqvae_bench(args, device: torch.device) -> dict:
    model = VQVAE(VQVAEConfig()).to(device)
    clips = torch.rand(args.vq_batch, 3, 16, 128, 128, device=device) * 2 - 1
    model.eval()
    with torch.inference_mode():
        model.encode(clips)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(args.vq_steps):
            model.encode(clips)
        _sync(device)
    encode_s = (time.perf_counter() - t0) / args.vq_steps
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(args.vq_steps + 1):
        _sync(device)
        t0 = time.perf_counter()
        loss, _ = model.loss({"video": clips})
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(device)
        if i:
            times.append(time.perf_counter() - t0)
    train_s = statistics.median(times)
    return {"encode_clips_per_s": args.vq_batch / encode_s, "train_clips_per_s": args.vq_batch / train_s,
            "params": count_parameters(model)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=576)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--vq-batch", type=int, default=2)
    parser.add_argument("--vq-steps", type=int, default=2)
    parser.add_argument("--skip-vqvae", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense peak of the device, for MFU")
    parser.add_argument("--device", default="auto", help='"auto" (CUDA when present), "cpu", "cuda" or "cuda:N"')
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else f"cpu ({torch.get_num_threads()} threads)"
    results = {"device": name, "args": vars(args), "gpt": {}}
    precisions = ["fp32", "fp16", "bf16"] if cuda else ["fp32"]
    for precision in precisions:
        res = gpt_bench(args, device, precision)
        results["gpt"][precision] = res
        line = (f"[{precision}] ours {res['ours']['tokens_per_s']:.0f} tok/s, HF GPT2LMHeadModel "
                f"{res['hf_gpt2']['tokens_per_s']:.0f} tok/s, ratio {res['ratio']:.2f}, "
                f"ours {res['ours']['tflops_per_s']:.3f} TFLOP/s")
        if args.peak_tflops:
            line += f", MFU {res['ours']['tflops_per_s'] / args.peak_tflops:.1%}"
        print(line, flush=True)
    for precision in precisions[1:]:
        speedup = results["gpt"][precision]["ours"]["tokens_per_s"] / results["gpt"]["fp32"]["ours"]["tokens_per_s"]
        results["gpt"][precision]["speedup_vs_fp32"] = speedup
        print(f"{precision} speedup over fp32 (ours): {speedup:.2f}x")
    if not args.skip_vqvae:
        results["vqvae"] = vqvae_bench(args, device)
        vq = results["vqvae"]
        print(f"VQ-VAE (16x128x128 -> 4x8x8): encode {vq['encode_clips_per_s']:.2f} clips/s, "
              f"train {vq['train_clips_per_s']:.2f} clips/s")
    write_results("train_bench", results)
    return results


if __name__ == "__main__":
    main()
