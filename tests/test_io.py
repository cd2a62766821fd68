"""Artefact writes are atomic: a write that fails leaves the old file (or nothing), and the next
write of a path removes what a killed writer of it left behind."""

from __future__ import annotations

import json

import pytest

from essential_sparsity.records.io import atomic_dir, write_json


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"value": 1})
    with pytest.raises(TypeError):
        write_json(path, {"value": object()})
    assert json.loads(path.read_text()) == {"value": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_the_next_write_removes_what_a_killed_writer_left(tmp_path):
    """A SIGKILL between creating the temporary and renaming it leaves the temporary behind;
    it is never read as the artefact, and the job's rerun clears it."""
    (tmp_path / ".metrics.json.k1ll3d.tmp").write_text('{"value": ')
    (tmp_path / ".step-4.x.tmp").mkdir()
    (tmp_path / ".step-4.x.tmp" / "model.safetensors").write_bytes(b"half")
    (tmp_path / ".other.json.abc.tmp").write_text("another artefact's, left alone")
    write_json(tmp_path / "metrics.json", {"value": 2})
    with atomic_dir(tmp_path / "step-4") as tmp:
        (tmp / "model.safetensors").write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.abc.tmp", "metrics.json",
                                                          "step-4"]
    assert (tmp_path / "step-4" / "model.safetensors").read_bytes() == b"whole"
