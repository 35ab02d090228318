"""OpenVINO inference without torch: the one place openvino is imported, offline and telemetry-free.

The analysis worker and the dashboard infer through OpenVINO so that they never import torch (about
500 MiB of memory each): `OpenVINOBoxes` runs the detector's export with our own letterbox and NMS,
`compiled_ir` the anatomy segmenter's. Exports need torch and ultralytics, so a process without torch
makes them in a child process (`python -m models._openvino ...`), once; they are cached.

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

import numpy as np

from models._state import CHILD_ENV
from models._state import run_child as run_torch_child
from models._ultralytics import cache_dir, load_ultralytics

INSTALL_HINT = "pip install 'openvino>=2024,<2027' (a SurgLens dependency; INT8 also needs: pip install 'surglens[fast]')"


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
    return cache_dir() / "openvino"


# INT8 calibration: this share of the calibration data's training split (m2cai16 trainval: 337 of
# 2,248 frames), never its test split, which the detector card scores.
CALIBRATION_FRACTION = 0.15


def exported_model_dir(
    weights: str | Path, sha256: str, imgsz: int, int8: bool = False, calibration: str | Path | None = None,
    in_process: bool = False,
) -> Path:
    """The OpenVINO export of `weights` (SHA-256 `sha256`) at `imgsz`, exporting it on first use.

    `int8=True`: the INT8 export (NNCF post-training quantisation, detection head kept in float),
    calibrated on frames of `calibration` (a VOC root or an ultralytics data.yaml; its training
    split). Without `calibration` an INT8 export must already be in the cache.
    The export needs ultralytics and torch: a process that has not imported torch (the analysis worker,
    which infers without it) runs it in a child process (`in_process` forces this one).
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
    if not in_process and "torch" not in sys.modules and not os.environ.get(CHILD_ENV):
        extra = ["--int8"] + (["--calibration", str(calibration)] if calibration else []) if int8 else []
        run_child(["export-detector", str(weights), sha256, str(imgsz), *extra])
        return exported_model_dir(weights, sha256, imgsz, int8=int8, calibration=calibration, in_process=True)
    load_openvino()
    ul = load_ultralytics()
    options: dict[str, Any] = {}
    if int8:
        if importlib.util.find_spec("nncf") is None:
            raise ImportError(f"INT8 export needs the nncf package: {INSTALL_HINT}")
        from models.train_detector import prepare_dataset

        data = prepare_dataset(calibration, cache_dir() / "calibration")
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
    """An ultralytics YOLO object running the OpenVINO export of `weights` (the reference `OpenVINOBoxes` is tested against)."""
    load_openvino()
    ul = load_ultralytics()
    return ul.YOLO(str(exported_model_dir(weights, sha256, imgsz, int8=int8)), task="detect")


# ultralytics' letterbox grey and per-class box offset for class-aware NMS.
PAD_VALUE, CLASS_OFFSET = 114, 7680.0


