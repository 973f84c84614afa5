"""results.json is replaced atomically: never a partial file, never a lost old one."""

from __future__ import annotations

import json

import pytest

from rw_mtl.results import read_results, write_json_atomic


def test_write_and_read_back(tmp_path):
    path = write_json_atomic(tmp_path / "deep" / "results.json", {"b": 1.5, "a": [1, 2]})
    assert read_results(tmp_path / "deep") == {"a": [1, 2], "b": 1.5}
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1.5}


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = write_json_atomic(tmp_path / "results.json", {"old": True})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"new": object()})  # not serialisable: fails half-way through the dump
    assert read_results(path) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
