"""evaluate_knowledge end to end on tiny models and a small benchmark folder in the release layouts."""

from __future__ import annotations

import json

import pytest
import torch

from taskdistill.errors import TaskDistillError
from taskdistill.evaluate.knowledge import adapter, evaluate_knowledge, formats, tasks
from taskdistill.evaluate.knowledge.retention import stratified_subset

WORDS = ["Paris", "Berlin", "earnings", "guidance", "buyback", "water", "boils", "capital", "deal", "shares"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def bench_dir(tmp_path, monkeypatch):
    root = tmp_path / "bench"
    arc = []
    for i in range(14):
        n = 3 + i % 3  # 3, 4 or 5 choices; digit labels on some items
        labels = [str(k + 1) for k in range(n)] if i % 4 == 0 else list("ABCDE"[:n])
        arc.append({"id": f"q{i}", "question": {"stem": f"Which word is number {i}?", "choices": [
            {"text": WORDS[(i + k) % 10] + (" deal" * (k % 2)), "label": labels[k]} for k in range(n)]},
            "answerKey": labels[i % n]})
    _jsonl(root / "arc" / "ARC-Easy-Test.jsonl", arc)
    piqa = [{"id": f"p{i}", "goal": f"How to {WORDS[i]}?", "sol1": WORDS[(i + 1) % 10], "sol2": WORDS[(i + 2) % 10]}
            for i in range(10)]
    _jsonl(root / "piqa" / "dev.jsonl", piqa)
    (root / "piqa" / "dev-labels.lst").write_text("".join(f"{i % 2}\n" for i in range(10)))
    (root / "mmlu" / "test").mkdir(parents=True)
    for subject in ("astronomy", "world_religions"):
        (root / "mmlu" / "test" / f"{subject}_test.csv").write_text(
            "".join(f"Q{k} about {subject}?,{WORDS[k]},{WORDS[k + 1]},{WORDS[k + 2]},{WORDS[k + 3]},{'ABCD'[k % 4]}\n"
                    for k in range(6)))
    _jsonl(root / "mmlu_pro" / "test.jsonl", [
        {"question_id": k, "question": f"Pick {k}", "options": WORDS[: 4 + k % 7], "answer": "ABCDEFGHIJ"[k % 4],
         "answer_index": k % 4, "category": ["math", "law"][k % 2]} for k in range(10)])
    _jsonl(root / "triviaqa_3k" / "triviaqa_sm_sub.jsonl", [
        {"context": f"Question: What is {w}?\nAnswer:", "answer": w, "aliases": [w]} for w in WORDS[:5]])
    monkeypatch.setenv("TASKDISTILL_BENCHMARKS_DIR", str(root))
    return root




def _choice_logprob(model, tok, context, choice):
    """Independent per-choice summed log-likelihood (context encoded alone, choice after a space)."""
    ctx = tok.encode(context)
    cont = tok.encode(context + " " + choice)[len(ctx):]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].float(), -1)
    return sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))


def _expected(model, tok, docs):
    acc = acc_norm = 0
    for doc in docs:
        context = doc["description"] + doc["query"]
        scores = [_choice_logprob(model, tok, context, c) for c in doc["choices"]]
        acc += max(range(len(scores)), key=scores.__getitem__) == doc["gold"]
        norm = [s / len(" " + c) for s, c in zip(scores, doc["choices"], strict=True)]  # lm-eval: per character
        acc_norm += max(range(len(norm)), key=norm.__getitem__) == doc["gold"]
    return acc / len(docs), acc_norm / len(docs)


def _chosen(name, limit, seed=0):
    resolved = tasks.resolve(name)
    docs = resolved.docs()
    return [docs[i] for i in stratified_subset([d["stratum"] for d in docs], limit, seed, resolved.balanced)]


