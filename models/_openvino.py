"""OpenVINO inference for the detector: the one place openvino is imported, offline and telemetry-free.

The shipped (or a user's) ultralytics weights are exported once with ultralytics' own
`export(format="openvino")` into a cache folder keyed by the weights' SHA-256 and the input size
(`<SurgLens data folder>/cache/openvino/<sha256[:16]>-<imgsz>[-int8]_openvino_model/`), never into the repository.
The export is dynamic in batch and image shape, so frames are letterboxed to the same rectangle
as with torch (320x192 for 16:9 video) and batches of any size run in one call.

openvino's model-conversion module sends usage events (openvino_telemetry, Google Analytics) unless
a consent file says otherwise; `load_openvino` hides that package before the first import, so
openvino falls back to its built-in no-op stub and nothing is sent or written to ~/intel.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from models._ultralytics import load_ultralytics, ultralytics_config_dir

INSTALL_HINT = "pip install 'surglens[fast]' (or: pip install 'openvino>=2024,<2027' 'nncf>=2.14,<4')"


def openvino_available() -> bool:
    """Whether the optional openvino package is installed (without importing it)."""
    return importlib.util.find_spec("openvino") is not None


def load_openvino() -> ModuleType:
    """Import openvino with its telemetry package hidden; ImportError with the install hint if absent."""
    if "openvino" not in sys.modules:
        # A None entry makes `import openvino_telemetry` raise ImportError: openvino then uses its stub.
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    try:
        import openvino
    except ImportError as exc:
        raise ImportError(f"OpenVINO inference needs the openvino package: {INSTALL_HINT}") from exc
    return openvino


def openvino_cache_dir() -> Path:
    """Where exported OpenVINO models live: `<SurgLens data folder>/cache/openvino`."""
    return ultralytics_config_dir().parent / "cache" / "openvino"


# INT8 calibration: this share of the calibration data's training split (m2cai16 trainval: 337 of
# 2,248 frames), never its test split, which the detector card scores.
CALIBRATION_FRACTION = 0.15


def exported_model_dir(
    weights: str | Path, sha256: str, imgsz: int, int8: bool = False, calibration: str | Path | None = None
) -> Path:
    """The OpenVINO export of `weights` (SHA-256 `sha256`) at `imgsz`, exporting it on first use.

    `int8=True`: the INT8 export (NNCF post-training quantisation, detection head kept in float),
    calibrated on frames of `calibration` (a VOC root or an ultralytics data.yaml; its training
    split). Without `calibration` an INT8 export must already be in the cache.
    The export runs in a temporary folder beside the cache entry and is renamed into place, so a
    crash or a second process never leaves a half-written model that later runs would load.
    """
    if not isinstance(imgsz, int) or imgsz <= 0 or imgsz % 32:
        raise ValueError(f"imgsz must be a positive multiple of 32, got {imgsz!r}")
    # ultralytics recognises an OpenVINO model by its folder name's "_openvino_model" suffix.
    target = openvino_cache_dir() / f"{sha256[:16]}-{imgsz}{'-int8' if int8 else ''}_openvino_model"
    if (target / "metadata.yaml").is_file() and any(target.glob("*.xml")):
        return target
    if int8 and calibration is None:
        raise FileNotFoundError(
            f"no INT8 export of {str(weights)!r} in {str(target.parent)!r}: make it with `surglens detector-backends "
            "MODEL --backends torch,openvino,openvino-int8 --calibration ../shared/data/m2cai16-tool-locations ...`"
        )
    load_openvino()
    ul = load_ultralytics()
    options: dict[str, Any] = {}
    if int8:
        if importlib.util.find_spec("nncf") is None:
            raise ImportError(f"INT8 export needs the nncf package: {INSTALL_HINT}")
        from models.train_detector import prepare_dataset

        data = prepare_dataset(calibration, ultralytics_config_dir().parent / "cache" / "calibration")
        options = {"int8": True, "data": str(data), "split": "train", "fraction": CALIBRATION_FRACTION, "batch": 8}
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        local = work / "weights.pt"
        shutil.copyfile(weights, local)
        exported = Path(ul.YOLO(str(local), task="detect").export(format="openvino", imgsz=imgsz, dynamic=True, verbose=False,
                                                                  **options))
        if not any(exported.glob("*.xml")):
            raise RuntimeError(f"ultralytics' OpenVINO export of {str(weights)!r} wrote no model into {str(exported)!r}")
        try:
            os.rename(exported, target)
        except OSError:
            if not (target / "metadata.yaml").is_file():  # another process won the race: keep its export
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def load_openvino_yolo(weights: str | Path, sha256: str, imgsz: int, int8: bool = False) -> Any:
    """An ultralytics YOLO object running the OpenVINO export of `weights` (fp32 exported on first use)."""
    load_openvino()
    ul = load_ultralytics()
    return ul.YOLO(str(exported_model_dir(weights, sha256, imgsz, int8=int8)), task="detect")


def compiled_torch_module(module: Any, example: Any, key: str, threads: int | None = None) -> Any:
    """A torch module converted to OpenVINO and compiled for the CPU (converted once; the IR is kept in the cache).

    `example` is one input tensor of the shape the module will always see; `key` names the cache entry
    (the weights' SHA-256, the input shape): `<cache>/<key>.xml`. The conversion is written to a
    temporary name and renamed into place, so a crash never leaves a half-written model.
    """
    ov = load_openvino()
    path = openvino_cache_dir() / f"{key}.xml"
    core = ov.Core()
    if not path.is_file():
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            model = ov.convert_model(module.eval(), example_input=example)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.xml")
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(tmp, path)
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}  # never bf16 on CPUs that have it: same numbers as torch
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return core.compile_model(str(path), "CPU", config)
