"""Structural pruning of the SmolLM2 teacher: speed, quality against a magnitude peer, one-shot sweep.

    TASKDISTILL_HOME=.test-home TASKDISTILL_DATA_DIR=../shared/data python benchmarks/bench_prune.py timing
    ... bench_prune.py quality [--keep 0.79 0.5] [--n-task 60] [--n-text 200]
    ... bench_prune.py sweep [--n-task 100] [--limit 100]

timing   importance on 256 synthetic headlines (fresh cache) + planning + surgery to κ = 0.5 (width).
quality  ours (Minitron activation importance) vs the magnitude criterion of Torch-Pruning
         (GroupMagnitudeImportance(p=2, group_reduction="mean"): per unit, the mean over its coupled
         layers of the squared L2 weight norm) applied through our surgery to the SAME target shape.
         Torch-Pruning 1.6.1 itself does not finish building its dependency graph on a transformers-5
         Llama (hung > 300 s in get_all_groups on a 4-layer tiny model), so the criterion is re-implemented
         here. Metrics: held-out task gold-label NLL / accuracy / macro-F1 (``evaluate_task``, score mode,
         synthetic headlines of another seed) and perplexity on ARC-Easy question texts (general text).
sweep    one-shot (no recovery) to κ = 0.79 / 0.58 / 0.37 / 0.16 with axes=mixed: task metrics and
         ARC-Easy / PIQA accuracy (``evaluate_knowledge``, fixed subsets).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from taskdistill.data import synthetic
from taskdistill.models.load import load_model
from taskdistill.prune.api import prune
from taskdistill.prune.importance import Importance
from taskdistill.prune.shape import plan_shape
from taskdistill.prune.surgery import prune_model

MODEL = "smollm2-135m-instruct"


def calibration(n=256):
    return [e.text for e in synthetic.generate(n, seed=11).examples]


def magnitude_importance(model) -> Importance:
    """Torch-Pruning's group magnitude criterion (p=2, mean over the coupled layers) as an Importance."""
    cfg, layers = model.config, model.model.layers
    d = cfg.head_dim
    sq = lambda w, dim: w.detach().float().pow(2).sum(dim)
    neurons = torch.stack([(sq(l.mlp.gate_proj.weight, 1) + sq(l.mlp.up_proj.weight, 1) + sq(l.mlp.down_proj.weight, 0)) / 3
                           for l in layers])
    heads = torch.stack([(sq(l.self_attn.q_proj.weight, 1).reshape(-1, d).sum(1)
                          + sq(l.self_attn.o_proj.weight, 0).reshape(-1, d).sum(1)) / 2 for l in layers])
    hidden_terms = [sq(model.model.embed_tokens.weight, 0), model.model.norm.weight.detach().float() ** 2]
    if not cfg.tie_word_embeddings:
        hidden_terms.append(sq(model.lm_head.weight, 0))
    for l in layers:
        a, m = l.self_attn, l.mlp
        hidden_terms += [sq(a.q_proj.weight, 0), sq(a.k_proj.weight, 0), sq(a.v_proj.weight, 0), sq(a.o_proj.weight, 1),
                         sq(m.gate_proj.weight, 0), sq(m.up_proj.weight, 0), sq(m.down_proj.weight, 1),
                         l.input_layernorm.weight.detach().float() ** 2, l.post_attention_layernorm.weight.detach().float() ** 2]
    hidden = torch.stack(hidden_terms).mean(0)
    return Importance(neurons=neurons, heads=heads, hidden=hidden, layers=torch.ones(len(layers)),
                      num_key_value_heads=cfg.num_key_value_heads)


def text_perplexity(model, tok, texts, batch_size=16) -> float:
    total, count = 0.0, 0
    for start in range(0, len(texts), batch_size):
        batch = tok(texts[start:start + batch_size], return_tensors="pt", padding=True)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        with torch.inference_mode():
            logits = model(**batch).logits[:, :-1].float()
        target = labels[:, 1:]
        total += float(torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="sum"))
        count += int((target != -100).sum())
    return float(torch.exp(torch.tensor(total / count)))


def arc_texts(n):
    root = Path(os.environ.get("TASKDISTILL_DATA_DIR", "../shared/data"))
    lines = (root / "arc" / "ARC-Easy-Test.jsonl").read_text().splitlines()[:n]
    return [json.loads(line)["question"]["stem"] for line in lines]


def task_metrics(model, tok, n):
    from taskdistill.evaluate.task import evaluate_task

    m = evaluate_task(model, tok, synthetic.generate(n, seed=5), mode="score")
    return {"nll": m.nll, "accuracy": m.accuracy, "macro_f1": m.macro_f1, "n": m.n}


def timing(args):
    model, tok = load_model(MODEL)
    texts = calibration(256)
    os.environ["TASKDISTILL_HOME"] = tempfile.mkdtemp(prefix="bench-prune-")  # fresh importance cache
    start, cpu = time.perf_counter(), time.process_time()
    _, report = prune(model, tok, 0.5, texts, axes="width")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    tokens = sum(len(tok(t)["input_ids"]) for t in texts)
    out = {"wall_seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "calib_texts": len(texts), "calib_tokens": tokens,
           "fraction_total": round(report.fraction_total, 4), "after": report.after,
           "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
           "load_avg": os.getloadavg()}
    print(json.dumps(out, indent=1))


def quality(args):
    model, tok = load_model(MODEL)
    texts, arc = calibration(256), arc_texts(args.n_text)
    rows = [{"method": "teacher", "keep": 1.0, **task_metrics(model, tok, args.n_task),
             "arc_ppl": text_perplexity(model, tok, arc)}]
    print(json.dumps(rows[-1]), flush=True)
    magnitude = magnitude_importance(model)
    for keep in args.keep:
        ours, report = prune(model, tok, keep, texts, axes="width")
        target = plan_shape(model.config, keep, "width")
        peer = prune_model(model, magnitude, target)
        for name, net in (("ours", ours), ("magnitude", peer)):
            rows.append({"method": name, "keep": keep, "fraction": round(report.fraction_total, 4),
                         **task_metrics(net, tok, args.n_task), "arc_ppl": text_perplexity(net, tok, arc)})
            print(json.dumps(rows[-1]), flush=True)


def sweep(args):
    from taskdistill.evaluate.knowledge.api import evaluate_knowledge

    model, tok = load_model(MODEL)
    texts = calibration(256)
    for keep in [1.0, 0.79, 0.58, 0.37, 0.16]:
        net, report = prune(model, tok, keep, texts, axes=args.axes)
        knowledge = evaluate_knowledge(net, tok, ["arc_easy", "piqa"], limit=args.limit)
        row = {"keep": keep, "fraction_total": round(report.fraction_total, 4),
               "fraction_non_embedding": round(report.fraction_non_embedding, 4), "shape": report.after,
               **task_metrics(net, tok, args.n_task),
               **{f"{r.name}_acc": r.acc for r in knowledge.results}, **{f"{r.name}_n": r.n for r in knowledge.results}}
        print(json.dumps(row), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["timing", "quality", "sweep"])
    parser.add_argument("--keep", type=float, nargs="+", default=[0.79, 0.5])
    parser.add_argument("--n-task", type=int, default=60)
    parser.add_argument("--n-text", type=int, default=200)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--axes", default="mixed")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    {"timing": timing, "quality": quality, "sweep": sweep}[args.what](args)


if __name__ == "__main__":
    main()