def test_multiple_choice_accuracy_matches_independent_scoring(tiny, bench_dir):
    make_model, make_tok = tiny
    model, tok = make_model("llama", seed=11), make_tok()
    report = evaluate_knowledge(model, tok, ["arc_easy", "piqa", "mmlu", "mmlu_pro"], limit=8, seed=0)
    for name in ("arc_easy", "piqa", "mmlu", "mmlu_pro"):
        docs = _chosen(name, 8)
        result = report[name]
        acc, acc_norm = _expected(model, tok, docs)
        assert result.n == 8 and result.correct == round(acc * 8)
        assert result.acc == pytest.approx(acc) and result.acc_norm == pytest.approx(acc_norm), name
        assert result.chance == pytest.approx(sum(1 / len(d["choices"]) for d in docs) / 8)
        assert result.stderr == pytest.approx((acc * (1 - acc) / 7) ** 0.5)
    mmlu_subjects = {d["stratum"] for d in _chosen("mmlu", 8)}
    assert mmlu_subjects == {"astronomy", "world_religions"}
    assert report.aggregate_retention is None


def test_triviaqa_exact_match_against_aliases(tiny, bench_dir):
    make_model, make_tok = tiny
    model, tok = make_model("qwen2", seed=4), make_tok()
    docs = formats.read_triviaqa(bench_dir / "triviaqa_3k" / "triviaqa_sm_sub.jsonl")
    lm = adapter.InMemoryLM(model, tok)
    from lm_eval.api.instance import Instance

    kwargs = {"until": ["\n", ".", ","], "do_sample": False, "max_gen_toks": 32}
    outs = lm.generate_until([Instance("generate_until", {}, (d["query"], dict(kwargs)), i) for i, d in enumerate(docs)])
    hits = [i for i, o in enumerate(outs) if o.strip()]
    assert len(hits) >= 2, outs  # the tiny model answers something for most questions
    rows = [{"context": d["query"], "answer": "x",
             # the model's own answer (in other case) is an alias for the first two answerable items
             "aliases": [outs[i].strip().upper()] if i in hits[:2] else ["zzzz"]} for i, d in enumerate(docs)]
    _jsonl(bench_dir / "triviaqa_3k" / "triviaqa_sm_sub.jsonl", rows)
    result = evaluate_knowledge(model, tok, ["triviaqa"], limit=None)["triviaqa"]
    assert result.n == 5 and result.chance == 0.0 and result.acc_norm is None
    assert result.correct == 2 and result.acc == pytest.approx(result.correct / 5)


def test_results_are_cached_and_retention_uses_the_reference(tiny, bench_dir, monkeypatch):
    make_model, make_tok = tiny
    model, tok = make_model("llama", seed=2), make_tok()
    first = evaluate_knowledge(model, tok, ["piqa", "arc_easy"], limit=6)

    class Refuse:
        def __init__(self, *args, **kwargs):
            raise AssertionError("a cached benchmark was evaluated again")

    monkeypatch.setattr(adapter, "InMemoryLM", Refuse)
    seen = []
    reference = {"piqa": 0.9, "arc_easy": first["arc_easy"].acc + 0.2}
    again = evaluate_knowledge(model, tok, ["piqa", "arc_easy"], limit=6, reference=reference,
                               progress=lambda name, status: seen.append((name, status)))
    assert seen == [("piqa", "cached"), ("arc_easy", "cached")]
    assert again.accuracies() == first.accuracies()
    piqa = again["piqa"]
    assert piqa.retention == pytest.approx((piqa.acc - 0.5) / (0.9 - 0.5))
    arc = again["arc_easy"]
    assert arc.retention == pytest.approx((arc.acc - arc.chance) / (reference["arc_easy"] - arc.chance))
    assert again.aggregate_retention == pytest.approx((piqa.retention + arc.retention) / 2)
    with pytest.raises(AssertionError, match="evaluated again"):  # other weights: a new evaluation
        evaluate_knowledge(make_model("llama", seed=3), tok, ["piqa"], limit=6)
    with pytest.raises(AssertionError, match="evaluated again"):  # other subset: a new evaluation
        evaluate_knowledge(model, tok, ["piqa"], limit=6, seed=1)


