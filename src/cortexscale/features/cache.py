"""Content-addressed cache of layer features, shared across studies.

An entry is keyed by the model's identity (a hub id with its revision, or a hash of the weight files), the
layer, a hash of the stimulus and the extraction settings. It is stored as ``<key>.<checksum>.npy``
plus ``<key>.json``; the JSON holds the array's shape, dtype and SHA-256 and is written last, so an entry
without it is incomplete. Both files are written to temporary names and renamed, so concurrent writers
never corrupt an entry. An entry that fails its checks is removed and recomputed, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_path, write_atomic

__all__ = ["CACHE_ENV_VAR", "FeatureCache", "cached_facts", "default_cache_dir", "file_identity", "stimulus_hash"]

CACHE_ENV_VAR = "CORTEXSCALE_CACHE"


def default_cache_dir() -> Path:
    """``$CORTEXSCALE_CACHE``, else ``~/.cache/cortexscale/features``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env) if env else Path.home() / ".cache" / "cortexscale" / "features"


def _stat_identity(path: Path) -> dict:
    """What changes when a local model changes without reading it: path, size and modification time of the
    file (a folder: of its config.json)."""
    path = path.resolve()
    stat = (path / "config.json" if path.is_dir() else path).stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cached_facts(path, read: Callable[[], dict], root=None) -> dict:
    """``read()`` (a JSON-able dict of what a model's config says: layer count, width, kind) for the local model
    file or folder ``path``, kept in ``<cache>/models/`` under the file's identity (path, size, mtime), so a
    study that plans again (a rerun) does not parse a large model file again. A changed file reads afresh."""
    identity = _stat_identity(Path(path))
    key = _sha256_bytes(json.dumps(identity, sort_keys=True).encode())[:32]
    file = Path(root if root is not None else default_cache_dir()) / "models" / f"{key}.json"
    try:
        record = json.loads(file.read_text())
        if record.get("identity") == identity:
            return record["facts"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    facts = read()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(file, json.dumps({"identity": identity, "facts": facts}))
    except OSError:  # a read-only cache only costs the next plan its reading
        pass
    return facts


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_identity(path) -> str:
    """SHA-256 over a weight file, or over the sorted relative names and contents of a folder's files."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cannot hash model weights: {path} does not exist")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path if path.is_dir() else path.parent)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def stimulus_hash(stimulus) -> str:
    """SHA-256 of a stimulus: an events DataFrame (columns and values), an array, bytes or a string."""
    if isinstance(stimulus, pd.DataFrame):
        data = stimulus.to_json(orient="split", double_precision=15).encode()
    elif isinstance(stimulus, np.ndarray):
        data = str((stimulus.shape, stimulus.dtype.str)).encode() + np.ascontiguousarray(stimulus).tobytes()
    elif isinstance(stimulus, bytes):
        data = stimulus
    else:
        data = str(stimulus).encode()
    return _sha256_bytes(data)


class FeatureCache:
    """Layer features on disk, addressed by (model identity, layer, stimulus hash, settings)."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_cache_dir()

    @staticmethod
    def key(model_id: str, layer: int, stimulus: str, settings: dict | None = None) -> str:
        """Hex key of one entry; ``stimulus`` is a :func:`stimulus_hash`, ``settings`` any JSON-able dict."""
        payload = {"model": model_id, "layer": int(layer), "stimulus": stimulus, "settings": settings or {}}
        return _sha256_bytes(json.dumps(payload, sort_keys=True, default=str).encode())

    def _meta_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def _array_path(self, key: str, sha256: str) -> Path:
        return self.root / key[:2] / f"{key}.{sha256[:16]}.npy"

    def _discard(self, key: str, why: str) -> None:
        warnings.warn(f"feature cache entry {key} in {self.root} is {why}; recomputing", stacklevel=3)
        for path in [self._meta_path(key), *self._meta_path(key).parent.glob(f"{key}.*.npy")]:
            path.unlink(missing_ok=True)

    def get(self, key: str) -> np.ndarray | None:
        """The cached array, or None when absent; a corrupt or partial entry is removed (with a warning)."""
        meta_path = self._meta_path(key)
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            array = np.load(self._array_path(key, meta["sha256"]), allow_pickle=False)
        except (OSError, ValueError, KeyError, TypeError) as err:
            self._discard(key, f"unreadable ({err})")
            return None
        if list(array.shape) != meta.get("shape") or array.dtype.str != meta.get("dtype") or \
                _sha256_bytes(np.ascontiguousarray(array).tobytes()) != meta.get("sha256"):
            self._discard(key, "corrupt (shape, dtype or checksum differ from its metadata)")
            return None
        return array

    def put(self, key: str, array: np.ndarray, meta: dict | None = None) -> None:
        """Store ``array`` under ``key``: the array under a name of its checksum, then the metadata that
        points at it, so concurrent writers of one key each leave a complete pair and the last one wins."""
        array = np.ascontiguousarray(array)
        sha256 = _sha256_bytes(array.tobytes())
        with atomic_path(self._array_path(key, sha256), suffix=".npy") as tmp:
            np.save(tmp, array, allow_pickle=False)
        record = {**(meta or {}), "shape": list(array.shape), "dtype": array.dtype.str, "sha256": sha256}
        write_atomic(self._meta_path(key), json.dumps(record, indent=2, default=str))

    def get_or_compute(self, model_id: str, layers: Iterable[int], stimulus: str, settings: dict | None,
                       compute: Callable[[list[int]], dict]) -> dict[int, np.ndarray]:
        """{layer: array} for ``layers``, calling ``compute(missing_layers) -> {layer: array}`` only for
        layers not already cached, and storing what it returns."""
        layers = [int(layer) for layer in layers]
        keys = {layer: self.key(model_id, layer, stimulus, settings) for layer in layers}
        found = {layer: self.get(key) for layer, key in keys.items()}
        missing = [layer for layer, array in found.items() if array is None]
        if missing:
            fresh = compute(missing)
            for layer in missing:
                meta = {"model": model_id, "layer": layer, "stimulus": stimulus, "settings": settings or {}}
                self.put(keys[layer], fresh[layer], meta)
                found[layer] = np.asarray(fresh[layer])
        return found
