"""Where benchmark results go: ``benchmarks/results/<name>_<timestamp>.json``, written atomically."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def write_results(name: str, results: dict) -> Path:
    """Write ``results`` as JSON next to earlier runs and print the path."""
    out = Path(__file__).parent / "results" / f"{name}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)
    print(f"written {out}")
    return out
