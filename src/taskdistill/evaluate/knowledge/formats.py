"""Readers for general-knowledge benchmarks in their original release formats.

Every reader returns normalised documents, the rows of the lm-eval task built in ``tasks.py``:
multiple choice ``{id, query, choices, gold, stratum, description}``; generation
``{id, query, aliases, stratum, description}``. Prompts reproduce lm-eval's standard task configs
(same text, same choices), so our numbers compare with what lm-evaluation-harness reports.
A malformed row raises ``TaskDistillError`` naming the file and line.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from taskdistill.errors import TaskDistillError

LETTERS = "ABCDEFGHIJKLMNOP"


def _bad(path: Path, line: int, why: str) -> TaskDistillError:
    return TaskDistillError(f"{path}:{line}: malformed row: {why}")


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSONL file."""
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise _bad(path, number, f"not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise _bad(path, number, "expected a JSON object")
            yield number, row


def _text(row: dict, key: str, path: Path, line: int) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _bad(path, line, f"field {key!r} missing or not a non-empty string")
    return value


def _mc(doc_id: str, query: str, choices: list[str], gold: int, stratum: str = "", description: str = "") -> dict:
    return {"id": doc_id, "query": query, "choices": choices, "gold": gold, "stratum": stratum,
            "description": description}


# --- generic multiple-choice JSONL (also the built-in probe) ---------------------------------------

def read_generic(path: Path) -> list[dict]:
    """``{"question", "choices": [..], "answer": index}`` per line; optional ``id`` and ``category``."""
    docs = []
    for line, row in iter_jsonl(path):
        question = _text(row, "question", path, line)
        choices = row.get("choices")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
            raise _bad(path, line, "'choices' must be a list of at least 2 non-empty strings")
        answer = row.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            raise _bad(path, line, f"'answer' must be an integer index into the {len(choices)} choices")
        docs.append(_mc(str(row.get("id", line)), f"Question: {question.strip()}\nAnswer:", choices, answer,
                        stratum=str(row.get("category", "")) or str(answer)))
    return docs


# --- AI2 ARC --------------------------------------------------------------------------------------

def read_arc(path: Path) -> list[dict]:
    """AI2 ARC JSONL: ``{"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}``.

    Labels may be letters or digits; the gold choice is found by matching ``answerKey`` to a label.
    """
    docs = []
    for line, row in iter_jsonl(path):
        question = row.get("question")
        if not isinstance(question, dict) or not isinstance(question.get("choices"), list):
            raise _bad(path, line, "expected 'question' with 'stem' and 'choices'")
        stem = _text(question, "stem", path, line)
        try:
            labels = [str(c["label"]) for c in question["choices"]]
            texts = [str(c["text"]) for c in question["choices"]]
        except (KeyError, TypeError):
            raise _bad(path, line, "every choice needs 'text' and 'label'") from None
        key = str(row.get("answerKey", ""))
        if key not in labels:
            raise _bad(path, line, f"answerKey {key!r} is not one of the choice labels {labels}")
        docs.append(_mc(str(row.get("id", line)), f"Question: {stem}\nAnswer:", texts, labels.index(key),
                        stratum=str(labels.index(key))))
    return docs


# --- PIQA -----------------------------------------------------------------------------------------

def read_piqa(path: Path, labels_path: Path) -> list[dict]:
    """PIQA ``{"id", "goal", "sol1", "sol2"}`` lines plus a labels file with one 0/1 per line."""
    rows = list(iter_jsonl(path))
    labels = [(n, raw.strip()) for n, raw in enumerate(labels_path.read_text(encoding="utf-8").splitlines(), 1)
              if raw.strip()]
    if len(labels) != len(rows):
        raise TaskDistillError(f"{labels_path}: {len(labels)} labels for {len(rows)} rows of {path}; "
                               "the labels file must have one 0/1 line per question")
    docs = []
    for (line, row), (label_line, label) in zip(rows, labels, strict=True):
        if label not in ("0", "1"):
            raise _bad(labels_path, label_line, f"label {label!r} is not 0 or 1")
        goal = _text(row, "goal", path, line)
        sols = [_text(row, "sol1", path, line), _text(row, "sol2", path, line)]
        docs.append(_mc(str(row.get("id", line)), f"Question: {goal}\nAnswer:", sols, int(label), stratum=label))
    return docs


# --- HellaSwag ------------------------------------------------------------------------------------

def _hellaswag_clean(text: str) -> str:
    # the same clean-up as lm-eval's hellaswag task (WikiHow bracket artifacts)
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def read_hellaswag(path: Path) -> list[dict]:
    """HellaSwag JSONL: ``activity_label``, ``ctx_a``, ``ctx_b``, ``endings`` (4), ``label``."""
    docs = []
    for line, row in iter_jsonl(path):
        endings = row.get("endings")
        if not isinstance(endings, list) or len(endings) < 2:
            raise _bad(path, line, "'endings' must be a list of candidate endings")
        try:
            gold = int(row["label"])
            ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
            query = _hellaswag_clean(row["activity_label"] + ": " + ctx)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise _bad(path, line, "needs 'activity_label', 'ctx_a', 'ctx_b' and an integer 'label'") from None
        if not 0 <= gold < len(endings):
            raise _bad(path, line, f"label {gold} out of range for {len(endings)} endings")
        docs.append(_mc(str(row.get("ind", line)), query, [_hellaswag_clean(e) for e in endings], gold,
                        stratum=str(gold)))
    return docs


# --- MMLU (letter choice and cloze) ---------------------------------------------------------------

def mmlu_subject(path: Path) -> str:
    """``astronomy_test.csv`` -> ``astronomy``."""
    return re.sub(r"_(test|val|dev)$", "", path.stem)


def read_mmlu(paths: list[Path], cloze: bool) -> list[dict]:
    """Original MMLU CSVs (no header; question, A, B, C, D, answer letter), one file per subject.

    ``cloze=False`` is lm-eval's ``mmlu`` (choices are the letters after a lettered list);
    ``cloze=True`` is lm-eval's ``mmlu_continuation`` (choices are the answer texts).
    """
    docs = []
    for path in paths:
        subject = mmlu_subject(path)
        name = subject.replace("_", " ")
        with open(path, encoding="utf-8", newline="") as fh:
            for line, row in enumerate(csv.reader(fh), start=1):
                if len(row) != 6 or row[5].strip() not in "ABCD" or not row[5].strip():
                    raise _bad(path, line, "expected 6 columns: question, A, B, C, D, answer letter A-D")
                question, options, gold = row[0].strip(), row[1:5], "ABCD".index(row[5].strip())
                if cloze:
                    description = f"The following are questions (with answers) about {name}.\n\n"
                    docs.append(_mc(f"{subject}/{line}", f"Question: {question}\nAnswer:", options, gold,
                                    stratum=subject, description=description))
                else:
                    description = f"The following are multiple choice questions (with answers) about {name}.\n\n"
                    listed = "".join(f"\n{LETTERS[i]}. {o}" for i, o in enumerate(options))
                    docs.append(_mc(f"{subject}/{line}", f"{question}{listed}\nAnswer:", list("ABCD"), gold,
                                    stratum=subject, description=description))
    return docs


# --- MMLU-Pro -------------------------------------------------------------------------------------

def _read_rows(path: Path) -> Iterator[tuple[int, dict]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(path).to_pylist(), start=1)
    else:
        yield from iter_jsonl(path)


def read_mmlu_pro(paths: list[Path]) -> list[dict]:
    """MMLU-Pro rows (parquet or JSONL): ``question``, ``options`` (up to 10), ``answer`` letter,
    ``answer_index``, ``category``. Scored as letter choice over the item's own options, 0-shot."""
    docs = []
    for path in paths:
        for line, row in _read_rows(path):
            question = _text(row, "question", path, line)
            options = row.get("options")
            if not isinstance(options, list) or not 2 <= len(options) <= 10:
                raise _bad(path, line, "'options' must be a list of 2 to 10 strings")
            gold = row.get("answer_index")
            if gold is None and isinstance(row.get("answer"), str) and row["answer"] in LETTERS[: len(options)]:
                gold = LETTERS.index(row["answer"])
            if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(options):
                raise _bad(path, line, f"'answer_index'/'answer' does not name one of the {len(options)} options")
            category = str(row.get("category") or "other")
            listed = "".join(f"\n{LETTERS[i]}. {str(o).strip()}" for i, o in enumerate(options))
            description = f"The following are multiple choice questions (with answers) about {category}.\n\n"
            docs.append(_mc(str(row.get("question_id", f"{path.name}/{line}")), f"{question.strip()}{listed}\nAnswer:",
                            list(LETTERS[: len(options)]), gold, stratum=category, description=description))
    return docs


# --- TriviaQA -------------------------------------------------------------------------------------

def read_triviaqa(path: Path) -> list[dict]:
    """TriviaQA JSONL, either the original schema (``question``, ``answer: {value, aliases}``) or
    llm-foundry's (``context`` = "Question: …\\nAnswer:", ``answer``, ``aliases``)."""
    docs = []
    for line, row in iter_jsonl(path):
        answer: Any = row.get("answer")
        if "context" in row:
            query = _text(row, "context", path, line)
            aliases = row.get("aliases") or ([answer] if isinstance(answer, str) else None)
        else:
            question = _text(row, "question", path, line).strip()
            query = f"Question: {question}?\nAnswer:"  # lm-eval's triviaqa prompt, verbatim
            aliases = answer.get("aliases") if isinstance(answer, dict) else None
            if isinstance(answer, dict) and answer.get("value") and aliases is not None:
                aliases = list(aliases) + [answer["value"]]
        if not isinstance(aliases, list) or not aliases or not all(isinstance(a, str) for a in aliases):
            raise _bad(path, line, "needs a non-empty list of answer aliases ('aliases' or 'answer.aliases')")
        doc_id = str(row.get("question_id", row.get("id", line)))
        docs.append({"id": doc_id, "query": query, "aliases": sorted(set(aliases)), "stratum": "",
                     "description": ""})
    return docs