def test_bad_input_is_one_clear_line(tiny, bench_dir):
    make_model, make_tok = tiny
    model, tok = make_model("llama"), make_tok()
    with pytest.raises(TaskDistillError, match="unknown benchmark 'arc_esay'. Did you mean 'arc_easy'"):
        evaluate_knowledge(model, tok, ["arc_esay"])
    with pytest.raises(TaskDistillError, match=r"limit 50 is larger than benchmark 'piqa' \(10 items\)"):
        evaluate_knowledge(model, tok, ["piqa"], limit=50)
    (bench_dir / "piqa" / "dev-labels.lst").unlink()
    with pytest.raises(TaskDistillError, match=r"benchmark 'piqa': missing piqa/dev-labels.lst in the benchmark folder"):
        evaluate_knowledge(model, tok, ["piqa"])
    with pytest.raises(TaskDistillError, match="missing hellaswag/hellaswag_val.jsonl"):
        evaluate_knowledge(model, tok, ["hellaswag"])
    with pytest.raises(TaskDistillError, match="no such file"):
        evaluate_knowledge(model, tok, [f"jsonl:{bench_dir / 'nope.jsonl'}"])


def test_generic_jsonl_and_probe_run(tiny, tmp_path):
    make_model, make_tok = tiny
    model, tok = make_model("qwen3", seed=1), make_tok()
    path = tmp_path / "mine.jsonl"
    _jsonl(path, [{"question": f"Is {w} a word?", "choices": ["yes", "no", "maybe"], "answer": i % 3}
                  for i, w in enumerate(WORDS)])
    report = evaluate_knowledge(model, tok, [f"jsonl:{path}", "probe"], limit=9)
    mine = report[f"jsonl:{path}"]
    assert mine.n == 9 and mine.chance == pytest.approx(1 / 3)
    assert report["probe"].n == 9 and report["probe"].chance == pytest.approx(0.25)
    docs = _chosen(f"jsonl:{path}", 9)
    assert mine.acc == pytest.approx(_expected(model, tok, docs)[0])


def test_hub_mapping_and_defaults(monkeypatch):
    monkeypatch.delenv("TASKDISTILL_BENCHMARKS_DIR", raising=False)
    monkeypatch.delenv("TASKDISTILL_DATA_DIR", raising=False)
    assert tasks.default_benchmarks() == ["probe"]
    hub = {name: tasks.resolve(name).hub for name in tasks.BENCHMARKS if tasks.BENCHMARKS[name].hub}
    assert hub == {"arc_easy": "arc_easy", "arc_challenge": "arc_challenge", "hellaswag": "hellaswag",
                   "piqa": "piqa", "mmlu": "mmlu", "mmlu_cloze": "mmlu_continuation", "triviaqa": "triviaqa"}
    # lm-eval's mmlu_pro is generative chain-of-thought: the hub dataset is read in our formulation instead
    assert tasks.BENCHMARKS["mmlu_pro"].hub is None and tasks.BENCHMARKS["mmlu_pro"].hub_dataset[0] == "TIGER-Lab/MMLU-Pro"
    assert tasks.resolve("probe").hub is None  # the probe never needs a hub
    import re
    from pathlib import Path

    import lm_eval.tasks

    declared = set()  # every hub name is a task or group that lm-eval's own configs declare
    for config in Path(lm_eval.tasks.__file__).parent.rglob("*yaml*"):
        declared.update(re.findall(r"^(?:task|group): *\"?([\w.-]+)\"?\s*$", config.read_text(errors="ignore"), re.MULTILINE))
    assert set(hub.values()) <= declared
    monkeypatch.setenv("TASKDISTILL_BENCHMARKS_DIR", "/somewhere")
    assert tasks.default_benchmarks() == ["arc_easy", "piqa", "hellaswag", "mmlu_cloze"]
