"""`surglens analyze` infers without torch: detector, tracker, anatomy and phase model (about 500 MiB less)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, shared_path


@pytest.mark.skipif(not importlib.util.find_spec("openvino"), reason="openvino not installed")
def test_analysing_a_real_clip_never_imports_torch_or_ultralytics(tmp_path):
    clip = next(iter(sorted(shared_path("cholec-clips").glob("*.mp4"))))
    script = textwrap.dedent("""
        import sys
        from app.cli import main
        assert main(["analyze", sys.argv[1], "--out", sys.argv[2]]) == 0
        from analysis.results import CaseResult
        case = CaseResult.load(sys.argv[2])
        assert len(case.phases()) == 32 and len(case.anatomy()) > 0, case.stages
        backends = (case.stages["detection"].summary["detector"]["backend"], case.stages["anatomy"].summary["backend"])
        assert backends == ("openvino", "openvino"), backends
        leaked = [m for m in ("torch", "ultralytics", "torchvision") if m in sys.modules]
        assert not leaked, leaked
        print("ok")
        """)
    out = subprocess.run([sys.executable, "-c", script, str(clip), str(tmp_path / "case")], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
