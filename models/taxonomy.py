"""The phase and tool taxonomy (assets/taxonomy.json), shared by every part of the code and the UI."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"


@dataclass(frozen=True)
class Label:
    id: int
    name: str
    display: str
    colour: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Taxonomy:
    procedure: str
    phases: tuple[Label, ...]
    tools: tuple[Label, ...]

    @property
    def phase_names(self) -> list[str]:
        return [p.name for p in self.phases]

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self.tools]

    def phase_id(self, name: str) -> int:
        """Phase id of a canonical name or any alias (case-insensitive)."""
        return _lookup(self.phases, name, "phase")

    def tool_id(self, name: str) -> int:
        """Tool id of a canonical name or any alias (case-insensitive)."""
        return _lookup(self.tools, name, "tool")

    def label(self, name: str, kind: str) -> Label | None:
        """The label of a phase or tool name or alias (`kind` "phase" or "tool"); None outside the taxonomy."""
        if kind not in ("phase", "tool"):
            raise ValueError(f"kind must be 'phase' or 'tool', got {kind!r}")
        labels = self.phases if kind == "phase" else self.tools
        try:
            return labels[_lookup(labels, str(name), kind)]
        except KeyError:
            return None

    def canonical(self, name: str, kind: str) -> str:
        """The taxonomy name of a phase or tool name or alias; a name outside it (custom weights) as it is."""
        label = self.label(name, kind)
        return label.name if label else str(name)

    def display(self, name: str, kind: str) -> str:
        """What the UI calls a phase or tool: the taxonomy's display name, else the name itself."""
        label = self.label(name, kind)
        return label.display if label else str(name)


def _lookup(labels: tuple[Label, ...], name: str, kind: str) -> int:
    key = name.strip().lower()
    for label in labels:
        if key == label.name.lower() or key in (a.lower() for a in label.aliases):
            return label.id
    raise KeyError(f"unknown {kind} {name!r}; known: {[label.name for label in labels]}")


@lru_cache(maxsize=None)
def load_taxonomy(path: str | Path = ASSETS_DIR / "taxonomy.json") -> Taxonomy:
    """Read the taxonomy file."""
    raw = json.loads(Path(path).read_text())

    def labels(key: str) -> tuple[Label, ...]:
        return tuple(
            Label(d["id"], d["name"], d["display"], d["colour"], tuple(d.get("aliases", ()))) for d in raw[key]
        )

    return Taxonomy(procedure=raw["procedure"], phases=labels("phases"), tools=labels("tools"))


def label_of(name: str, kind: str) -> Label | None:
    """The shipped taxonomy's label of a phase or tool name or alias; None outside it."""
    return load_taxonomy().label(name, kind)


def canonical_name(name: str, kind: str) -> str:
    """The shipped taxonomy's name of a phase or tool name or alias (unknown names kept as they are)."""
    return load_taxonomy().canonical(name, kind)


def display_name(name: str, kind: str) -> str:
    """What the UI calls a phase or tool (the taxonomy's display name, else the name itself)."""
    return load_taxonomy().display(name, kind)
