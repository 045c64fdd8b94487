"""The one task-data schema: ``text``, ``label``, ``id``, optional ``cot``; taxonomy read from the data."""

from __future__ import annotations

from dataclasses import dataclass, field

from taskdistill.cache import content_hash


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

    def subset(self, examples: list[Example], name: str | None = None) -> "TaskData":
        return TaskData(list(examples), list(self.labels), name or self.name, dict(self.meta))
