"""Benchmarks are records: a new one is defined in one place and runs through the whole stage;
MMLU-Pro without a benchmark folder runs the letter-choice formulation over the hub dataset."""

from __future__ import annotations

import pytest

from taskdistill.evaluate.knowledge import evaluate_knowledge, tasks
from taskdistill.evaluate.knowledge.formats import _mc
from taskdistill.study.spec import parse_spec


def read_pipes(paths):
    """A toy release format: ``question|right answer|wrong answer|wrong answer`` per line."""
    docs = []
    for line, raw in enumerate(paths[0].read_text().splitlines(), start=1):
        question, *choices = raw.split("|")
        docs.append(_mc(str(line), f"Q: {question}\nA:", choices, 0, stratum="all"))
    return docs


@pytest.fixture
def toy_benchmark(tmp_path):
    path = tmp_path / "facts.psv"
    path.write_text("Capital of France?|Paris|Rome|Oslo\nTwo plus two?|four|five|six\nSea water is?|salty|sweet|dry\n")
    bench = tasks.register(tasks.Benchmark("pipes", "mc", read_pipes, "cloze after 'Q: …\\nA:'",
                                           files=lambda: (path,), chance=0.3))
    yield bench
    del tasks.BENCHMARKS["pipes"]


def test_a_new_benchmark_is_one_record(toy_benchmark, tiny):
    make_model, make_tok = tiny
    report = evaluate_knowledge(make_model("llama", seed=3), make_tok(), ["pipes", "probe"], limit=3)
    result = report["pipes"]
    assert result.n == 3 and result.chance == 0.3 and result.formulation == toy_benchmark.formulation
    assert "pipes" in tasks.known_names()
    spec = parse_spec({"name": "t", "teacher": "x/y", "task": {"source": "synthetic:n=50"},
                       "knowledge": {"benchmarks": ["pipes"]}, "axes": {"dataset_sizes": [8], "keep_fractions": [0.5]}})
    assert spec.knowledge.benchmarks == ["pipes"]


def test_mmlu_pro_from_the_hub_dataset_in_the_letter_formulation(tiny, monkeypatch):
    import datasets

    monkeypatch.delenv("TASKDISTILL_BENCHMARKS_DIR", raising=False)
    monkeypatch.delenv("TASKDISTILL_DATA_DIR", raising=False)
    rows = [{"question_id": i, "question": f"Question {i}?", "options": ["a", "b", "c", "d", "e"][: 3 + i % 3],
             "answer": "ABC"[i % 3], "answer_index": i % 3, "category": ["law", "math"][i % 2]} for i in range(6)]
    asked = []

    def fake_load(name, config=None, split=None):
        asked.append((name, config, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    make_model, make_tok = tiny
    report = evaluate_knowledge(make_model("qwen2", seed=1), make_tok(), ["mmlu_pro"], limit=6)
    result = report["mmlu_pro"]
    assert asked == [("TIGER-Lab/MMLU-Pro", None, "test")]
    assert result.n == 6 and 0 <= result.acc <= 1  # a log-likelihood `acc`, not a generative task's output
    assert result.chance == pytest.approx(sum(1 / (3 + i % 3) for i in range(6)) / 6)
    evaluate_knowledge(make_model("qwen2", seed=2), make_tok(), ["mmlu_pro"], limit=6)
    assert len(asked) == 1  # fetched once, then read from the cache home
