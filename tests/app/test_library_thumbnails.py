"""Library cards show a thumbnail of each analysed case: written by the analysis, made once for older cases,
masked, and never a traceback when the video is gone."""
import numpy as np
from PIL import Image

from analysis.results import THUMBNAIL
from analysis.thumbnail import write_thumbnail
from tests.app.conftest import open_page, write_case


def images(at) -> list:
    return list(at.get("image"))


def test_an_older_case_gets_a_thumbnail_on_its_card(library, add_case):
    case_id = add_case()  # the fake analysis writes no thumbnail, like an analysis before they existed
    folder = library.case_dir(case_id)
    assert not (folder / THUMBNAIL).exists()
    at = open_page("library")
    assert len(images(at)) == 1
    assert (folder / THUMBNAIL).is_file()  # made once, kept in the case folder
    assert Image.open(folder / THUMBNAIL).format == "JPEG"


def test_the_analysis_thumbnail_is_shown_as_written(library, add_case):
    def with_thumbnail(video, out, config, progress):
        case = write_case(out, video)
        write_thumbnail(np.full((64, 96, 3), (0, 200, 0), np.uint8), out / THUMBNAIL)
        return case

    case_id = add_case(analyze=with_thumbnail)
    at = open_page("library")
    assert len(images(at)) == 1
    assert (library.case_dir(case_id) / THUMBNAIL).is_file()


def test_a_new_mask_blacks_out_the_thumbnail(library, add_case):
    case_id = add_case()
    open_page("library")
    library.set_mask_regions(case_id, [[0, 0, 1, 0.5]])
    assert not (library.case_dir(case_id) / THUMBNAIL).exists()  # made again, masked
    open_page("library")
    top = np.asarray(Image.open(library.case_dir(case_id) / THUMBNAIL).convert("L"))[:28]
    assert top.max() < 30


def test_no_thumbnail_without_a_video_or_before_the_analysis(library, add_case):
    gone = add_case()
    library.get_case(gone).video_path.unlink()
    add_case(analyse=False)
    at = open_page("library")
    assert not at.exception
    assert images(at) == []  # neither card has a picture, and neither has an error
    assert not at.error
