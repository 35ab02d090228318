"""Exactly one OpenCV distribution: opencv-python and -headless both install `cv2` and overwrite each other."""
from importlib import metadata

OPENCV_DISTRIBUTIONS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless")


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_exactly_one_opencv_is_installed_and_it_is_the_declared_one():
    installed = [n for n in OPENCV_DISTRIBUTIONS if _installed(n)]
    assert installed == ["opencv-python"], (
        f"installed OpenCV distributions: {installed}; keep only opencv-python (what ultralytics and trackeval require): "
        "pip uninstall -y opencv-python-headless && pip install --force-reinstall --no-deps opencv-python"
    )
    import cv2

    assert cv2.imdecode is not None


def test_no_dependency_asks_for_another_opencv():
    wanted = {}
    for dist in metadata.distributions():
        for req in dist.requires or []:
            name = req.split(";")[0].split("[")[0]
            for sep in "<>=!~ (":
                name = name.split(sep)[0]
            if name.strip().lower() in OPENCV_DISTRIBUTIONS[1:] and "extra ==" not in req:
                wanted[dist.metadata["Name"]] = req
    assert not wanted, f"these packages require another OpenCV than opencv-python: {wanted}"
