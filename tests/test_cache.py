"""Atomic writes and content hashes."""

from __future__ import annotations

import pytest

from taskdistill.cache import atomic_dir, atomic_write_json, content_hash, folder_hash


def test_atomic_dir_commits_on_success(tmp_path):
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("1")
    assert (tmp_path / "out" / "a.txt").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("1")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_existing_only_when_complete(tmp_path):
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "v").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "v").write_text("new")
        raise RuntimeError
    assert (tmp_path / "out" / "v").read_text() == "old"
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "v").write_text("new")
    assert (tmp_path / "out" / "v").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_hashes_are_stable_and_sensitive(tmp_path):
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})
    atomic_write_json(tmp_path / "d" / "x.json", {"k": 1})
    first = folder_hash(tmp_path / "d")
    atomic_write_json(tmp_path / "d" / "x.json", {"k": 2})
    assert folder_hash(tmp_path / "d") != first


def test_atomic_outputs_get_the_usual_modes(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "f.json", {})
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(mask)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
