"""Constrained label scorer vs scoring every label as its own full sequence, on the SmolLM2 teacher.

    TASKDISTILL_HOME=.test-home python benchmarks/bench_task_scorer.py [--n 40] [--naive-n 40]

Headlines and the 35-class taxonomy come from the synthetic generator (seeded). Our scorer
(``task.score_labels``: each prompt encoded once, all 35 ``[[Label]]`` continuations in one forward
with a shared-prefix attention mask) runs on ``--n`` headlines; the naive reference (one forward
per label over ``prompt + [[Label]]``, prompts batched per label, left-padded, logits kept only for
the label tokens) runs on the first ``--naive-n`` of them. Reported: the largest absolute difference
of class probabilities on the shared headlines and the speed ratio per headline.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
from scipy.special import log_softmax

from taskdistill.data import synthetic
from taskdistill.evaluate.task import label_continuations, score_labels
from taskdistill.models import prompts
from taskdistill.models.load import load_model


def naive_scores(model, tok, texts, labels, batch_size):
    """Class log-probabilities from one full forward per (prompt, label), batched over prompts."""
    contexts = [prompts.encode(tok, prompts.build_prompt(tok, t, labels))[0] for t in texts]
    out = np.zeros((len(texts), len(labels)))
    for c, cont in enumerate(label_continuations(tok, labels)):
        for start in range(0, len(texts), batch_size):
            rows = [ctx + cont for ctx in contexts[start : start + batch_size]]
            width = max(map(len, rows))
            ids = torch.zeros(len(rows), width, dtype=torch.long)
            mask = torch.zeros(len(rows), width, dtype=torch.long)
            for b, row in enumerate(rows):
                ids[b, width - len(row) :] = torch.tensor(row)
                mask[b, width - len(row) :] = 1
            positions = (mask.cumsum(1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                               logits_to_keep=len(cont) + 1).logits[:, :-1].double()
            lp = logits.log_softmax(-1).gather(-1, torch.tensor(cont).expand(len(rows), -1)[..., None])
            out[start : start + len(rows), c] = lp.sum((1, 2)).numpy()
    return log_softmax(out, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="headlines scored by our scorer")
    parser.add_argument("--naive-n", type=int, default=None, help="of those, headlines scored naively (default: all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()
    naive_n = min(args.naive_n or args.n, args.n)

    model, tok = load_model(args.model)
    data = synthetic.generate(args.n, seed=0)
    texts, labels = [e.text for e in data.examples], data.labels
    prompt_tokens = np.mean([len(prompts.encode(tok, prompts.build_prompt(tok, t, labels))[0]) for t in texts])
    label_tokens = [len(c) for c in label_continuations(tok, labels)]

    score_labels(model, tok, texts[:2], labels, batch_size=2)  # warm-up
    t0 = time.perf_counter()
    ours = score_labels(model, tok, texts, labels, batch_size=args.batch_size)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = naive_scores(model, tok, texts[:naive_n], labels, args.batch_size)
    naive_s = time.perf_counter() - t0

    diff = float(np.abs(np.exp(ours[:naive_n]) - np.exp(naive)).max())
    ratio = (naive_s / naive_n) / (ours_s / args.n)
    result = {
        "model": args.model, "classes": len(labels), "headlines": args.n, "naive_headlines": naive_n,
        "mean_prompt_tokens": round(float(prompt_tokens), 1), "label_tokens_mean": round(float(np.mean(label_tokens)), 2),
        "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "ours_s_per_headline": round(ours_s / args.n, 3), "naive_s_per_headline": round(naive_s / naive_n, 3),
        "speed_ratio": round(ratio, 2), "max_abs_prob_diff": diff,
        "argmax_agree": float((ours[:naive_n].argmax(1) == naive.argmax(1)).mean()),
    }
    print(json.dumps(result, indent=2))
    if diff > 1e-4:
        raise SystemExit(f"FAIL: class probabilities differ by {diff:.2e} > 1e-4")


if __name__ == "__main__":
    main()
