"""DICOM de-identification with dicognito plus the basic profile's removals: what the first subset missed is gone."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from models.diagnosis.deid import METHOD, PHI_KEYWORDS, deidentify
from models.diagnosis.image import read_image, write_deidentified
from tests.conftest import dicom_dataset

CT = get_testdata_file("CT_small.dcm")
SECRETS = ("Jane", "Doe", "MRN-99887766", "OLD-ID-4455", "St. Elsewhere", "Cholecystitis suspected", "1979")


def _with_everything(path: str = CT) -> Dataset:
    """The CT test file with the identifying data the first hand-written subset left in."""
    ds = pydicom.dcmread(path)
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-99887766"
    ds.PatientBirthDate = "19790412"
    ds.OtherPatientIDs = "OLD-ID-4455"
    ds.OtherPatientIDsSequence = Sequence([dicom_dataset(PatientID="OLD-ID-4455", IssuerOfPatientID="St. Elsewhere")])
    # An earlier edit kept the original values: the real name and ID live on in here.
    modified = dicom_dataset(PatientName="Doe^Jane", PatientID="MRN-99887766")
    ds.OriginalAttributesSequence = Sequence([dicom_dataset(
        ModifiedAttributesSequence=Sequence([modified]), AttributeModificationDateTime="20240301101500",
        ModifyingSystem="St. Elsewhere PACS", ReasonForTheAttributeModification="CORRECT")])
    # An overlay plane: a bitmap (e.g. the patient's name written over the image) and its description.
    rows, cols = int(ds.Rows), int(ds.Columns)
    ds.add_new(0x60000010, "US", rows)
    ds.add_new(0x60000011, "US", cols)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60000022, "LO", "Jane Doe 1979")  # OverlayDescription
    ds.add_new(0x60003000, "OW", np.packbits(np.ones(rows * cols, np.uint8), bitorder="little").tobytes())
    # Structured-report text (a finding with the history in free text).
    ds.ContentSequence = Sequence([dicom_dataset(RelationshipType="CONTAINS", ValueType="TEXT",
                                                 TextValue="Cholecystitis suspected in Jane Doe, born 1979")])
    ds.InstitutionName = "St. Elsewhere"
    ds.PerformingPhysicianName = "House^Gregory"
    ds.RequestingPhysician = "Jane^Doe"
    return ds


def _all_text(ds: Dataset) -> str:
    return " ".join(str(e.value) for e in ds.iterall() if e.VR not in ("OB", "OW", "OF", "UN"))


def test_everything_the_first_subset_missed_is_gone():
    ds = _with_everything()
    assert all(secret in _all_text(ds) for secret in SECRETS[:4])
    log = deidentify(ds)
    for keyword in ("OtherPatientIDs", "OtherPatientIDsSequence", "OriginalAttributesSequence", "ContentSequence"):
        assert keyword not in ds, keyword
    assert not any(e.tag.group & 0xFF00 == 0x6000 for e in ds.iterall()), "overlay elements kept"
    assert "TextValue" not in {e.keyword for e in ds.iterall()}
    text = _all_text(ds)
    for secret in SECRETS:
        assert secret not in text, secret
    assert "House" not in text and "Gregory" not in text  # a person name the lists do not name: replaced
    for elem in ds.iterall():
        if elem.keyword in PHI_KEYWORDS:
            assert elem.is_empty, f"{elem.keyword} kept {elem.value!r}"
    assert {"OtherPatientIDs", "OriginalAttributesSequence", "ContentSequence"} <= set(log.removed)
    assert {"PatientName", "PatientID", "PatientBirthDate"} <= set(log.emptied)
    assert log.overlay_elements == 8 and any("overlay" in line for line in log.summary())
    assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod == METHOD


def test_uids_are_replaced_consistently_and_the_pixels_kept():
    first, second = _with_everything(), _with_everything()
    study, series = str(first.StudyInstanceUID), str(first.SeriesInstanceUID)
    pixels = first.pixel_array.copy()
    deidentify(first)
    deidentify(second)
    assert first.StudyInstanceUID != study and first.SeriesInstanceUID != series
    assert first.StudyInstanceUID == second.StudyInstanceUID  # two slices of one study stay linked
    assert first.file_meta.MediaStorageSOPInstanceUID == first.SOPInstanceUID
    assert np.array_equal(first.pixel_array, pixels)


def test_a_stored_copy_of_an_upload_has_none_of_it(tmp_path):
    buffer = io.BytesIO()
    _with_everything().save_as(buffer)
    img = read_image(buffer.getvalue(), "upload.dcm") if _takes_bytes() else read_image(_saved(tmp_path, buffer))
    stored = pydicom.dcmread(write_deidentified(img, tmp_path / "copy.dcm"))
    text = _all_text(stored)
    assert not any(secret in text for secret in SECRETS)
    assert "OriginalAttributesSequence" not in stored and "OtherPatientIDs" not in stored
    assert not any(e.tag.group & 0xFF00 == 0x6000 for e in stored.iterall())
    assert b"Jane" not in (tmp_path / "copy.dcm").read_bytes() and b"MRN-99887766" not in (tmp_path / "copy.dcm").read_bytes()


def _takes_bytes() -> bool:
    import inspect

    return "name" in inspect.signature(read_image).parameters


def _saved(tmp_path, buffer) -> str:
    path = tmp_path / "upload.dcm"
    path.write_bytes(buffer.getvalue())
    return str(path)


@pytest.mark.parametrize("keyword", ["OtherPatientIDs", "OriginalAttributesSequence", "ContentSequence", "TextValue"])
def test_the_new_keywords_are_in_the_checked_list(keyword):
    assert keyword in PHI_KEYWORDS
