"""Atomic writes leave either the old file or the new one, never a partial file."""

import pytest

from cortexscale._io import atomic_path, write_atomic


def test_write_atomic_replaces_content(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    write_atomic(target, "a,b\n1,2\n")
    write_atomic(target, "a,b\n3,4\n")
    assert target.read_text() == "a,b\n3,4\n"
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]


def test_interrupted_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "report.md"
    write_atomic(target, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new cont")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]
