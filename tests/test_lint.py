"""ruff on every package and mypy on the core ones (configured in pyproject.toml): any finding fails the suite."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = ["video", "metrics", "models", "analysis", "library", "app"]


def _tool(name: str) -> list[str]:
    """The tool next to this interpreter (the venv's), else on PATH; skips when it is not installed."""
    local = Path(sys.executable).with_name(name)
    if local.exists():
        return [str(local)]
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it comes with the `test` extra: pip install -e '.[test]')")
    return [found]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    done = _run([*_tool("ruff"), "check", "--no-cache", *CORE])
    assert done.returncode == 0, f"ruff check {' '.join(CORE)}:\n{done.stdout}{done.stderr}"


def test_mypy_finds_nothing_in_the_core_packages():
    done = _run([*_tool("mypy")])  # files and options: [tool.mypy] in pyproject.toml
    assert done.returncode == 0, f"mypy:\n{done.stdout}{done.stderr}"
