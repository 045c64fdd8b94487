"""Readers for the original release formats, on small files built in each benchmark's schema."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from taskdistill.errors import TaskDistillError
from taskdistill.evaluate.knowledge import formats, tasks


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_arc_letter_and_digit_labels_and_odd_choice_counts(tmp_path):
    rows = [
        {"id": "a", "question": {"stem": "Which is a metal?", "choices": [
            {"text": "Iron", "label": "A"}, {"text": "Wood", "label": "B"}, {"text": "Glass", "label": "C"},
            {"text": "Paper", "label": "D"}]}, "answerKey": "A"},
        {"id": "b", "question": {"stem": "Pick three.", "choices": [
            {"text": "one", "label": "1"}, {"text": "two", "label": "2"}, {"text": "three", "label": "3"}]},
         "answerKey": "3"},
        {"id": "c", "question": {"stem": "Five options.", "choices": [
            {"text": t, "label": l} for t, l in zip("vwxyz", "ABCDE", strict=True)]}, "answerKey": "E"},
    ]
    docs = formats.read_arc(_jsonl(tmp_path / "arc.jsonl", rows))
    assert [d["gold"] for d in docs] == [0, 2, 4]
    assert [len(d["choices"]) for d in docs] == [4, 3, 5]
    assert docs[0]["query"] == "Question: Which is a metal?\nAnswer:"  # lm-eval's arc_easy prompt
    assert docs[1]["choices"][docs[1]["gold"]] == "three"


def test_arc_answer_key_not_among_labels_names_file_and_line(tmp_path):
    rows = [{"id": "a", "question": {"stem": "q", "choices": [{"text": "x", "label": "A"}, {"text": "y", "label": "B"}]},
             "answerKey": "A"},
            {"id": "b", "question": {"stem": "q", "choices": [{"text": "x", "label": "A"}, {"text": "y", "label": "B"}]},
             "answerKey": "C"}]
    path = _jsonl(tmp_path / "ARC-Easy-Test.jsonl", rows)
    with pytest.raises(TaskDistillError, match=r"ARC-Easy-Test.jsonl:2: malformed row: answerKey 'C'"):
        formats.read_arc(path)


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"question": "a", "choices": ["x", "y"], "answer": 0}\n\n{oops\n')
    with pytest.raises(TaskDistillError, match=r"x.jsonl:3: malformed row: not valid JSON"):
        formats.read_generic(path)


def test_piqa_with_labels_file(tmp_path):
    rows = [{"id": "p1", "goal": "Open a jar", "sol1": "Twist the lid", "sol2": "Eat the lid"},
            {"id": "p2", "goal": "Dry hair", "sol1": "Use water", "sol2": "Use a towel"}]
    path = _jsonl(tmp_path / "dev.jsonl", rows)
    labels = tmp_path / "dev-labels.lst"
    labels.write_text("0\n1\n")
    docs = formats.read_piqa(path, labels)
    assert [d["gold"] for d in docs] == [0, 1]
    assert docs[1]["query"] == "Question: Dry hair\nAnswer:" and docs[1]["choices"] == ["Use water", "Use a towel"]
    labels.write_text("0\n")
    with pytest.raises(TaskDistillError, match="1 labels for 2 rows"):
        formats.read_piqa(path, labels)
    labels.write_text("0\n2\n")
    with pytest.raises(TaskDistillError, match=r"dev-labels.lst:2: malformed row: label '2'"):
        formats.read_piqa(path, labels)


def test_hellaswag_prompt_follows_lm_eval_preprocessing(tmp_path):
    row = {"ind": 7, "activity_label": "Baking cookies", "ctx_a": "A woman mixes dough [title] in a bowl.",
           "ctx_b": "she", "label": 2, "endings": ["eats it.", "runs  away.", "bakes [step] the cookies.", "sings."]}
    (doc,) = formats.read_hellaswag(_jsonl(tmp_path / "h.jsonl", [row]))
    assert doc["query"] == "Baking cookies: A woman mixes dough. in a bowl. She"
    assert doc["choices"] == ["eats it.", "runs away.", "bakes the cookies.", "sings."]
    assert doc["gold"] == 2 and doc["id"] == "7"


def test_mmlu_letter_and_cloze_formulations(tmp_path):
    path = tmp_path / "high_school_physics_test.csv"
    path.write_text('"What is 1+1, ""roughly""?",1,2,3,4,B\nWhich is a fruit?,Apple,Stone,Iron,Glass,A\n')
    letter = formats.read_mmlu([path], cloze=False)
    cloze = formats.read_mmlu([path], cloze=True)
    assert letter[0]["query"] == 'What is 1+1, "roughly"?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:'
    assert letter[0]["choices"] == ["A", "B", "C", "D"] and letter[0]["gold"] == 1
    assert letter[0]["description"] == "The following are multiple choice questions (with answers) about high school physics.\n\n"
    assert cloze[1]["query"] == "Question: Which is a fruit?\nAnswer:" and cloze[1]["choices"][0] == "Apple"
    assert cloze[1]["description"] == "The following are questions (with answers) about high school physics.\n\n"
    assert {d["stratum"] for d in letter} == {"high_school_physics"}
    path.write_text("Question,A,B,C,D,E\n")
    with pytest.raises(TaskDistillError, match=r"high_school_physics_test.csv:1: malformed row"):
        formats.read_mmlu([path], cloze=False)


MMLU_PRO_ROWS = [
    {"question_id": 70, "question": "Which is prime?", "options": ["4", "6", "7", "8", "9", "10", "12", "14", "15", "16"],
     "answer": "C", "answer_index": 2, "cot_content": "", "category": "math", "src": "ori_mmlu-x"},
    {"question_id": 71, "question": "Pick the gas.", "options": ["Iron", "Helium", "Salt"],
     "answer": "B", "answer_index": 1, "cot_content": "", "category": "chemistry", "src": "stemez"},
]


def test_mmlu_pro_parquet_and_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pylist(MMLU_PRO_ROWS), parquet)
    jsonl = _jsonl(tmp_path / "test.jsonl", [{k: v for k, v in r.items() if k != "answer_index"} for r in MMLU_PRO_ROWS])
    for docs in (formats.read_mmlu_pro([parquet]), formats.read_mmlu_pro([jsonl])):
        assert [d["gold"] for d in docs] == [2, 1]
        assert docs[0]["choices"] == list("ABCDEFGHIJ") and docs[1]["choices"] == ["A", "B", "C"]
        assert docs[0]["query"].endswith("\nI. 15\nJ. 16\nAnswer:")
        assert [d["stratum"] for d in docs] == ["math", "chemistry"]
    bad = _jsonl(tmp_path / "bad.jsonl", [dict(MMLU_PRO_ROWS[1], answer_index=5)])
    with pytest.raises(TaskDistillError, match=r"bad.jsonl:1: malformed row"):
        formats.read_mmlu_pro([bad])


def test_triviaqa_original_and_llm_foundry_schemas(tmp_path):
    original = _jsonl(tmp_path / "orig.jsonl", [
        {"question_id": "tc_1", "question": "Which planet is the Red Planet",
         "answer": {"value": "Mars", "aliases": ["Mars", "Planet Mars"], "normalized_value": "mars"}}])
    foundry = _jsonl(tmp_path / "sub.jsonl", [
        {"context": "Question: Who wrote Hamlet?\nAnswer:", "answer": "Shakespeare",
         "aliases": ["Shakespeare", "William Shakespeare"]}])
    (a,) = formats.read_triviaqa(original)
    (b,) = formats.read_triviaqa(foundry)
    assert a["query"] == "Question: Which planet is the Red Planet?\nAnswer:" and a["aliases"] == ["Mars", "Planet Mars"]
    assert b["query"] == "Question: Who wrote Hamlet?\nAnswer:" and "William Shakespeare" in b["aliases"]
    bad = _jsonl(tmp_path / "bad.jsonl", [{"question": "q", "answer": {"value": "x"}}])
    with pytest.raises(TaskDistillError, match=r"bad.jsonl:1: malformed row: needs a non-empty list"):
        formats.read_triviaqa(bad)


def test_generic_format_checks_answer_index(tmp_path):
    good = _jsonl(tmp_path / "g.jsonl", [{"question": "2+2?", "choices": ["3", "4"], "answer": 1}])
    (doc,) = formats.read_generic(good)
    assert doc["query"] == "Question: 2+2?\nAnswer:" and doc["gold"] == 1
    for row, why in [({"question": "q", "choices": ["a", "b"], "answer": 2}, "'answer' must be an integer"),
                     ({"question": "q", "choices": ["a"], "answer": 0}, "at least 2"),
                     ({"choices": ["a", "b"], "answer": 0}, "'question' missing")]:
        with pytest.raises(TaskDistillError, match=why):
            formats.read_generic(_jsonl(tmp_path / "b.jsonl", [row]))


def test_builtin_probe_is_well_formed():
    path = tasks.probe_path()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    docs = formats.read_generic(path)
    assert len(docs) == len(rows) >= 300
    assert all(len(r["choices"]) == 4 and len(set(r["choices"])) == 4 for r in rows)
    assert len({r["question"] + r["choices"][r["answer"]] for r in rows}) == len(rows)
    assert set(Counter(r["category"] for r in rows)) == {
        "geography", "science", "history", "arithmetic", "language", "everyday_physics"}
    assert min(Counter(r["category"] for r in rows).values()) >= 50
    positions = Counter(r["answer"] for r in rows)
    assert max(positions.values()) - min(positions.values()) <= 1  # answer position carries no signal
    assert tasks.PROBE_CHANCE == 0.25 == sum(1 / len(d["choices"]) for d in docs) / len(docs)
    arithmetic = [r for r in rows if r["category"] == "arithmetic" and r["question"].startswith("What is ")]
    for r in arithmetic:  # the computed questions are right
        words = r["question"][len("What is "):-1].split(" ")
        if len(words) == 3 and words[1] in ("plus", "minus", "times"):
            x, op, y = int(words[0]), words[1], int(words[2])
            assert int(r["choices"][r["answer"]]) == {"plus": x + y, "minus": x - y, "times": x * y}[op]
