"""User-facing errors: one actionable line, exit code 2. Bugs raise anything else."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TaskDistillError(Exception):
    """A problem with the user's input or environment. The message names the problem and the fix."""


def did_you_mean(name: str, choices: Iterable[str], what: str) -> TaskDistillError:
    """Error for an unknown registry name, suggesting the closest known ones."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return TaskDistillError(f"unknown {what} {name!r}.{hint} Known: {', '.join(choices)}.")
