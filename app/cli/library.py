"""`surglens` subcommands of this area (filled in by its owner)."""
from __future__ import annotations


def register(sub) -> None:
    """Add this area's subcommands to the parser."""
