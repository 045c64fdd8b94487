"""Bring-your-own task data: read a local csv / jsonl / json / parquet file into a :class:`Table`.

Reading is strict: the file must exist, be non-empty, be valid UTF-8 without NUL bytes (the error
names the line of the first bad byte) and parse as its format. Turning a table into a ``TaskData`` (column detection,
label mapping, checks) lives in :mod:`taskdistill.data.load`; writing one back is :func:`write_jsonl`.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from taskdistill.cache import atomic_write_text
from taskdistill.data.schema import TaskData
from taskdistill.errors import TaskDistillError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet"}


@dataclass
class Table:
    """Rows of one source as dicts, with the column names and where each row came from (for errors)."""

    name: str
    columns: list[str]
    rows: list[dict]
    where: list[str] = field(default_factory=list)  # e.g. "line 12"; empty → "row i"
    class_names: dict[str, list[str]] = field(default_factory=dict)  # column → names declared by the source

    def locate(self, i: int) -> str:
        return f"{self.name} {self.where[i] if self.where else f'row {i + 1}'}"


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise TaskDistillError(
            f"unknown data format {path.suffix or '(no extension)'!r} for {path}; "
            f"use one of {', '.join(sorted(FORMATS))} or 'synthetic' / 'hf:owner/name'."
        )
    return fmt


def read_text(path: Path) -> str:
    """The file's text, checked to exist, be non-empty and be UTF-8 (a BOM is dropped)."""
    if not path.exists():
        raise TaskDistillError(f"data file not found: {path}; check the path.")
    if path.is_dir():
        raise TaskDistillError(f"{path} is a folder, not a data file; pass a .csv/.jsonl/.json/.parquet file.")
    raw = path.read_bytes()
    if not raw.strip():
        raise TaskDistillError(f"data file is empty: {path}; fill it with labelled rows.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TaskDistillError(
            f"{path} line {line}: byte 0x{raw[exc.start]:02x} is not valid UTF-8; "
            "re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)."
        ) from None
    nul = text.find("\x00")
    if nul >= 0:  # valid UTF-8, but no text file holds one: UTF-16 without a BOM, or binary data
        raise TaskDistillError(
            f"{path} line {text.count(chr(10), 0, nul) + 1}: NUL byte (0x00), which no text file holds (UTF-16? "
            "binary?); re-save the file as UTF-8 text or remove the byte."
        )
    return text


def read_table(path: str | Path) -> Table:
    """Read a local data file into a :class:`Table` (format from the extension)."""
    path = Path(path)
    if not path.exists() and path.suffix.lower() not in FORMATS:
        raise TaskDistillError(
            f"data source {str(path)!r} is not a file; pass a .csv/.jsonl/.json/.parquet path, "
            "'synthetic[:n=…,seed=…,granularity=…]' or 'hf:owner/name'."
        )
    fmt = file_format(path)
    if fmt == "parquet":
        return _read_parquet(path)
    text = read_text(path)
    if fmt in ("csv", "tsv"):
        return _read_csv(path, text, delimiter="," if fmt == "csv" else "\t")
    if fmt == "jsonl":
        return _read_jsonl(path, text)
    return _read_json(path, text)


def _read_csv(path: Path, text: str, delimiter: str) -> Table:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows, where = [], []
    try:
        columns = [c.strip() for c in (reader.fieldnames or [])]
        for row in reader:
            if None in row:
                raise TaskDistillError(
                    f"{path} line {reader.line_num}: more fields than the {len(columns)} header columns; "
                    "quote fields that contain the delimiter."
                )
            if not any((v or "").strip() for v in row.values()):
                continue  # blank line
            rows.append({k.strip(): v for k, v in row.items()})
            where.append(f"line {reader.line_num}")
    except csv.Error as exc:
        raise TaskDistillError(f"{path} line {reader.line_num}: malformed CSV ({exc}); fix the quoting.") from None
    if len(set(columns)) != len(columns):
        raise TaskDistillError(f"{path}: duplicated column names in the header {columns}; rename them.")
    return _checked(Table(path.name, columns, rows, where), path)


def _read_jsonl(path: Path, text: str) -> Table:
    rows, where, columns = [], [], {}
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 may sit inside a string
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskDistillError(f"{path} line {number}: invalid JSON ({exc.msg}); one object per line.") from None
        if not isinstance(row, dict):
            raise TaskDistillError(f"{path} line {number}: expected a JSON object per line, got {type(row).__name__}.")
        rows.append(row)
        where.append(f"line {number}")
        columns.update(dict.fromkeys(row))
    return _checked(Table(path.name, list(columns), rows, where), path)


def _read_json(path: Path, text: str) -> Table:
    """A JSON list of objects, a dict of equal-length column lists, or either under a ``data`` key."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskDistillError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg}).") from None
    if isinstance(obj, dict) and isinstance(obj.get("data"), (list, dict)):
        obj = obj["data"]
    if isinstance(obj, list) and all(isinstance(r, dict) for r in obj):
        columns = list(dict.fromkeys(k for r in obj for k in r))
        return _checked(Table(path.name, columns, obj, [f"record {i + 1}" for i in range(len(obj))]), path)
    if isinstance(obj, dict) and obj and all(isinstance(v, list) for v in obj.values()):
        lengths = {len(v) for v in obj.values()}
        if len(lengths) != 1:
            raise TaskDistillError(f"{path}: column lists have different lengths {sorted(lengths)}; make them equal.")
        rows = [dict(zip(obj, values)) for values in zip(*obj.values())]
        return _checked(Table(path.name, list(obj), rows), path)
    raise TaskDistillError(
        f"{path}: expected a list of records or a dict of column lists; save the data as records or as .jsonl."
    )


def _read_parquet(path: Path) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.exists():
        raise TaskDistillError(f"data file not found: {path}; check the path.")
    if path.stat().st_size == 0:
        raise TaskDistillError(f"data file is empty: {path}; fill it with labelled rows.")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TaskDistillError(f"{path}: not a readable parquet file ({exc}); re-export it.") from None
    return _checked(Table(path.name, table.column_names, table.to_pylist()), path)


def _checked(table: Table, path: Path) -> Table:
    if not table.rows:
        raise TaskDistillError(f"data file has no rows: {path}; add labelled rows under the header.")
    return table


def write_jsonl(path: str | Path, data: TaskData) -> None:
    """Write ``data`` atomically as jsonl (``id``, ``text``, ``label``, and ``cot`` when present)."""
    lines = []
    for ex in data.examples:
        row = {"id": ex.id, "text": ex.text, "label": ex.label}
        if ex.cot is not None:
            row["cot"] = ex.cot
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n")
