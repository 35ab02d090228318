"""DICOM de-identification on import: the basic profile of DICOM PS3.15 Annex E (Table E.1-1).

Two layers, at every nesting level:
1. dicognito (a maintained implementation of the basic profile): every person name, every UID
   (the same original UID gets the same new one within this process, so the slices of one series
   stay linked), IDs, addresses, institution and equipment, and every date and time (shifted by an
   offset drawn at random per process, so the shift cannot be undone from the code).
2. On top, what the profile removes (X) or empties (Z) and dicognito only replaces or keeps:
   OtherPatientIDs and its sequence, OriginalAttributesSequence (old values kept by an earlier
   edit), structured-report content (ContentSequence, TextValue), annotations' free text,
   overlays (groups 60xx) and curves (50xx), digital signatures, and the `EMPTIED`/`REMOVED`
   lists below. Private tags are removed as a whole.
Text burned into the pixels is flagged (BurnedInAnnotation) but not removed.
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

METHOD = "SurgLens: DICOM PS3.15 E.1-1 basic profile (dicognito + removal of X/Z attributes)"

EMPTIED = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ContentDate",
    "ContentTime", "AccessionNumber", "ReferringPhysicianName", "StudyID", "ContentCreatorName",
    "VerifyingObserverName", "PersonName",
)
REMOVED = (
    "AcquisitionComments", "AcquisitionDate", "AcquisitionDateTime", "AcquisitionTime", "AdditionalPatientHistory",
    "AdmissionID", "AdmittingDiagnosesDescription", "Allergies", "BranchOfService", "ConsultingPhysicianName",
    "CountryOfResidence", "CurrentPatientLocation", "DerivationDescription", "DetectorID", "DeviceSerialNumber",
    "EthnicGroup", "FrameComments", "GantryID", "ImageComments", "InstanceCreationDate", "InstanceCreationTime",
    "InstitutionAddress", "InstitutionCodeSequence", "InstitutionName", "InstitutionalDepartmentName",
    "IssuerOfPatientID", "LastMenstrualDate", "MedicalAlerts", "MedicalRecordLocator", "MilitaryRank",
    "NameOfPhysiciansReadingStudy", "Occupation", "OperatorsName", "OtherPatientIDsSequence", "OtherPatientNames",
    "OverlayDate", "OverlayTime", "PatientAddress", "PatientAge", "PatientBirthName", "PatientBirthTime",
    "PatientComments", "PatientInsurancePlanCodeSequence", "PatientMotherBirthName", "PatientReligiousPreference",
    "PatientSize", "PatientState", "PatientTelephoneNumbers", "PatientWeight", "PerformedProcedureStepDescription",
    "PerformedProcedureStepID", "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
    "PerformingPhysicianName", "PersonAddress", "PersonTelephoneNumbers", "PhysiciansOfRecord", "PregnancyStatus",
    "ProtocolName", "ReasonForStudy", "ReferencedPatientSequence", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "RegionOfResidence", "RequestAttributesSequence", "RequestedProcedureDescription",
    "RequestingPhysician", "RequestingService", "ResponsibleOrganization", "ResponsiblePerson",
    "ScheduledPerformingPhysicianName", "ScheduledProcedureStepDescription", "SeriesDate", "SeriesDescription",
    "SeriesTime", "SmokingStatus", "SpecialNeeds", "StationName", "StudyDescription", "TextComments",
    # missing from the first subset (issue 13): old identifiers, kept originals, report text, signatures
    "OtherPatientIDs", "OriginalAttributesSequence", "ModifiedAttributesSequence", "ContentSequence", "TextValue",
    "UnformattedTextValue", "AcquisitionContextSequence", "DigitalSignaturesSequence", "EncryptedAttributesSequence",
    "MACParametersSequence", "PatientTelecomInformation", "ReferencedPatientPhotoSequence",
    "PatientBirthDateInAlternativeCalendar", "PatientDeathDateInAlternativeCalendar",
    "IssuerOfPatientIDQualifiersSequence", "PersonIdentificationCodeSequence", "CommentsOnThePerformedProcedureStep",
    "VisitComments", "ServiceEpisodeDescription", "ScheduledProcedureStepLocation", "PerformedLocation",
    "ContributionDescription",
)
# Repeating groups removed whole: overlays (6000-60FF, even; text and graphics drawn over the image) and curves.
REMOVED_GROUPS = ((0x6000, 0x60FF), (0x5000, 0x50FF))
UIDS = (
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID", "ReferencedSOPInstanceUID",
    "ReferencedFrameOfReferenceUID", "RelatedFrameOfReferenceUID", "SynchronizationFrameOfReferenceUID",
    "IrradiationEventUID", "DimensionOrganizationUID", "ConcatenationUID", "DeviceUID", "StorageMediaFileSetUID",
)
# Everything a check of the stored copy must find empty or absent.
PHI_KEYWORDS = EMPTIED + REMOVED


@dataclass
class DeidentificationLog:
    """What de-identification did to one dataset (keywords, sorted, each once)."""

    removed: list[str] = field(default_factory=list)
    emptied: list[str] = field(default_factory=list)
    replaced_uids: list[str] = field(default_factory=list)
    private_tags: int = 0
    overlay_elements: int = 0
    burned_in_annotation: bool = False

    def summary(self) -> list[str]:
        """One line per PHI element that held a value, for display."""
        lines = [f"{k} (removed)" for k in self.removed] + [f"{k} (emptied)" for k in self.emptied]
        lines += [f"{k} (replaced)" for k in self.replaced_uids]
        if self.private_tags:
            lines.append(f"{self.private_tags} private tag(s) (removed)")
        if self.overlay_elements:
            lines.append(f"{self.overlay_elements} overlay/curve element(s) (removed)")
        return lines


_ANONYMIZER = None
_ANONYMIZER_LOCK = threading.Lock()


def _anonymizer():
    """One dicognito Anonymizer per process, with a random seed: consistent UIDs within it, secret date shift."""
    global _ANONYMIZER
    if _ANONYMIZER is None:
        from dicognito.anonymizer import Anonymizer

        _ANONYMIZER = Anonymizer(seed=secrets.token_hex(16))
    return _ANONYMIZER


def deidentify(ds: Dataset) -> DeidentificationLog:
    """De-identify `ds` in place (nested sequences and file meta included); return what was done."""
    log = DeidentificationLog()
    removed: set[str] = set()
    held = {e.keyword for e in _walk(ds) if e.keyword and not e.is_empty}
    uids_before = {e.keyword: str(e.value) for e in _walk(ds) if e.VR == "UI" and e.keyword in UIDS and not e.is_empty}

    def strip(d: Dataset) -> None:
        for elem in list(d):
            if _in_removed_group(elem.tag.group):
                del d[elem.tag]
                log.overlay_elements += 1
        for kw in REMOVED:
            if kw in d:
                if not d[kw].is_empty:
                    removed.add(kw)
                del d[kw]
        for elem in list(d):
            if elem.VR == "SQ":
                for item in elem.value:
                    strip(item)

    log.private_tags = sum(1 for e in _walk(ds) if e.tag.is_private)
    ds.remove_private_tags()
    strip(ds)  # first: what goes is never handed to the anonymizer
    if not hasattr(ds, "file_meta"):
        from pydicom.dataset import FileMetaDataset

        ds.file_meta = FileMetaDataset()  # dicognito walks it; an empty one for datasets built in memory
    for elem in _walk(ds):  # dicognito expects text, not None, in an empty text element
        if elem.value is None and elem.VR in _TEXT_VRS:
            elem.value = ""
    with _ANONYMIZER_LOCK:  # its UID and name maps are shared by the pages' threads
        _anonymizer().anonymize(ds)
    for d in _datasets(ds):  # dicognito replaced these (a fake name, a shifted date): the profile empties them
        for kw in EMPTIED:
            if kw in d and not d[kw].is_empty:
                d[kw].value = None
    meta = ds.file_meta
    if "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    log.burned_in_annotation = str(ds.get("BurnedInAnnotation", "")).upper() == "YES"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    uids_after = {e.keyword: str(e.value) for e in _walk(ds) if e.VR == "UI" and e.keyword in UIDS and not e.is_empty}
    log.removed = sorted(removed)
    log.emptied = sorted(kw for kw in EMPTIED if kw in held)
    log.replaced_uids = sorted(kw for kw, old in uids_before.items() if uids_after.get(kw) != old)
    return log


_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}


def _in_removed_group(group: int) -> bool:
    return group % 2 == 0 and any(lo <= group <= hi for lo, hi in REMOVED_GROUPS)


def _datasets(ds: Dataset):
    yield ds
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _datasets(item)


def _walk(ds: Dataset):
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)
