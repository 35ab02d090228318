"""The pages' privacy and large-file controls: import by path, the burned-in text mask, saving an export to a folder."""
from __future__ import annotations

import zipfile

from tests.app.conftest import make_video, open_page, texts
from tests.app.test_case_review_page import open_tab


def test_a_file_is_imported_by_its_path_and_a_bad_path_is_explained(library, tmp_path):
    video = make_video(tmp_path / "theatre 3 recording.mp4", seed=1)
    at = open_page("library")
    at.text_input(key="import_path_0").input(str(tmp_path / "missing.mp4")).run()
    at.button(key="import_path_button").click().run()
    assert not at.exception and "no such file" in texts(at) and library.list_cases() == []
    at.text_input(key="import_path_0").input(str(video)).run()
    at.button(key="import_path_button").click().run()
    assert not at.exception
    (case,) = library.list_cases()
    assert "stored and queued" in texts(at) and video.exists()
    assert "theatre 3" not in repr(at)


def test_the_mask_is_set_in_case_details_and_used(library, add_case):
    case_id = add_case()
    at = open_tab(open_page("case_review", case_id=case_id), "Case details")
    area = at.text_area(key=f"mask_text_{case_id}")
    area.input("0, 0, 1.5, 0.1").run()
    assert "mask region" in texts(at) and library.get_case(case_id).mask_regions == ()
    at.text_area(key=f"mask_text_{case_id}").input("0, 0, 0.5, 0.2\n0.8,0.9,1,1").run()
    assert at.image  # the preview, masked
    at.button(key=f"mask_save_{case_id}").click().run()
    assert not at.exception
    assert library.get_case(case_id).mask_regions == ((0.0, 0.0, 0.5, 0.2), (0.8, 0.9, 1.0, 1.0))


def test_an_export_is_saved_into_a_folder(library, add_case, tmp_path):
    case_id = add_case()
    out = tmp_path / "exports"
    out.mkdir()
    at = open_tab(open_page("case_review", case_id=case_id), "Export")
    at.text_input(key=f"case_export_{case_id}_folder").input(str(out))
    at.button(key=f"case_export_{case_id}_save").click().run()
    assert not at.exception
    (saved,) = out.iterdir()
    assert saved.name == f"case-{case_id}.zip" and zipfile.ZipFile(saved).namelist()
    assert f"Saved as {saved}" in texts(at)
