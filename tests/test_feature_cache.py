import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cortexscale.features.cache import FeatureCache, file_identity, stimulus_hash


def events(words=("alice", "was", "beginning")):
    return pd.DataFrame({"onset": np.arange(len(words)) * 0.3, "duration": 0.25, "value": list(words)})


def test_recomputes_only_missing_layers(tmp_path):
    cache = FeatureCache(tmp_path)
    calls = []

    def compute(layers):
        calls.append(list(layers))
        return {layer: np.full((3, 4), layer, np.float32) for layer in layers}

    stim = stimulus_hash(events())
    first = cache.get_or_compute("model-a", [1, 2], stim, {"context": 256}, compute)
    again = cache.get_or_compute("model-a", [2, 3], stim, {"context": 256}, compute)
    assert calls == [[1, 2], [3]]
    assert np.array_equal(first[2], again[2]) and again[3][0, 0] == 3
    cache.get_or_compute("model-a", [1], stim, {"context": 512}, compute)
    cache.get_or_compute("model-b", [1], stim, {"context": 256}, compute)
    assert calls[2:] == [[1], [1]]


def test_key_depends_on_every_part():
    base = FeatureCache.key("m", 3, "s", {"a": 1})
    variants = [FeatureCache.key("m2", 3, "s", {"a": 1}), FeatureCache.key("m", 4, "s", {"a": 1}),
                FeatureCache.key("m", 3, "t", {"a": 1}), FeatureCache.key("m", 3, "s", {"a": 2})]
    assert len({base, *variants}) == 5
    assert stimulus_hash(events()) != stimulus_hash(events(("alice", "was", "beginnings")))
    shifted = events().assign(onset=lambda d: d.onset + 1e-9)
    assert stimulus_hash(events()) != stimulus_hash(shifted)


def test_corrupt_and_partial_entries_are_recomputed(tmp_path):
    cache = FeatureCache(tmp_path)
    key = cache.key("m", 1, "s")
    cache.put(key, np.arange(6.0).reshape(2, 3))
    meta_path = cache._meta_path(key)
    array_path = cache._array_path(key, json.loads(meta_path.read_text())["sha256"])
    data = bytearray(array_path.read_bytes())
    data[-1] ^= 0xFF
    array_path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="corrupt"):
        assert cache.get(key) is None
    assert not array_path.exists() and not meta_path.exists()

    cache.put(key, np.ones(3))
    array_path = cache._array_path(key, json.loads(meta_path.read_text())["sha256"])
    array_path.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="unreadable"):
        assert cache.get(key) is None

    cache.put(key, np.ones(3))
    meta_path.unlink()
    assert cache.get(key) is None


def test_metadata_describes_the_entry(tmp_path):
    cache = FeatureCache(tmp_path)
    out = cache.get_or_compute("m", [5], "stim", {"tr": 2.0}, lambda layers: {5: np.zeros((2, 2), np.float32)})
    meta = json.loads(cache._meta_path(cache.key("m", 5, "stim", {"tr": 2.0})).read_text())
    assert meta["layer"] == 5 and meta["settings"] == {"tr": 2.0} and meta["shape"] == [2, 2]
    assert meta["dtype"] == out[5].dtype.str


def test_concurrent_writers_leave_a_valid_entry(tmp_path):
    cache = FeatureCache(tmp_path)
    key = cache.key("m", 1, "s")
    arrays = [np.full((200, 50), i, np.float64) for i in range(6)]
    errors, barrier = [], threading.Barrier(len(arrays))

    def write(array):
        try:
            barrier.wait()
            cache.put(key, array)
        except BaseException as err:  # collected: a failed writer must fail the test, not just warn
            errors.append(err)

    threads = [threading.Thread(target=write, args=(a,)) for a in arrays]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    got = cache.get(key)
    assert got is not None and got.shape == (200, 50) and len(np.unique(got)) == 1
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


def test_a_write_killed_half_way_leaves_the_old_entry_and_no_partial_file(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path)
    key = cache.key("m", 1, "s")
    cache.put(key, np.zeros((50, 4)))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    real_save = np.save

    def killed_half_way(file, array, **kwargs):
        real_save(file, array, **kwargs)
        path = Path(file)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        cache.put(key, np.ones((50, 4)))
    monkeypatch.undo()
    np.testing.assert_array_equal(cache.get(key), np.zeros((50, 4)))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_file_identity(tmp_path):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"abc")
    first = file_identity(weights)
    weights.write_bytes(b"abd")
    assert file_identity(weights) != first
    with pytest.raises(FileNotFoundError, match="does not exist"):
        file_identity(tmp_path / "missing.gguf")
