"""The one place ultralytics is imported: offline by construction, no usage events, no auto-installs.

- `YOLO_OFFLINE=True` before the first import: every ultralytics version reads "True" as true (8.3
  compared the lower-cased value with "true"; later ones accept 1/true/yes), so the connectivity
  probe at import never runs.
- `YOLO_CONFIG_DIR` points inside SurgLens' data folder (`ultralytics_config_dir`), so its
  settings.json (and anything it caches) never lands in the user's home.
- Settings: `sync` (usage events) and every logger integration (clearml, comet, dvc, mlflow,
  raytune, tensorboard, wandb, ...) off; no platform API key, so nothing is uploaded.
- Fonts: ultralytics fetches Arial.ttf when it checks a dataset or draws labels with PIL; here it
  gets a font that is already on disk (matplotlib's DejaVu Sans) instead.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

# Same default as library.config.Settings.data_dir (models/ cannot import library/).
DATA_DIR_ENV, DEFAULT_DATA_DIR = "SURGLENS_DATA_DIR", "data"
# ultralytics SETTINGS keys that switch on something that talks to a server; all are set False.
NETWORK_SETTINGS = ("sync", "clearml", "comet", "dvc", "hub", "mlflow", "neptune", "raytune", "tensorboard", "wandb")


CACHE_DIR_ENV = "SURGLENS_CACHE_DIR"


def cache_dir() -> Path:
    """Where derived model files live (OpenVINO exports, plain weight copies): SURGLENS_CACHE_DIR, else `<data folder>/cache`."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured).expanduser().resolve() if configured else ultralytics_config_dir().parent / "cache"


def ultralytics_config_dir() -> Path:
    """Where ultralytics keeps its settings: `<SurgLens data folder>/ultralytics`."""
    data_dir = Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).expanduser().resolve()
    return data_dir / "ultralytics"


def load_ultralytics() -> ModuleType:
    """Import ultralytics with every network feature off and return the module.

    The environment must be set before the first import (ultralytics reads it at import time);
    when ultralytics was already imported elsewhere, its settings are still switched off here.
    """
    os.environ["YOLO_OFFLINE"] = "True"
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    os.environ.pop("ULTRALYTICS_API_KEY", None)  # the platform callbacks upload training runs when a key is set
    if "ultralytics" not in sys.modules:
        config_dir = ultralytics_config_dir()
        config_dir.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    import ultralytics
    from PIL import Image
    from ultralytics.utils import SETTINGS, patches

    Image.open = patches._image_open
    off = {key: False for key in NETWORK_SETTINGS if key in SETTINGS and SETTINGS[key] is not False}
    if SETTINGS.get("api_key"):
        off["api_key"] = ""
    if off:
        SETTINGS.update(off)
    _local_fonts()
    return ultralytics


def _local_font(font: str = "Arial.ttf") -> Path:
    """A font file already on disk, for ultralytics' `check_font` (which would download Arial)."""
    from matplotlib import font_manager

    return Path(font_manager.findfont("DejaVu Sans", fallback_to_default=True))


def _local_fonts() -> None:
    """Replace `check_font` wherever ultralytics imported it by name."""
    import importlib

    for name in ("ultralytics.utils.checks", "ultralytics.data.utils", "ultralytics.utils.plotting"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "check_font"):
            module.check_font = _local_font