class OpenVINOBoxes:
    """The detector's OpenVINO export run without ultralytics or torch: `boxes(frames) -> [(xyxy, conf, cls)]`.

    The same steps as ultralytics' predictor, in numpy and OpenCV: letterbox to the smallest
    stride-aligned rectangle (the export is dynamic), one batched inference, best-class filtering,
    class-aware greedy NMS, boxes scaled back to the frame. tests/models/test_detector.py checks the
    boxes against ultralytics running the same export.
    """

    def __init__(self, model_dir: str | Path, imgsz: int, conf: float = 0.25, iou: float = 0.5, max_det: int = 30,
                 threads: int | None = None, precision: str | None = None):
        import yaml

        ov = load_openvino()
        model_dir = Path(model_dir)
        meta = yaml.safe_load((model_dir / "metadata.yaml").read_text())
        self.names: dict[int, str] = {int(k): str(v) for k, v in meta["names"].items()}
        self.stride = int(meta.get("stride", 32))
        self.imgsz, self.conf, self.iou, self.max_det = int(imgsz), float(conf), float(iou), int(max_det)
        # `precision` None: the CPU's default, bf16 where it has AVX-512 BF16 or AMX (this machine: 6 ms a frame
        # against 10 in f32, within the detector card's tolerance); "f32" gives torch's numbers.
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = ov.Core().compile_model(str(next(model_dir.glob("*.xml"))), "CPU", config)
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)  # "bf16", "f32"

    def letterbox(self, frame: np.ndarray, square: bool = False) -> np.ndarray:
        """RGB (H, W, 3) -> the padded network input (h, w, 3), as ultralytics' LetterBox: the smallest
        stride-aligned rectangle, or the full imgsz square (`square`, what ultralytics does for a batch
        of mixed shapes)."""
        import cv2

        h0, w0 = frame.shape[:2]
        r = min(self.imgsz / h0, self.imgsz / w0)
        new_w, new_h = max(round(w0 * r), 1), max(round(h0 * r), 1)
        dw, dh = self.imgsz - new_w, self.imgsz - new_h
        if not square:
            dw, dh = dw % self.stride, dh % self.stride
        dw, dh = dw / 2, dh / 2
        img = frame if (w0, h0) == (new_w, new_h) else cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        return cv2.copyMakeBorder(img, round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1),
                                  cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)

    def __call__(self, frames: list[np.ndarray], conf: float | None = None, iou: float | None = None,
                 max_det: int | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(xyxy float32, confidence float32, class id int64) per RGB frame; thresholds default to the settings."""
        if conf is not None or iou is not None or max_det is not None:
            saved = self.conf, self.iou, self.max_det
            self.conf, self.iou, self.max_det = (saved[0] if conf is None else conf, saved[1] if iou is None else iou,
                                                 saved[2] if max_det is None else max_det)
            try:
                return self(frames)
            finally:
                self.conf, self.iou, self.max_det = saved
        if not frames:
            return []
        square = len({f.shape for f in frames}) > 1  # one input shape for the batch, as ultralytics pads it
        batch = np.stack([self.letterbox(f, square) for f in frames]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        pred = self.compiled([batch])[0]  # (B, 4 + classes, anchors)
        return [self._postprocess(p, batch.shape[2:], f.shape[:2]) for p, f in zip(pred, frames)]

    def _postprocess(self, pred: np.ndarray, net_shape: tuple[int, ...], frame_shape: tuple[int, ...]):
        x = pred.T  # (anchors, 4 + classes)
        scores = x[:, 4:]
        cls = scores.argmax(1)
        conf = scores[np.arange(len(x)), cls]
        keep = conf > self.conf
        x, cls, conf = x[keep], cls[keep], conf[keep]
        xy, wh = x[:, :2], x[:, 2:4]
        boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
        kept = nms(boxes + (cls[:, None] * CLASS_OFFSET).astype(np.float32), conf, self.iou)[: self.max_det]
        boxes, conf, cls = boxes[kept], conf[kept], cls[kept]
        # Back to frame pixels (ultralytics' scale_boxes: each side's own gain, then clipping).
        (h1, w1), (h0, w0) = net_shape, frame_shape
        gain = min(h1 / h0, w1 / w0)
        new_h, new_w = max(round(h0 * gain), 1), max(round(w0 * gain), 1)
        pad = np.array([round((w1 - new_w) / 2 - 0.1), round((h1 - new_h) / 2 - 0.1)] * 2, dtype=np.float32)
        scale = np.array([new_w / w0, new_h / h0] * 2, dtype=np.float32)
        boxes = ((boxes - pad) / scale).astype(np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w0)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h0)
        return boxes, conf.astype(np.float32), cls.astype(np.int64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression (torchvision's rule): indices kept, by descending score."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def compiled_ir(path: str | Path, threads: int | None = None) -> Any:
    """An OpenVINO IR (`.xml` beside its `.bin`) compiled for the CPU in float32 (the same numbers as torch)."""
    ov = load_openvino()
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}  # never bf16 on CPUs that have it
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return ov.Core().compile_model(str(path), "CPU", config)


def compiled_torch_module(module: Any, example: Any, key: str, threads: int | None = None) -> Any:
    """A torch module converted to OpenVINO and compiled for the CPU (converted once; the IR is kept in the cache).

    `example` is one input tensor of the shape the module will always see; `key` names the cache entry
    (the weights' SHA-256, the input shape): `<cache>/<key>.xml`. The conversion is written to a
    temporary name and renamed into place, so a crash never leaves a half-written model.
    """
    ov = load_openvino()
    path = openvino_cache_dir() / f"{key}.xml"
    if not path.is_file():
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            model = ov.convert_model(module.eval(), example_input=example)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial.xml")
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(tmp, path)
    return compiled_ir(path, threads)


def run_child(args: list[str]) -> None:
    """Run `python -m models._openvino ARGS` (an export that needs torch) in a child process; raise on failure."""
    try:
        run_torch_child("models._openvino", args)
    except RuntimeError as exc:
        raise RuntimeError(f"OpenVINO export ({args[0]}) failed: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Child-process exports: `export-detector WEIGHTS SHA IMGSZ [--int8 [--calibration DIR]]`,
    `convert-anatomy WEIGHTS`."""
    args = list(sys.argv[1:] if argv is None else argv)
    import torch  # noqa: F401 - loaded first, so every export below runs in this process

    if args[0] == "export-detector":
        calibration = args[args.index("--calibration") + 1] if "--calibration" in args else None
        exported_model_dir(args[1], args[2], int(args[3]), int8="--int8" in args, calibration=calibration, in_process=True)
    elif args[0] == "convert-anatomy":
        from models.anatomy.model import AnatomyModel

        AnatomyModel(args[1], backend="openvino")
    else:
        raise SystemExit(f"unknown export {args[0]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
