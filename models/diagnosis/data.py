"""Training data for diagnosis models: ImageFolder and image/mask-pair datasets, augmentation, and
the builder that turns ../shared/data into datasets under runs/ (never into the repository).

Every image is read through `read_image(...).to_rgb()`, the same path the app uses, so a DICOM in an
ImageFolder is windowed exactly as it would be on the page.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from models.diagnosis.image import CT_WINDOW_PRESETS, read_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm")
MODALITY_CLASSES = ("laparoscopy", "colonoscopy", "dermoscopy", "chest-xray", "ct")
PRELOAD_SCALE = 1.15  # images are cached a little larger than the input so random crops keep detail


def load_rgb(path: Path, size: int | None = None) -> np.ndarray:
    """An image file as display RGB uint8 (default window), optionally squashed to size x size."""
    import cv2

    rgb = read_image(path).to_rgb()
    return rgb if size is None else cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def scan_image_folder(root: str | Path, classes: Sequence[str] | None = None) -> tuple[list[Path], list[int], list[str]]:
    """Files and label ids of an ImageFolder (root/<class>/<image>); `classes` fixes the label order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset folder at {str(root)!r}")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    names = list(classes) if classes is not None else [p.name for p in folders]
    unknown = [p.name for p in folders if p.name not in names]
    if unknown:
        raise ValueError(f"{str(root)!r} has class folders {unknown} that the model does not know (classes: {names})")
    files, labels = [], []
    for folder in folders:
        for f in image_files(folder):
            files.append(f)
            labels.append(names.index(folder.name))
    if not files:
        raise ValueError(f"{str(root)!r} holds no images in class folders (expected root/<class>/<image>{IMAGE_SUFFIXES})")
    return files, labels, names


def scan_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of root/images/<name>.* and root/masks/<name>.* matched by file stem."""
    root = Path(root)
    img_dir, mask_dir = root / "images", root / "masks"
    if not img_dir.is_dir() or not mask_dir.is_dir():
        raise FileNotFoundError(f"{str(root)!r} must hold images/ and masks/ folders")
    masks = {p.stem: p for p in image_files(mask_dir)}
    pairs = [(p, masks[p.stem]) for p in image_files(img_dir) if p.stem in masks]
    missing = [p.name for p in image_files(img_dir) if p.stem not in masks]
    if missing:
        raise ValueError(f"{str(root)!r}: no mask for {missing}")
    if not pairs:
        raise ValueError(f"{str(root)!r} holds no image/mask pairs")
    return pairs


def read_mask(path: Path, n_classes: int = 2) -> np.ndarray:
    """A mask file as (H, W) int64 class ids; binary masks (0/255, JPEG-noisy) threshold at half range."""
    values = read_image(path).pixels[0]
    if values.ndim == 3:
        values = values.max(axis=2)
    if n_classes == 2:
        return (values >= (0.5 if values.max() <= 1 else 128)).astype(np.int64)
    return np.rint(values).astype(np.int64)


def augmentation(size: int, mean: Sequence[float], std: Sequence[float]) -> Callable:
    """Training augmentation for uint8 (3, H, W) tensors; masks (tv_tensors.Mask) follow the geometry only."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(0.75, 1.33), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomVerticalFlip(),
        v2.RandomApply([v2.RandomRotation(20)], p=0.5),
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2, hue=0.02),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean), list(std)),
    ])


def channel_stats(images: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..1 scale) of RGB uint8 images."""
    stack = np.concatenate([im.reshape(-1, 3) for im in images]).astype(np.float64) / 255.0
    return [round(float(v), 4) for v in stack.mean(0)], [round(max(float(v), 1e-3), 4) for v in stack.std(0)]


@dataclass
class ClassificationData(torch.utils.data.Dataset):
    """Preloaded images with labels; `transform` maps a uint8 (3, H, W) tensor to the network input."""

    images: list[np.ndarray]
    labels: list[int]
    transform: Callable | None = None

    @classmethod
    def from_folder(cls, root: str | Path, input_size: int, classes: Sequence[str] | None = None) -> tuple["ClassificationData", list[str]]:
        files, labels, names = scan_image_folder(root, classes)
        size = round(input_size * PRELOAD_SCALE)
        return cls([load_rgb(f, size) for f in files], labels), names

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.images[i].transpose(2, 0, 1).copy())
        return (self.transform(x) if self.transform else x), self.labels[i]


@dataclass
class SegmentationData(torch.utils.data.Dataset):
    """Preloaded image/mask pairs; `transform` augments both (geometry) and normalises the image."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    transform: Callable | None = None

    @classmethod
    def from_pairs(cls, root: str | Path, input_size: int, n_classes: int = 2) -> "SegmentationData":
        import cv2

        size = round(input_size * PRELOAD_SCALE)
        images, masks = [], []
        for img, msk in scan_pairs(root):
            images.append(load_rgb(img, size))
            masks.append(cv2.resize(read_mask(msk, n_classes).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST))
        return cls(images, masks)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision import tv_tensors

        img = tv_tensors.Image(torch.from_numpy(self.images[i].transpose(2, 0, 1).copy()))
        mask = tv_tensors.Mask(torch.from_numpy(self.masks[i].astype(np.int64)))
        if self.transform:
            img, mask = self.transform(img, mask)
        return img.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()


