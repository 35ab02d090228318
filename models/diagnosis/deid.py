"""DICOM de-identification on import, after the basic profile of DICOM PS3.15 Annex E (Table E.1-1).

The profile's actions are applied at every nesting level: X removes the element, Z keeps it with
an empty value (type-2 elements readers expect), U replaces a UID by a new one derived from the old
(so slices of one series stay linked without carrying the original UID). Private tags are removed
as a whole. This is a reasonable subset of the profile, not a certified implementation; text
burned into the pixels is flagged (BurnedInAnnotation) but not removed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

METHOD = "SurgLens: DICOM PS3.15 E.1-1 basic profile subset"

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
)
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
    burned_in_annotation: bool = False

    def summary(self) -> list[str]:
        """One line per PHI element that held a value, for display."""
        lines = [f"{k} (removed)" for k in self.removed] + [f"{k} (emptied)" for k in self.emptied]
        lines += [f"{k} (replaced)" for k in self.replaced_uids]
        if self.private_tags:
            lines.append(f"{self.private_tags} private tag(s) (removed)")
        return lines


def deidentify(ds: Dataset) -> DeidentificationLog:
    """De-identify `ds` in place (nested sequences and file meta included); return what was done."""
    log = DeidentificationLog()
    removed, emptied, uids = set(), set(), set()
    uid_map: dict[str, str] = {}

    def new_uid(old: str) -> str:
        if old not in uid_map:
            uid_map[old] = generate_uid(entropy_srcs=["surglens-deid", old])
        return uid_map[old]

    def visit(d: Dataset) -> None:
        for elem in list(d):
            if elem.VR == "SQ" and elem.keyword not in REMOVED:
                for item in elem.value:
                    visit(item)
        for kw in REMOVED:
            if kw in d:
                if not d[kw].is_empty:
                    removed.add(kw)
                del d[kw]
        for kw in EMPTIED:
            if kw in d and not d[kw].is_empty:
                emptied.add(kw)
                d[kw].value = None
        for kw in UIDS:
            if kw in d and not d[kw].is_empty:
                uids.add(kw)
                d[kw].value = new_uid(str(d[kw].value))

    log.private_tags = sum(1 for e in _walk(ds) if e.tag.is_private)
    ds.remove_private_tags()
    visit(ds)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    log.burned_in_annotation = str(ds.get("BurnedInAnnotation", "")).upper() == "YES"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    log.removed, log.emptied, log.replaced_uids = sorted(removed), sorted(emptied), sorted(uids)
    return log


def _walk(ds: Dataset):
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)
