from PIL import Image, UnidentifiedImageError
import pytest

from models._ultralytics import load_ultralytics


def test_pil_open_is_pil_own_after_loading_ultralytics(tmp_path):
    load_ultralytics()
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    with pytest.raises(UnidentifiedImageError):
        Image.open(bad)


def test_sync_is_off():
    load_ultralytics()
    from ultralytics.utils import SETTINGS

    assert SETTINGS["sync"] is False
