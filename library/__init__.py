"""The case library: store (SQLAlchemy, any URL), ingest, job queue and worker, teaching data, exports.

Never imports streamlit; the dashboard and `surglens` both use `Library`.
"""
from library.config import Settings
from library.errors import IngestError, LibraryError, NotFoundError
from library.records import (
    CaseFilter,
    CaseRecord,
    CollectionRecord,
    CommentRecord,
    FilterOptions,
    JobRecord,
    ProgressInfo,
)
from library.store import Library

__all__ = [
    "CaseFilter", "CaseRecord", "CollectionRecord", "CommentRecord", "FilterOptions", "IngestError",
    "JobRecord", "Library", "LibraryError", "NotFoundError", "ProgressInfo", "Settings",
]
