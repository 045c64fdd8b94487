"""Observation rows → validated arrays (:class:`Points`) the laws are fitted on.

A row is one evaluation of one run on one metric, with the keys of :data:`KEYS` (the study store's
``observations`` contract) and optionally those of :data:`OPTIONAL_KEYS` (absent or None → the default
in docs/laws.md, "Observation rows"). ``correct`` may be empty for metrics that are not counts
(macro-F1): those use an effective-n quasi-binomial built from the row's ``stderr``, or, without
one, the pseudo-count value·n (see docs/laws.md, "Likelihood").
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
# Optional keys: the branch (independent unit), effective D, the evaluation's standard error, the
# teacher's own count / items / standard error, the stage (recovered | pruned) and the scoring view.
OPTIONAL_KEYS = ("branch", "effective_dataset_size", "stderr", "reference_correct", "reference_n",
                 "reference_stderr", "stage", "view")
_OPTIONAL_NUMERIC = ("effective_dataset_size", "stderr", "reference_correct", "reference_n", "reference_stderr")
STAGES = ("recovered", "pruned")
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
        clean.update(_optional(row, i, origin))
        _check(clean, i, origin)
        out.append(clean)
    if not out:
        raise TaskDistillError(f"{origin}: no student observations; run the study first (taskdistill study run)")
    return out


def _optional(row: dict, i: int, origin: str) -> dict:
    """The optional keys a row carries (absent, None or empty ones are left out: they take defaults)."""
    out = {}
    for key in OPTIONAL_KEYS:
        value = row.get(key)
        if value is None or (isinstance(value, str) and value.strip() in ("", "None", "nan", "NaN")):
            continue
        if key in _OPTIONAL_NUMERIC:
            value = _number(value, key, i, origin)
            if value < 0:
                raise TaskDistillError(f"{origin}: row {i} has a negative {key} ({value:g})")
        else:
            value = str(value)
        if key == "stage" and value not in STAGES:
            raise TaskDistillError(f"{origin}: row {i} has stage {value!r}; use one of {', '.join(STAGES)}")
        if key == "reference_n" and value < 1:
            raise TaskDistillError(f"{origin}: row {i} has reference_n={value:g}; it counts the teacher's items (≥ 1)")
        out[key] = value
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
    """One metric's observations as arrays (one entry per row).

    ``dataset_size`` is the nominal D (slicing and grouping), ``D`` the effective D the student was
    trained on (what the laws read; defaults to the nominal). ``correct`` / ``n`` are what the
    likelihood sees: counts, or for metrics without counts an effective-n quasi-binomial
    (n = v(1 − v)/stderr², ``likelihood`` "stderr") or the pseudo-count value·n ("pseudo").
    ``ref_n`` / ``ref_se``: the teacher's items / standard error for this metric (NaN: exact).
    """

    metric: str
    kappa: np.ndarray
    dataset_size: np.ndarray
    correct: np.ndarray
    n: np.ndarray
    chance: np.ndarray
    reference: np.ndarray
    supervision: np.ndarray
    method: np.ndarray
    schedule: np.ndarray
    seed: np.ndarray
    runs: tuple  # run key per row (see RUN_KEYS)
    D: np.ndarray | None = None
    branch: tuple | None = None  # independent unit per row (an iterative chain); default: the run key
    stderr: np.ndarray | None = None
    ref_n: np.ndarray | None = None
    ref_se: np.ndarray | None = None
    stage: np.ndarray | None = None
    likelihood: np.ndarray | None = None

    def __post_init__(self):
        size = len(self.kappa)
        nan = np.full(size, np.nan)
        defaults = {"D": self.dataset_size, "branch": self.runs, "stderr": nan, "ref_n": nan, "ref_se": nan,
                    "stage": np.where(np.asarray(self.dataset_size) == 0, "pruned", "recovered").astype(object),
                    "likelihood": np.full(size, "counts", dtype=object)}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)

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
        index = index.astype(int)
        fields = {f: getattr(self, f)[index] for f in _ARRAYS}
        fields.update({f: tuple(getattr(self, f)[i] for i in index) for f in ("runs", "branch")})
        return Points(metric=self.metric, **fields)

    def replace(self, **changes) -> Points:
        """The same rows with some fields replaced (arrays of the same length)."""
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        fields.update({k: np.asarray(v, dtype=np.float64) if k in ("correct", "reference") else v
                       for k, v in changes.items()})
        return Points(**fields)

    def with_correct(self, correct) -> Points:
        """The same rows with other counts (parametric bootstrap)."""
        return self.replace(correct=correct)

    @property
    def reference_error(self) -> tuple[str, float] | None:
        """How the teacher's value was measured: ("stderr", se) or ("binomial", items); None: exact."""
        se, items = self.ref_se[np.isfinite(self.ref_se)], self.ref_n[np.isfinite(self.ref_n)]
        if se.size:
            return "stderr", float(np.median(se))
        if items.size:
            return "binomial", float(np.median(items))
        return None


_ARRAYS = ("kappa", "dataset_size", "correct", "n", "chance", "reference", "supervision", "method", "schedule",
           "seed", "D", "stderr", "ref_n", "ref_se", "stage", "likelihood")


def stage_of(row: dict) -> str:
    """A row's stage: its ``stage``, else "pruned" at nominal D = 0 and "recovered" otherwise."""
    return row.get("stage") or ("pruned" if row["dataset_size"] == 0 else "recovered")


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

    def col(key, dtype=np.float64, default=None):
        return np.array([r[key] if r.get(key) is not None else (r[default] if default else np.nan) for r in sel],
                        dtype=dtype)

    correct, n, kind = (np.array(x) for x in zip(*(_likelihood_counts(r) for r in sel)))
    runs = tuple(tuple(r[k] for k in RUN_KEYS) for r in sel)
    nominal = col("dataset_size")
    stage = np.array([stage_of(r) for r in sel], object)
    return Points(
        metric=metric, kappa=col("keep_fraction"), dataset_size=nominal, correct=correct.astype(np.float64),
        n=n.astype(np.float64), chance=col("chance"), reference=col("reference"),
        supervision=col("supervision", object), method=col("method", object), schedule=col("schedule", object),
        seed=col("seed"), runs=runs, D=col("effective_dataset_size", default="dataset_size"),
        branch=tuple(r["branch"] if r.get("branch") is not None else ("run",) + k for r, k in zip(sel, runs)),
        stderr=col("stderr"), ref_n=col("reference_n"), ref_se=col("reference_stderr"), stage=stage,
        likelihood=kind.astype(object),
    )


N_EFF_MAX = 1e7  # cap on the effective n of a metric whose stderr is ~0


def _likelihood_counts(r: dict) -> tuple[float, float, str]:
    """(correct, n, kind) the likelihood sees for one row (docs/laws.md, "Likelihood").

    counts: the row's own. Without counts but with ``stderr`` (macro-F1: an item-bootstrap standard
    error) an effective-n quasi-binomial: n_eff = v(1 − v)/se², correct = v·n_eff, so the binomial
    variance at the observed value equals the measured se². Without either: the pseudo-count v·n.
    """
    if r["correct"] is not None:
        return r["correct"], r["n"], "counts"
    se = r.get("stderr")
    if se is not None and se > 0:
        v = min(max(r["value"], 0.5 / r["n"]), 1 - 0.5 / r["n"])
        n_eff = float(np.clip(v * (1 - v) / se**2, 1.0, N_EFF_MAX))
        return r["value"] * n_eff, n_eff, "stderr"
    return r["value"] * r["n"], r["n"], "pseudo"
