"""The one place ultralytics is imported: fully offline, no usage events, no auto-installs."""
from __future__ import annotations

import os
from types import ModuleType


def load_ultralytics() -> ModuleType:
    """Import ultralytics with network features off and return the module.

    YOLO_OFFLINE must be set before the first import (ultralytics checks connectivity at import);
    `sync` off stops usage events. Auto-update is off so a missing package fails instead of pip-installing.
    """
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    import ultralytics
    from PIL import Image
    from ultralytics.utils import SETTINGS, patches

    Image.open = patches._image_open

    if SETTINGS.get("sync", False):
        SETTINGS.update({"sync": False})
    return ultralytics
