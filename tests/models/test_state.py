"""Plain copies of weights files: read without torch, no pickles, made once by a child process."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from models._state import plain_state, read_plain, write_plain
from tests.conftest import REPO


def test_plain_copy_round_trips_nested_arrays_and_values(tmp_path):
    state = {"nets": {"a": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}}, "names": ("x", "y"),
             "list": [1, 2.5, None, "s", True], "n": np.float32(0.5), "empty": {}}
    out = read_plain(write_plain(state, tmp_path / "s.npz"))
    np.testing.assert_array_equal(out["nets"]["a"]["w"], state["nets"]["a"]["w"])
    assert out["names"] == ("x", "y") and out["list"] == [1, 2.5, None, "s", True] and out["n"] == 0.5
    assert out["empty"] == {} and not list(tmp_path.glob(".*partial*"))
    with np.load(tmp_path / "s.npz", allow_pickle=False) as data:  # nothing in it needs unpickling
        assert all(data[k].dtype != object for k in data.files)


@pytest.mark.parametrize("bad, match", [({"x": object()}, "cannot store a object"), ({1: 2}, "state keys must be strings")])
def test_plain_copy_refuses_what_json_and_arrays_cannot_hold(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        write_plain(bad, tmp_path / "bad.npz")


def test_a_process_without_torch_reads_weights_through_a_cached_child_copy(tmp_path):
    import torch

    weights = tmp_path / "w.pt"
    torch.save({"format": "t/1", "nets": {"v": {"weight": torch.ones(2, 2)}}, "names": ["a"]}, weights)
    script = textwrap.dedent(f"""
        import sys
        from models._state import plain_state
        s = plain_state({str(weights)!r}, "ab" * 32)
        assert s["nets"]["v"]["weight"].sum() == 4 and s["names"] == ["a"], s
        assert "torch" not in sys.modules
        print("ok")
        """)
    env = {"PATH": "/usr/bin:/bin", "SURGLENS_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    assert (tmp_path / "data" / "cache" / "states" / f"{'ab' * 8}.npz").is_file()
    # with torch loaded (this process) the file is read directly, with the same values
    assert plain_state(weights, "ab" * 32)["nets"]["v"]["weight"].tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_an_unreadable_weights_file_is_named(tmp_path, monkeypatch):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a torch file")
    script = f"from models._state import plain_state; plain_state({str(bad)!r}, 'cd' * 32)"
    env = {"PATH": "/usr/bin:/bin", "SURGLENS_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and f"cannot read weights {str(bad)!r}" in out.stderr
