"""latentgen.common.fileio: atomic files and directories, damaged files named, safe torch loads, Parquet provenance."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from latentgen.common import fileio
from latentgen.common.fileio import DamagedFileError


def test_atomic_path_renames_on_success_and_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with fileio.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("new")
        assert not target.exists(), "visible only after the block"
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError), fileio.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "new" and sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_atomic_path_removes_what_a_killed_write_left(tmp_path):
    (tmp_path / ".out.txt.k1ll3d.tmp").write_text("partial")
    (tmp_path / ".other.txt.x.tmp").write_text("not ours")
    with fileio.atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("done")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.txt.x.tmp", "out.txt"]


def test_atomic_directory_replaces_the_whole_directory_or_nothing(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "old.npy").write_text("old")
    (tmp_path / ".data.tmp-k1ll3d").mkdir()  # a killed write's leftover
    (tmp_path / ".other.tmp-keep").mkdir()
    with fileio.atomic_directory(target) as tmp:
        (tmp / "new.npy").write_text("new")
        assert (target / "old.npy").exists()
    assert sorted(p.name for p in target.iterdir()) == ["new.npy"], "old files never stay beside new ones"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-keep", "data"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask, "the mode mkdir gives, not mkdtemp's 0700"
    with pytest.raises(OSError), fileio.atomic_directory(target) as tmp:
        (tmp / "partial.npy").write_text("x")
        raise OSError("disk full")
    assert sorted(p.name for p in target.iterdir()) == ["new.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-keep", "data"]


def test_read_json_names_a_damaged_file(tmp_path):
    path = tmp_path / "run.json"
    fileio.write_json({"b": 1, "a": [1, 2]}, path)
    assert fileio.read_json(path) == {"a": [1, 2], "b": 1}
    path.write_text('{"a": ')
    with pytest.raises(DamagedFileError, match=f"run summary {path} is damaged.*Rerun it") as caught:
        fileio.read_json(path, what="run summary", advice="Rerun it.")
    assert caught.value.path == path


def test_verify_sha256_catches_a_flipped_byte(tmp_path):
    path = tmp_path / "w.pt"
    digest = fileio.save_torch({"w": torch.arange(4.0)}, path)
    assert digest == fileio.file_sha256(path)
    fileio.verify_sha256(path, digest, "checkpoint", "")
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError, match="differs from the recorded"):
        fileio.verify_sha256(path, digest, "checkpoint", "")


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_load_torch_executes_nothing_and_names_the_file(tmp_path):
    good = tmp_path / "good.pt"
    fileio.save_torch({"w": torch.ones(2)}, good)
    assert torch.equal(fileio.load_torch(good)["w"], torch.ones(2))
    evil = tmp_path / "evil.pt"
    torch.save({"w": RunsCode(tmp_path / "ran")}, evil, pickle_module=pickle)
    with pytest.raises(DamagedFileError, match=f"(?s)checkpoint {evil} is damaged.*nothing in it was executed"):
        fileio.load_torch(evil)
    assert not (tmp_path / "ran").exists()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:40])
    with pytest.raises(DamagedFileError, match="truncated.pt"):
        fileio.load_torch(truncated, what="resume state")
    with pytest.raises(FileNotFoundError):
        fileio.load_torch(tmp_path / "missing.pt")


def test_parquet_keeps_provenance_and_names_a_damaged_file(tmp_path):
    path = tmp_path / "t.parquet"
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    fileio.write_parquet(frame, path, metadata={"seed": 3})
    pd.testing.assert_frame_equal(fileio.read_parquet(path), frame)
    assert fileio.parquet_metadata(path) == {"seed": 3}
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DamagedFileError, match="t.parquet"):
        fileio.read_parquet(path)


def test_tensor_over_shares_read_only_memory_and_fixes_byte_order(tmp_path, recwarn):
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.float32))
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    tensor = fileio.tensor_over(mapped)
    assert tensor.tolist() == list(range(6)) and not recwarn.list
    big_endian = np.arange(3, dtype=">i4")
    assert fileio.tensor_over(big_endian).tolist() == [0, 1, 2]


def test_importing_fileio_imports_no_torch_pandas_or_pyarrow():
    """The workflow's config check imports the dataset code, and so fileio, while it parses."""
    code = (
        "import sys, latentgen.common.fileio, latentgen.config; "
        "print(sorted({'torch', 'pandas', 'pyarrow'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
