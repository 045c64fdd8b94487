"""SmolLM2-135M-Instruct on ARC-Easy, PIQA and HellaSwag (300 items each, offline release files):
clearly above chance, and within 1 point of an independent straightforward implementation that
reads the raw files itself and scores every choice with full forwards, one item at a time."""

from __future__ import annotations

import json
import re

import pytest
import torch

from taskdistill.evaluate.knowledge import evaluate_knowledge, tasks
from taskdistill.evaluate.knowledge.retention import stratified_subset

LIMIT = 300  # the minimum; the cost of this test is dominated by the independent scoring


def _raw_items(name, data_dir):
    """(id, context, choices, gold) straight from the release files, prompts as lm-eval writes them."""
    if name == "arc_easy":
        for line in (data_dir / "arc" / "ARC-Easy-Test.jsonl").read_text().splitlines():
            row = json.loads(line)
            labels = [c["label"] for c in row["question"]["choices"]]
            yield (row["id"], f"Question: {row['question']['stem']}\nAnswer:",
                   [c["text"] for c in row["question"]["choices"]], labels.index(row["answerKey"]))
    elif name == "piqa":
        labels = (data_dir / "piqa" / "dev-labels.lst").read_text().split()
        for line, label in zip((data_dir / "piqa" / "dev.jsonl").read_text().splitlines(), labels, strict=True):
            row = json.loads(line)
            yield row["id"], f"Question: {row['goal']}\nAnswer:", [row["sol1"], row["sol2"]], int(label)
    else:
        def clean(text):
            text = re.sub("\\[.*?\\]", "", text.strip().replace(" [title]", ". "))
            return text.replace("  ", " ")

        for line in (data_dir / "hellaswag_val_1k" / "hellaswag_val_1000.jsonl").read_text().splitlines():
            row = json.loads(line)
            context = clean(row["activity_label"] + ": " + row["ctx_a"] + " " + row["ctx_b"].capitalize())
            yield str(row["ind"]), context, [clean(e) for e in row["endings"]], int(row["label"])


def _straightforward_accuracy(model, tok, items):
    """Per-choice summed log-likelihood, full sequences, one item (its choices padded) per forward."""
    correct = 0
    body, head = model.base_model, model.get_output_embeddings()
    for _, context, choices, gold in items:
        ctx = tok.encode(context)
        conts = [tok.encode(context + " " + choice)[len(ctx):] for choice in choices]
        width = len(ctx) + max(map(len, conts))
        ids = torch.zeros((len(conts), width), dtype=torch.long)
        for row, cont in enumerate(conts):
            ids[row, : len(ctx) + len(cont)] = torch.tensor(ctx + cont)
        with torch.no_grad():
            hidden = body(input_ids=ids).last_hidden_state  # right padding never reaches earlier positions
        scores = []
        for row, cont in enumerate(conts):
            logp = torch.log_softmax(head(hidden[row, len(ctx) - 1 : len(ctx) - 1 + len(cont)]).float(), -1)
            scores.append(float(logp.gather(1, torch.tensor(cont)[:, None]).sum()))
        correct += max(range(len(scores)), key=scores.__getitem__) == gold
    return correct / len(items)


@pytest.mark.slow
def test_smollm2_above_chance_and_matches_straightforward_scoring(teacher_path, data_dir, monkeypatch):
    from taskdistill.models.load import load_model

    monkeypatch.setenv("TASKDISTILL_BENCHMARKS_DIR", str(data_dir))
    model, tok = load_model(str(teacher_path))
    names = ["arc_easy", "piqa", "hellaswag"]
    report = evaluate_knowledge(model, tok, names, limit=LIMIT, seed=0, use_cache=False)
    for name in names:
        result = report[name]
        assert result.n == LIMIT
        best = max(result.acc, result.acc_norm)
        assert best - result.chance > 3 * result.stderr, (name, result)  # clearly above chance
        resolved = tasks.resolve(name)
        docs = resolved.docs()
        ids = {docs[i]["id"] for i in stratified_subset([d["stratum"] for d in docs], LIMIT, 0, resolved.balanced)}
        items = [item for item in _raw_items(name, data_dir) if item[0] in ids]
        assert len(items) == LIMIT
        reference = _straightforward_accuracy(model, tok, items)
        print(f"{name}: ours {result.acc:.4f} (acc_norm {result.acc_norm:.4f}) straightforward {reference:.4f}")
        assert abs(result.acc - reference) <= 0.01, (name, result.acc, reference)
