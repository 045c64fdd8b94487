"""Observation rows → validated arrays (:class:`Points`) the laws are fitted on.

A row is one evaluation of one run on one metric, with the keys of :data:`KEYS` (the study store's
``observations`` contract). ``correct`` may be empty for metrics that are not counts (macro-F1):
those use the pseudo-count value·n (see docs/laws.md, "Likelihood").
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taskdistill.errors import TaskDistillError, did_you_mean
from taskdistill.laws.transforms import retention

KEYS = (
    "metric", "supervision", "method", "schedule", "keep_fraction", "dataset_size", "seed",
    "correct", "n", "value", "chance", "reference", "params", "latency_ms",
)
_NUMERIC = ("keep_fraction", "dataset_size", "seed", "correct", "n", "value", "chance", "reference",
            "params", "latency_ms")
_OPTIONAL = ("correct", "params", "latency_ms", "seed")
# Identifies one run (one trained student) across metrics: the bootstrap resamples these.
RUN_KEYS = ("supervision", "method", "schedule", "keep_fraction", "dataset_size", "seed")


def load_rows(source: str | Path, study: str | None = None) -> list[dict]:
    """Observation rows from a study folder (its store), or a CSV / JSON export of rows."""
    path = Path(source)
    if not path.exists():
        raise TaskDistillError(f"no study folder or observations file at {path}; pass a study folder or "
                               "the CSV/JSON written by `taskdistill study export`")
    if path.is_dir():
        return _rows_from_store(path, study)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    elif suffix in (".json", ".jsonl"):
        text = path.read_text(encoding="utf-8")
        if suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            rows = data.get("observations") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise TaskDistillError(f"{path} holds no list of observation rows; expected a JSON list or "
                                   "{\"observations\": [...]}")
    else:
        raise TaskDistillError(f"cannot read observations from {path.name}: use a .csv, .json or .jsonl "
                               "export, or a study folder")
    return validate_rows(rows, origin=str(path))


def _rows_from_store(path: Path, study: str | None) -> list[dict]:
    from taskdistill.study.store import open_store

    store = open_store(path)
    try:
        rows = store.observations(study)
    finally:
        store.close()
    return validate_rows(rows, origin=str(path))


def is_teacher(row: dict) -> bool:
    """The store's teacher rows (κ = 1, no supervision or method): the reference, not a student."""
    empty = (None, "", "None")
    return row.get("supervision") in empty and row.get("method") in empty and float(row["keep_fraction"]) == 1.0


def _number(value, key: str, i: int, origin: str):
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "nan", "NaN")):
        if key in _OPTIONAL:
            return None
        raise TaskDistillError(f"{origin}: row {i} has no {key!r}; every observation needs one")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TaskDistillError(f"{origin}: row {i} has {key}={value!r}, which is not a number") from None


def validate_rows(rows: list[dict], origin: str = "observations") -> list[dict]:
    """Check every student row against the contract; return normalised copies (numbers as floats).

    Teacher rows are dropped: every student row already carries the teacher's value as ``reference``.
    """
    out = []
    for i, row in enumerate(rows):
        if "keep_fraction" in row and row["keep_fraction"] not in (None, "") and is_teacher(row):
            continue
        missing = [k for k in KEYS if k not in row]
        if missing:
            raise TaskDistillError(f"{origin}: row {i} lacks {', '.join(missing)}; rows need the keys "
                                   f"{', '.join(KEYS)}")
        clean = {k: str(row[k]) for k in ("metric", "supervision", "method", "schedule")}
        clean.update({k: _number(row[k], k, i, origin) for k in _NUMERIC})
        _check(clean, i, origin)
        out.append(clean)
    if not out:
        raise TaskDistillError(f"{origin}: no student observations; run the study first (taskdistill study run)")
    return out


def _check(r: dict, i: int, origin: str) -> None:
    where = f"{origin}: row {i} (metric {r['metric']})"
    if not 0.0 <= r["value"] <= 1.0:
        raise TaskDistillError(f"{where} has value {r['value']:g} outside [0, 1]; give accuracies and "
                               "macro-F1 as fractions, not percentages")
    if not 0.0 < r["keep_fraction"] <= 1.0:
        raise TaskDistillError(f"{where} has keep_fraction {r['keep_fraction']:g} outside (0, 1]")
    if r["dataset_size"] < 0:
        raise TaskDistillError(f"{where} has a negative dataset_size")
    if r["n"] < 1:
        raise TaskDistillError(f"{where} has n={r['n']:g}; n is the number of evaluated items (≥ 1)")
    if r["correct"] is not None and not 0 <= r["correct"] <= r["n"]:
        raise TaskDistillError(f"{where} has correct={r['correct']:g} outside [0, n={r['n']:g}]")
    if not 0.0 <= r["chance"] < 1.0 or not 0.0 <= r["reference"] <= 1.0:
        raise TaskDistillError(f"{where} has chance {r['chance']:g} and reference {r['reference']:g}; "
                               "both must be fractions in [0, 1] (chance < 1)")
    # reference ≤ chance (a teacher at chance) is refused per metric at fit time (fitcheck.check_data)


@dataclass(frozen=True)
class Points:
    """One metric's observations as arrays (one entry per row)."""

    metric: str
    kappa: np.ndarray
    dataset_size: np.ndarray
    correct: np.ndarray  # counts; value·n for non-count metrics (pseudo-counts)
    n: np.ndarray
    chance: np.ndarray
    reference: np.ndarray
    supervision: np.ndarray
    method: np.ndarray
    schedule: np.ndarray
    seed: np.ndarray
    runs: tuple  # run key per row (see RUN_KEYS)

    @property
    def value(self) -> np.ndarray:
        return self.correct / self.n

    @property
    def q(self) -> np.ndarray:
        return retention(self.value, self.chance, self.reference)

    def __len__(self) -> int:
        return len(self.kappa)

    def take(self, index) -> Points:
        """Rows at ``index`` (an int array, repeats allowed, or a boolean mask)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        arrays = {f: getattr(self, f)[index] for f in ("kappa", "dataset_size", "correct", "n", "chance",
                                                        "reference", "supervision", "method", "schedule", "seed")}
        return Points(metric=self.metric, runs=tuple(self.runs[i] for i in index), **arrays)

    def with_correct(self, correct) -> Points:
        """The same rows with other counts (parametric bootstrap)."""
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        fields["correct"] = np.asarray(correct, dtype=np.float64)
        return Points(**fields)


def metrics_of(rows: list[dict]) -> list[str]:
    return sorted({r["metric"] for r in rows})


def points(rows: list[dict], metric: str, **where) -> Points:
    """The rows of one metric (optionally filtered, e.g. ``supervision="cot"``) as :class:`Points`."""
    known = metrics_of(rows)
    if metric not in known:
        raise did_you_mean(metric, known, "metric")
    sel = [r for r in rows if r["metric"] == metric and all(r[k] == v for k, v in where.items())]
    if not sel:
        raise TaskDistillError(f"metric {metric!r} has no observations with {where}")

    def col(key, dtype=np.float64):
        return np.array([r[key] for r in sel], dtype=dtype)

    n = col("n")
    correct = np.array([r["correct"] if r["correct"] is not None else r["value"] * r["n"] for r in sel])
    return Points(
        metric=metric, kappa=col("keep_fraction"), dataset_size=col("dataset_size"), correct=correct, n=n,
        chance=col("chance"), reference=col("reference"), supervision=col("supervision", object),
        method=col("method", object), schedule=col("schedule", object), seed=col("seed"),
        runs=tuple(tuple(r[k] for k in RUN_KEYS) for r in sel),
    )
