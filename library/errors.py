"""Typed errors of the case library; each message names the bad value."""
from __future__ import annotations


class LibraryError(ValueError):
    """A request the library cannot carry out (bad value, wrong state)."""


class IngestError(LibraryError):
    """An upload that was rejected; nothing of it was kept."""


class NotFoundError(LibraryError, KeyError):
    """A case, comment, collection or job id that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
