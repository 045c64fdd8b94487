"""The one task-data schema: ``text``, ``label``, ``id``, optional ``cot``; taxonomy read from the data.

``TaskData.save`` / ``TaskData.load`` keep it on disk as plain JSON (the study's data artifacts)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from taskdistill.cache import atomic_write_text, content_hash


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    id: str
    cot: str | None = None


@dataclass
class TaskData:
    """A labelled set of examples. ``labels`` is the taxonomy in a fixed (sorted) order."""

    examples: list[Example]
    labels: list[str]
    name: str = "task"
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examples)

    def fingerprint(self) -> str:
        """Content hash of the examples and taxonomy (order-sensitive)."""
        return content_hash([self.labels, [(e.id, e.text, e.label, e.cot) for e in self.examples]])

    def subset(self, examples: list[Example], name: str | None = None) -> TaskData:
        return TaskData(list(examples), list(self.labels), name or self.name, dict(self.meta))

    def save(self, path: str | Path) -> None:
        """Write the data as one JSON file (atomically; no pickle)."""
        rows = [[e.id, e.text, e.label, e.cot] for e in self.examples]
        atomic_write_text(path, json.dumps({"name": self.name, "labels": self.labels, "meta": self.meta,
                                            "examples": rows}))

    @classmethod
    def load(cls, path: str | Path) -> TaskData:
        """Read a file written by :meth:`save`."""
        obj = json.loads(Path(path).read_text())
        examples = [Example(text=t, label=lab, id=i, cot=c) for i, t, lab, c in obj["examples"]]
        return cls(examples, obj["labels"], obj["name"], obj["meta"])