# --- building datasets from ../shared/data ---------------------------------------------------------

def build_datasets(shared: str | Path, out_dir: str | Path, max_side: int = 512) -> dict:
    """Write the modality ImageFolder (out/modality/{train,eval}/<class>/) and the polyp pairs split
    (out/kvasir/{train,eval}/{images,masks}/) from the shared data, holding out whole sources.

    Returns the manifest (also written to out/manifest.json): every file with its source and split.
    """
    import cv2
    from pydicom.data import get_testdata_file

    shared, out_dir = Path(shared), Path(out_dir)
    if not shared.is_dir():
        raise FileNotFoundError(f"no shared data folder at {str(shared)!r}")
    for stale in ("modality", "kvasir"):
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    manifest: list[dict] = []

    def put(split: str, cls: str, stem: str, rgb: np.ndarray, source: str) -> None:
        h, w = rgb.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        if scale < 1.0:
            rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        path = out_dir / "modality" / split / cls / f"{stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
        manifest.append({"dataset": "modality", "file": str(path.relative_to(out_dir)), "split": split, "class": cls, "source": source})

    def files(split: str, cls: str, paths: Sequence[Path]) -> None:
        for p in paths:
            put(split, cls, p.stem, read_image(p).to_rgb(), str(p.relative_to(shared)) if p.is_relative_to(shared) else p.name)

    def video(split: str, paths: Sequence[Path], n: int) -> None:
        for p in paths:
            for index, rgb in _video_frames(p, n):
                put(split, "laparoscopy", f"{p.stem[:40]}_{index:06d}", rgb, f"{p.relative_to(shared)}#frame={index}")

    def existing(*parts: str, pattern: str = "*") -> list[Path]:
        folder = shared.joinpath(*parts)
        return sorted(p for p in folder.glob(pattern) if p.is_file()) if folder.is_dir() else []

    # Laparoscopy: whole videos are held out (two Cholec80 clips, the three CholecT50 videos, three smoke clips).
    clips = existing("cholec-clips", pattern="*.mp4")
    video("train", clips[:4], 8)
    video("eval", clips[4:], 5)
    m2cai = existing("m2cai16-tool-locations", "JPEGImages", pattern="*.jpg")
    for vid in sorted({p.name[:3] for p in m2cai}):
        frames = [p for p in m2cai if p.name.startswith(vid)]
        files("train", "laparoscopy", [frames[i] for i in np.linspace(0, len(frames) - 1, 3).round().astype(int)])
    smoke = existing("smoke-clips", pattern="*.avi")
    video("train", smoke[:7], 3)
    video("eval", smoke[7:], 2)
    for vid in ("VID68", "VID70", "VID73"):
        frames = existing("cholect50-val", "videos", vid, pattern="*.jpg")
        if frames:
            picked = [frames[i] for i in np.linspace(0, len(frames) - 1, 5).round().astype(int)]
            for p in picked:
                put("eval", "laparoscopy", f"{vid}_{p.stem}", read_image(p).to_rgb(), str(p.relative_to(shared)))
    # Colonoscopy: the Kvasir-SEG images; the last two are held out (the last one also for the segmenter).
    kvasir = existing("medical-images", "kvasir-seg", "images")
    files("train", "colonoscopy", kvasir[:3])
    files("eval", "colonoscopy", kvasir[3:])
    derm = existing("medical-images", "dermoscopy")
    files("train", "dermoscopy", derm[:1])
    files("eval", "dermoscopy", derm[1:])
    chest = shared / "medical-images" / "chest-xray"
    files("train", "chest-xray", [p for p in [chest / "00000001_000.png", chest / "00027426_000.png",
                                              chest / "tbx11k_test_data/imgs/health/h0001.png",
                                              chest / "tbx11k_test_data/imgs/tb/tb0005.png"] if p.exists()])
    files("eval", "chest-xray", [p for p in [chest / "tbx11k_test_data/imgs/tb/tb0007.png", *sorted(chest.glob("*.dcm"))] if p.exists()])
    # CT: an abdominal series and one head slice (pydicom's) for training, each under every window;
    # two other pydicom CT files (another head, a spine crop) for eval.
    ct_train = [(p, str(p.relative_to(shared))) for p in existing("volumes", "ct-abdomen-dicom", pattern="*.dcm")]
    ct_train.append((Path(get_testdata_file("J2K_pixelrep_mismatch.dcm")), "pydicom test data J2K_pixelrep_mismatch.dcm"))
    for p, source in ct_train:
        image = read_image(p)
        for wname, window in {"default": image.window, **CT_WINDOW_PRESETS}.items():
            put("train", "ct", f"{p.stem[-8:]}_{wname.replace(' ', '-')}", image.to_rgb(window=window), f"{source}#window={wname}")
    for name in ("CT_small.dcm", "693_J2KI.dcm"):
        p = Path(get_testdata_file(name))
        put("eval", "ct", p.stem, read_image(p).to_rgb(), f"pydicom test data {name}")

    # Polyp segmentation pairs: the same last Kvasir image is held out.
    for split, imgs in (("train", kvasir[:-1]), ("eval", kvasir[-1:])):
        for img in imgs:
            for sub, src in (("images", img), ("masks", img.parent.parent / "masks" / img.name)):
                dst = out_dir / "kvasir" / split / sub / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(src.read_bytes())
                manifest.append({"dataset": "kvasir", "file": str(dst.relative_to(out_dir)), "split": split,
                                 "class": "polyp-" + sub, "source": str(src.relative_to(shared))})

    counts: dict[str, dict[str, int]] = {}
    for row in manifest:
        counts.setdefault(row["split"], {}).setdefault(row["class"], 0)
        counts[row["split"]][row["class"]] += 1
    missing = [c for c in MODALITY_CLASSES if not counts.get("train", {}).get(c)]
    if missing:
        raise ValueError(f"shared data at {str(shared)!r} gave no training images for {missing}")
    summary = {"shared": str(shared), "counts": counts, "files": manifest}
    (out_dir / "manifest.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _video_frames(path: Path, n: int) -> list[tuple[int, np.ndarray]]:
    """`n` evenly spaced RGB frames of a video file (index, rgb)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if total <= 0:
            raise ValueError(f"cannot read frames of {str(path)!r}")
        out = []
        for index in np.linspace(0, total - 1, n + 2)[1:-1].round().astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, bgr = cap.read()
            if ok:
                out.append((int(index), np.ascontiguousarray(bgr[..., ::-1])))
        return out
    finally:
        cap.release()


def build_modality_dataset(shared: str | Path, out_dir: str | Path, per_class: int = 300, max_side: int = 192, seed: int = 0) -> dict:
    """Write the modality labelled folder out/images/*.png + out/labels.csv (stem,label,split,group,source).

    Up to `per_class` images per modality, each with a `group` (video, lesion, patient, CT volume) so the
    grouped split keeps a whole source on one side. `split` is left empty except for pydicom's CT test
    files, which are always `test` (a scanner and body part the training CT never shows).
    """
    import csv

    import cv2
    from pydicom.data import get_testdata_file

    shared, out_dir = Path(shared), Path(out_dir)
    if not shared.is_dir():
        raise FileNotFoundError(f"no shared data folder at {str(shared)!r}")
    shutil.rmtree(out_dir, ignore_errors=True)
    (out_dir / "images").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    rows: list[dict] = []

    def put(label: str, stem: str, rgb: np.ndarray, group: str, source: str, split: str = "") -> None:
        h, w = rgb.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        if scale < 1.0:
            rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        stem = f"{label}_{stem}"
        cv2.imwrite(str(out_dir / "images" / f"{stem}.png"), np.ascontiguousarray(rgb[..., ::-1]))
        rows.append({"stem": stem, "label": label, "split": split, "group": group, "source": source})

    def sample(paths: Sequence[Path], n: int) -> list[Path]:
        paths = sorted(paths)
        return [paths[i] for i in sorted(rng.choice(len(paths), min(n, len(paths)), replace=False))] if paths else []

    def rel(p: Path) -> str:
        return str(p.relative_to(shared)) if p.is_relative_to(shared) else p.name

    # Laparoscopy, a quarter from each source (group = operation video): CholecT50 validation videos,
    # m2cai16 tool frames, Endoscapes frames, and frames of the Cholec80 and smoke clips.
    quarter = max(1, per_class // 4)
    cholect = [p for v in sorted((shared / "cholect50-val" / "videos").glob("VID*")) for p in v.glob("*.jpg")]
    for p in sample(cholect, quarter):
        put("laparoscopy", f"{p.parent.name}_{p.stem}", read_image(p).to_rgb(), p.parent.name, rel(p))
    for p in sample(list((shared / "m2cai16-tool-locations" / "JPEGImages").glob("*.jpg")), quarter):
        put("laparoscopy", f"m2cai_{p.stem}", read_image(p).to_rgb(), "m2cai_" + p.name[:3], rel(p))
    for p in sample(list((shared / "endoscapes-seg50" / "images").glob("*.jpg")), quarter):
        put("laparoscopy", f"endoscapes_{p.stem}", read_image(p).to_rgb(), "endoscapes_" + p.stem.split("_")[0], rel(p))
    clips = sorted((shared / "cholec-clips").glob("*.mp4")) + sorted((shared / "smoke-clips").glob("*.avi"))
    for p in clips:
        for index, rgb in _video_frames(p, max(1, quarter // max(1, len(clips)))):
            put("laparoscopy", f"{p.stem[:40]}_{index:06d}", rgb, "clip_" + p.stem[:40], f"{rel(p)}#frame={index}")
    medical = shared / "medical-images"
    for label, folder, group_col in (("colonoscopy", "kvasir-seg-train", None), ("dermoscopy", "ham10000", "lesion_id"),
                                     ("chest-xray", "covid-chestxray", "patientid")):
        table = medical / folder / "labels.csv"
        if not table.is_file():
            continue
        with table.open(newline="") as fh:
            listed = list(csv.DictReader(fh))
        images = {p.stem: p for p in (medical / folder / "images").iterdir()}
        for i in sorted(rng.choice(len(listed), min(per_class, len(listed)), replace=False)):
            r = listed[i]
            p = images[r["stem"]]
            put(label, p.stem[:60], read_image(p).to_rgb(), f"{folder}:{r[group_col] if group_col else r['stem']}", rel(p))
    for p in sorted((medical / "chest-xray").rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            put("chest-xray", p.stem[-40:], read_image(p).to_rgb(), f"chest-xray:{p.stem}", rel(p))
    # CT: axial slices of the two TotalSegmentator volumes and the DICOM series, under several windows.
    from models.diagnosis.volume import plane_slice, read_volume

    windows = {"default": None, **CT_WINDOW_PRESETS}
    ct_per_source = max(1, per_class // 3)
    for p in sorted((shared / "volumes").glob("*.nii.gz")):
        if "organs" in p.name:
            continue
        vol = read_volume(p)
        n = vol.n_slices("axial")
        for z in sorted(rng.choice(n, min(ct_per_source, n), replace=False)):
            wname = list(windows)[int(rng.integers(len(windows)))]
            window = windows[wname] or CT_WINDOW_PRESETS["soft tissue"]
            grey = window.apply(plane_slice(vol.voxels, "axial", int(z)))
            put("ct", f"{p.name[:-7]}_z{int(z):04d}_{wname.replace(' ', '-')}", np.repeat(grey[..., None], 3, axis=2),
                p.name, f"{rel(p)}#z={int(z)}&window={wname}")
    for p in sorted((shared / "volumes" / "ct-abdomen-dicom").glob("*.dcm")):
        image = read_image(p)
        for wname, window in windows.items():
            put("ct", f"{p.stem[-6:]}_{wname.replace(' ', '-')}", image.to_rgb(window=window), "ct-abdomen-dicom", f"{rel(p)}#window={wname}")
    for name in ("CT_small.dcm", "J2K_pixelrep_mismatch.dcm", "693_J2KI.dcm"):
        p = Path(get_testdata_file(name))
        image = read_image(p)
        put("ct", f"pydicom_{p.stem}", image.to_rgb(), f"pydicom:{name}", f"pydicom test data {name}", split="test")

    with (out_dir / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["stem", "label", "split", "group", "source"])
        writer.writeheader()
        writer.writerows(rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    missing = [c for c in MODALITY_CLASSES if not counts.get(c)]
    if missing:
        raise ValueError(f"shared data at {str(shared)!r} gave no images for {missing}")
    return {"out": str(out_dir), "counts": counts}

