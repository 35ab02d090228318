"""Weights files read without importing torch: their contents with every tensor as a numpy array.

Our weights files are torch pickles (`torch.save`), and `import torch` alone costs about 500 MiB of
memory. Inference needs only the numbers, so a process that has not imported torch reads a plain
copy instead: `<cache>/states/<sha256[:16]>.npz` (models._ultralytics.cache_dir), written once by a child process
that does import torch (`python -m models._state WEIGHTS OUT`), then read with `allow_pickle=False`.
The nested structure (dicts, lists, numbers, strings) travels as JSON beside the arrays. A process
that has torch already (training, tests) reads the file directly: same values, no child.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from models._ultralytics import cache_dir

STRUCTURE_KEY = "__structure__"
ARRAY_TAG = "__array__"
TUPLE_TAG = "__tuple__"


def states_cache_dir() -> Path:
    """`<cache>/states`."""
    return cache_dir() / "states"


def plain_state(weights: str | Path, sha256: str, trusted: bool = False) -> dict[str, Any]:
    """The weights file's saved dict, tensors as numpy arrays, without importing torch in this process.

    `sha256` keys the cached copy (the caller has checked the file against it). `trusted` allows a
    full unpickle (files with non-tensor objects such as our anatomy checkpoints); otherwise torch's
    `weights_only` loader is used.
    """
    if "torch" in sys.modules:
        return _read_with_torch(weights, trusted)
    path = states_cache_dir() / f"{sha256[:16]}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            run_child("models._state", [str(weights), str(path), *(["--trusted"] if trusted else [])])
        except RuntimeError as exc:
            raise ValueError(f"cannot read weights {str(weights)!r}: {exc}") from None
    return read_plain(path)


CHILD_ENV = "SURGLENS_EXPORT_CHILD"  # set in the child: it works in-process and never starts another


def run_child(module: str, args: list[str]) -> None:
    """Run `python -m MODULE ARGS` (work that needs torch) in a child process; RuntimeError with its last line."""
    if os.environ.get(CHILD_ENV):
        raise RuntimeError(f"a model-export child may not start another ({module} {args[:1]})")
    env = dict(os.environ, **{CHILD_ENV: "1"}, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                                          os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(tail[0])


def _read_with_torch(weights: str | Path, trusted: bool) -> dict[str, Any]:
    import torch

    state = torch.load(str(weights), map_location="cpu", weights_only=not trusted)
    if not isinstance(state, dict):
        raise ValueError(f"{str(weights)!r} holds a {type(state).__name__}, not a dict of weights")
    return _to_numpy(state)


def _to_numpy(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_numpy(v) for v in value)
    return value


def write_plain(state: dict[str, Any], path: str | Path) -> Path:
    """Write a dict of numpy arrays and JSON values as one .npz (atomic)."""
    arrays: dict[str, np.ndarray] = {}

    def encode(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = value
            return {ARRAY_TAG: key}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise ValueError(f"state keys must be strings, got {sorted(map(repr, value))[:3]}")
            return {k: encode(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return {TUPLE_TAG: [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        raise ValueError(f"cannot store a {type(value).__name__} in a plain state")

    structure = json.dumps(encode(state))
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.npz")
    np.savez(tmp, **{STRUCTURE_KEY: np.array(structure)}, **arrays)
    os.replace(tmp, path)
    return path


def read_plain(path: str | Path) -> dict[str, Any]:
    """Read what `write_plain` wrote (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != STRUCTURE_KEY}
        structure = json.loads(str(data[STRUCTURE_KEY]))

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            if ARRAY_TAG in value:
                return arrays[value[ARRAY_TAG]]
            if TUPLE_TAG in value:
                return tuple(decode(v) for v in value[TUPLE_TAG])
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(structure)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    trusted = "--trusted" in args
    weights, out = [a for a in args if a != "--trusted"]
    write_plain(_read_with_torch(weights, trusted), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
