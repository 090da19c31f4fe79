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


def run_worker(script: str, name: str, data_file: str, out: str, arrays: tuple[str, ...]) -> dict:
    """Run one contender in a fresh process (``script --worker name data out``) and read back what it wrote:
    ``out.json`` (wall time, peak memory) and the ``arrays`` of ``out`` (.npz); ``{"error": ...}`` on failure."""
    import subprocess
    import sys

    import numpy as np

    proc = subprocess.run([sys.executable, script, "--worker", name, data_file, out], text=True,
                          capture_output=True)
    if proc.returncode != 0:
        print(proc.stderr[-2000:])
        return {"error": proc.stderr[-500:]}
    info = json.loads(Path(out + ".json").read_text())
    saved = np.load(out)
    info.update({key: saved[key] for key in arrays})
    print(f"    {info['wall_s']:.1f} s, peak {info['peak_mb']:.0f} MB", flush=True)
    return info
