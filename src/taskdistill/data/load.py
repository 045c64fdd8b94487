"""One entry point for task data: ``load_task_data(source, ...)`` → :class:`TaskData`.

``source`` is ``synthetic`` / ``synthetic:n=2000,seed=0,granularity=fine``, ``hf:owner/name[:split]``
(``finheadlinemix`` is short for ``hf:nvidia/FinHeadlineMix``), or a local .csv/.tsv/.jsonl/.json/.parquet
file. Text, label, id and chain-of-thought columns are auto-detected by name unless given. Integer
labels are mapped to names through ``label_names`` (a list, a ``{id: name}`` dict, or a JSON file
holding either); a ``labels.json`` beside the data file is used automatically. The taxonomy
(``TaskData.labels``) is read from the data (or the declared label names), sorted.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from taskdistill.data.files import Table, read_table
from taskdistill.data.schema import Example, TaskData
from taskdistill.errors import TaskDistillError

TEXT_COLUMNS = ("text", "headline", "title", "sentence", "content", "news", "tweet", "body", "input", "document")
LABEL_COLUMNS = ("label", "labels", "category", "class", "event", "event_type", "topic", "target",
                 "category_name", "class_name", "event_class", "intent")
ID_COLUMNS = ("id", "uid", "guid", "example_id", "row_id", "idx")
COT_COLUMNS = ("cot", "rationale", "reasoning", "chain_of_thought", "explanation", "thinking")
SIBLING_LABELS = "labels.json"


def load_task_data(
    source: str | Path,
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    id_col: str | None = None,
    cot_col: str | None = None,
    label_names: list[str] | dict | str | Path | None = None,
    no_id_col: bool = False,
    drop_duplicates: bool = False,
) -> TaskData:
    """Load labelled task data from a synthetic spec, the Hugging Face hub or a local file.

    ``no_id_col``: ignore any id column and number the rows (``<name>-<row>``), e.g. for a file with one
    row per (headline, aspect) whose ids repeat. ``drop_duplicates``: drop exact duplicate rows (same
    text and label, keeping the first); ``meta["dropped_duplicates"]`` says how many.
    """
    spec = str(source).strip()
    if no_id_col and id_col is not None:
        raise TaskDistillError(f"both --id-col {id_col!r} and --no-id-col were given; pass one of them.")
    if spec == "synthetic" or spec.startswith("synthetic:"):
        given = [f for f, v in (("text_col", text_col), ("label_col", label_col), ("id_col", id_col),
                                ("cot_col", cot_col), ("label_names", label_names), ("no_id_col", no_id_col or None),
                                ("drop_duplicates", drop_duplicates or None)) if v is not None]
        if given:
            raise TaskDistillError(f"{', '.join(given)} do not apply to synthetic data; drop them.")
        from taskdistill.data import synthetic

        return synthetic.generate(**parse_synthetic(spec))
    if spec.lower() == "finheadlinemix" or spec.startswith("hf:"):
        from taskdistill.data import finheadlinemix

        table, name = finheadlinemix.load_hub(spec), spec
        sibling = None
    else:
        path = Path(spec).expanduser()
        table, name = read_table(path), path.stem
        sibling = path.parent / SIBLING_LABELS
    return table_to_task_data(table, name=name, source=spec, text_col=text_col, label_col=label_col,
                              id_col=id_col, cot_col=cot_col, label_names=label_names, sibling_labels=sibling,
                              no_id_col=no_id_col, drop_duplicates=drop_duplicates)


def require_classes(data: TaskData, fix: str = "use data with at least two labels") -> TaskData:
    """A classifier needs at least two classes; refuse task data whose taxonomy has fewer."""
    if len(data.labels) < 2:
        only = f" ({data.labels[0]!r})" if data.labels else ""
        raise TaskDistillError(f"task data {data.name!r} has a single class{only}; a classifier needs at least two, "
                               f"so {fix} (or declare the full taxonomy with --label-names).")
    return data


def source_fingerprint(source: str | Path) -> str:
    """Content fingerprint of a data source, without parsing it: a synthetic spec is its own content
    (the generator is deterministic), a local file its bytes (hashed once per file), a hub dataset its id."""
    from taskdistill.cache import cached_file_sha256

    spec = str(source).strip()
    if spec == "synthetic" or spec.startswith("synthetic:"):
        return "synthetic:" + ",".join(f"{k}={v}" for k, v in sorted(parse_synthetic(spec).items()))
    if spec.lower() == "finheadlinemix" or spec.startswith("hf:"):
        return "hub:" + spec
    path = Path(spec).expanduser()
    if not path.is_file():
        raise TaskDistillError(f"task data {spec} does not exist; give a csv/jsonl/parquet file, hf:owner/name or "
                               "synthetic[:n=…]")
    return "file:" + cached_file_sha256(path)[:16]


def parse_synthetic(spec: str) -> dict:
    """``synthetic:n=2000,seed=0,granularity=fine`` → keyword arguments of ``synthetic.generate``."""
    kwargs: dict = {"n": 2000, "seed": 0, "granularity": "fine"}
    _, _, rest = spec.partition(":")
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in kwargs:
            raise TaskDistillError(
                f"bad synthetic option {part!r}; use synthetic:n=2000,seed=0,granularity=fine|coarse."
            )
        if key in ("n", "seed"):
            try:
                kwargs[key] = int(value)
            except ValueError:
                raise TaskDistillError(f"synthetic option {key}={value!r} is not an integer.") from None
        else:
            kwargs[key] = value.strip()
    return kwargs


def table_to_task_data(table: Table, *, name: str, source: str, text_col=None, label_col=None, id_col=None,
                       cot_col=None, label_names=None, sibling_labels: Path | None = None, no_id_col: bool = False,
                       drop_duplicates: bool = False) -> TaskData:
    """Detect columns, map labels, check every row, and build the :class:`TaskData`."""
    text_col = _column(table, text_col, TEXT_COLUMNS, "text", "--text-col", fuzzy=True)
    label_col = _column(table, label_col, LABEL_COLUMNS, "label", "--label-col", fuzzy=True, exclude={text_col})
    if label_col == text_col:
        raise TaskDistillError(f"text and label are both column {text_col!r}; pass different --text-col / --label-col.")
    id_col = None if no_id_col else _column(table, id_col, ID_COLUMNS, "id", "--id-col", required=False,
                                            exclude={text_col, label_col})
    cot_col = _column(table, cot_col, COT_COLUMNS, "cot", "--cot-col", required=False,
                      exclude={text_col, label_col, id_col})

    raw = [_raw_label(row.get(label_col), table, i, label_col) for i, row in enumerate(table.rows)]
    names_from = _describe(label_names)
    if label_names is None and label_col in table.class_names:
        label_names, names_from = table.class_names[label_col], "the source's class names"
    if label_names is None and sibling_labels is not None and sibling_labels.is_file():
        if all(_is_int(r) for r in raw) or isinstance(_load_json(sibling_labels), list):
            label_names, names_from = sibling_labels, str(sibling_labels)
    mapping = read_label_names(label_names) if label_names is not None else None
    if mapping is None and all(_is_int(r) for r in raw):
        raise TaskDistillError(
            f"labels in column {label_col!r} of {table.name} are integer ids ({_span(raw)}) with no names; "
            "pass --label-names FILE.json (a JSON list of names or an {id: name} dict)."
        )
    labels = raw if mapping is None else [_map_label(r, mapping, table, i, names_from) for i, r in enumerate(raw)]

    examples, seen_ids, seen_rows = [], {}, set()
    hint = "" if drop_duplicates else " (or --drop-duplicates when whole rows repeat)"
    for i, (row, label) in enumerate(zip(table.rows, labels)):
        text = _cell(row.get(text_col))
        if not text:
            raise TaskDistillError(f"{table.locate(i)}: empty text in column {text_col!r}; fill or remove the row.")
        if drop_duplicates:
            if (text, label) in seen_rows:
                continue
            seen_rows.add((text, label))
        if id_col is not None:
            ex_id = _cell(row.get(id_col))
            if not ex_id:
                raise TaskDistillError(f"{table.locate(i)}: empty id in column {id_col!r}; give every row an id.")
            if ex_id in seen_ids:
                raise TaskDistillError(
                    f"{table.locate(i)}: id {ex_id!r} duplicates {table.locate(seen_ids[ex_id])}; make ids unique, "
                    f"or pass --no-id-col to number the rows{hint}."
                )
            seen_ids[ex_id] = i
        else:
            ex_id = f"{name}-{i + 1}"
        cot = _cell(row.get(cot_col)) if cot_col is not None else None
        examples.append(Example(text=text, label=label, id=ex_id, cot=cot or None))

    taxonomy = sorted(set(mapping.values()) if mapping is not None else set(labels))
    meta = {"source": source, "text_col": text_col, "label_col": label_col, "id_col": id_col, "cot_col": cot_col}
    if drop_duplicates:
        meta["dropped_duplicates"] = len(table.rows) - len(examples)
    others = [c for c in table.columns if c not in (text_col, label_col)
              and _column(Table("", [c], []), None, LABEL_COLUMNS, "label", "", fuzzy=True, required=False)]
    if others:  # e.g. a fine and a coarse label column: say which others could be chosen with --label-col
        meta["other_label_columns"] = ", ".join(others)
    if mapping is not None:
        meta["label_names_from"] = names_from
    return TaskData(examples, taxonomy, name=name, meta=meta)


def read_label_names(spec: list | tuple | dict | str | Path) -> dict[str, str]:
    """Label names as ``{raw value: name}``: from a list (index → name), a dict, a JSON file or a JSON string."""
    obj = spec
    if isinstance(spec, (str, Path)):
        text = str(spec).strip()
        if text.startswith(("[", "{")):
            obj = _parse_json(text, "--label-names")
        elif Path(text).expanduser().is_file():
            obj = _load_json(Path(text).expanduser())
        elif text.lower().endswith(".json"):
            raise TaskDistillError(f"label names file not found: {text}; check the path.")
        else:
            obj = [part.strip() for part in text.split(",")]
    if isinstance(obj, (list, tuple)):
        mapping = {str(i): _cell(v) for i, v in enumerate(obj)}
    elif isinstance(obj, dict):
        mapping = {_cell(k): _cell(v) for k, v in obj.items()}
    else:
        raise TaskDistillError("label names must be a JSON list of names or an {id: name} dict.")
    if not mapping or not all(mapping.values()):
        raise TaskDistillError("label names must be non-empty strings; fix the label names list.")
    if len(set(mapping.values())) != len(mapping):
        raise TaskDistillError("label names contain duplicates; give every class a distinct name.")
    return mapping


def _column(table: Table, given, candidates, what, flag, *, fuzzy=False, required=True, exclude=frozenset()):
    found = ", ".join(table.columns)
    if given is not None:
        if given not in table.columns:
            raise TaskDistillError(f"{flag} {given!r} is not a column of {table.name}; columns found: {found}.")
        return given
    norm = {c: re.sub(r"[\s\-]+", "_", c.strip().lower()) for c in table.columns if c not in exclude}
    for cand in candidates:  # exact name, in priority order
        for col, n in norm.items():
            if n == cand:
                return col
    if fuzzy:  # a word of the column name, e.g. news_headline, event_category
        for cand in candidates:
            for col, n in norm.items():
                if cand in n.split("_"):
                    return col
    if required:
        raise TaskDistillError(
            f"no {what} column found in {table.name}; columns found: {found}. "
            f"Pass {flag} NAME (and --text-col / --label-col as needed)."
        )
    return None


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _raw_label(value, table: Table, i: int, column: str) -> str:
    if isinstance(value, (list, tuple, dict)):
        raise TaskDistillError(
            f"{table.locate(i)}: column {column!r} holds a {type(value).__name__}, not one label; "
            "pass --label-col with a single-label column."
        )
    label = _cell(value)
    if not label:
        raise TaskDistillError(f"{table.locate(i)}: empty label in column {column!r}; fill or remove the row.")
    return label


def _map_label(raw: str, mapping: dict[str, str], table: Table, i: int, names_from: str) -> str:
    if raw in mapping.values():  # already a name
        return raw
    if raw in mapping:
        return mapping[raw]
    raise TaskDistillError(
        f"{table.locate(i)}: label {raw!r} is not in the label names ({names_from}); "
        "add it there or fix the row."
    )


def _is_int(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", text))


def _span(raw: list[str]) -> str:
    values = sorted({int(r) for r in raw})
    return f"{values[0]}..{values[-1]}" if len(values) > 1 else str(values[0])


def _load_json(path: Path):
    try:
        return _parse_json(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError:
        raise TaskDistillError(f"{path} is not valid UTF-8; re-save it as UTF-8.") from None


def _parse_json(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskDistillError(f"{where}: invalid JSON at line {exc.lineno} ({exc.msg}).") from None


def _describe(label_names) -> str:
    return str(label_names) if isinstance(label_names, (str, Path)) else "the label_names argument"
