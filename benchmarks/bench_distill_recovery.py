"""SmolLM2 experiment: correct the teacher, prune once to κ≈0.58, recover with every supervision × method.

    TASKDISTILL_HOME=.test-home TASKDISTILL_DATA_DIR=../shared/data python benchmarks/bench_distill_recovery.py

One fixed (small) budget for every recovery run; in-domain macro-F1 (constrained scoring, and
generate-then-score for CoT students with --cot-eval) and ARC-Easy / PIQA accuracy with retention
relative to the uncorrected teacher. Results are appended to OUT/results.json after every run, so a
partial run still reports what it finished.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from taskdistill.cache import atomic_write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="distill-experiment")
    ap.add_argument("--teacher", default="smollm2-135m-instruct")
    ap.add_argument("--data", default="synthetic:n=400,seed=0")
    ap.add_argument("--test-size", type=int, default=35)
    ap.add_argument("--keep", type=float, default=0.58)
    ap.add_argument("--correct-steps", type=int, default=6)
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per recovery run")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--dataset-size", type=int, default=16)
    ap.add_argument("--knowledge-limit", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cot-eval", type=int, default=0, help="max new tokens of a generate-then-score eval (0: off)")
    ap.add_argument("--runs", default="label,kl,cot,cot_kl,blended")
    ap.add_argument("--bf16", choices=("auto", "on", "off"), default="off", help="autocast of the recovery runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from taskdistill.data.load import load_task_data
    from taskdistill.data.splits import make_split
    from taskdistill.distill.config import DistillConfig
    from taskdistill.distill.correct import correct_teacher
    from taskdistill.distill.traces import build_traces
    from taskdistill.distill.train import Signals, distill
    from taskdistill.evaluate.knowledge.api import evaluate_knowledge
    from taskdistill.evaluate.task import evaluate_task
    from taskdistill.models.load import load_model
    from taskdistill.prune.api import prune
    from taskdistill.prune.params import count_parameters

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": vars(args), "runs": []}
    clock = time.perf_counter()

    def save(**kw):
        results.update(kw)
        results["elapsed_s"] = round(time.perf_counter() - clock, 1)
        atomic_write_json(out / "results.json", results)
        print(json.dumps({k: v for k, v in kw.items()}, default=str)[:400], f"[{results['elapsed_s']}s]", flush=True)

    def indomain(model, tok, mode="score", max_new=None):
        m = evaluate_task(model, tok, split.test, mode=mode, max_new_tokens=max_new).to_dict()
        return {k: m[k] for k in ("accuracy", "macro_f1", "nll", "brier", "n")}

    def knowledge(model, tok, reference=None):
        rep = evaluate_knowledge(model, tok, ["arc_easy", "piqa"], limit=args.knowledge_limit, reference=reference)
        return {"acc": rep.accuracies(), "retention": rep.aggregate_retention,
                "per_benchmark_retention": {r.name: r.retention for r in rep.results}}

    teacher, tok = load_model(args.teacher)
    data = load_task_data(args.data)
    split = make_split(data, test_size=args.test_size, seed=0)
    train = split.train_pool
    total = count_parameters(teacher)[0]
    k_teacher = knowledge(teacher, tok)
    reference = k_teacher["acc"]
    save(teacher={"params": total, "knowledge": k_teacher})

    corr_cfg = DistillConfig(supervision="label", method="logit", max_steps=args.correct_steps,
                             batch_size=args.batch_size, lr=5e-5, warmup_ratio=0.0, dataset_size=args.correct_steps * args.batch_size)
    before = indomain(teacher, tok)
    corrected, corr = correct_teacher(teacher, tok, train, corr_cfg, progress=False)
    save(correction={**corr, "before": before, "after": indomain(corrected, tok),
                     "knowledge": knowledge(corrected, tok, reference)})

    # Traces come from the uncorrected instruct teacher: label-format correction makes a model answer
    # "[[Label]]" at once, leaving no rationale (measured: docs/distillation.md).
    writer, _ = load_model(args.teacher)
    traced = build_traces(writer, tok, train.subset(train.examples[: args.dataset_size]), max_new_tokens=40)
    del writer
    save(traces=traced.meta["traces"], trace_examples=[(e.label, e.cot) for e in traced.examples[:5]])

    calib = [e.text for e in train.examples[-32:]]
    pruned, prune_report = prune(copy.deepcopy(corrected), tok, args.keep, calib, reference_params=total)
    save(pruned={"fraction_total": prune_report.fraction_total, "indomain": indomain(pruned, tok),
                 "knowledge": knowledge(pruned, tok, reference)})

    for supervision in args.runs.split(","):
        for method in ("logit", "lora"):
            config = DistillConfig(
                method=method, supervision=supervision, max_steps=args.steps, batch_size=args.batch_size,
                lr=1e-4 if method == "logit" else 1e-3, warmup_ratio=0.0, dataset_size=min(args.dataset_size, len(traced))
                if supervision != "label" and supervision != "kl" else args.dataset_size, lam=0.5, temperature=1.0,
                top_k=64, seed=0, bf16={"auto": "auto", "on": True, "off": False}[args.bf16],
            )
            t0 = time.perf_counter()
            student, report = distill(copy.deepcopy(pruned), tok, train, config, teacher=corrected,
                                      signals=Signals(traces=traced), progress=False)
            train_s = time.perf_counter() - t0
            row = {"supervision": supervision, "method": method, "train_s": round(train_s, 1),
                   "tokens_per_s": report.tokens_per_s, "loss_first": report.history[0]["loss"],
                   "loss_last": report.history[-1]["loss"], "indomain": indomain(student, tok),
                   "knowledge": knowledge(student, tok, reference)}
            if args.cot_eval and config.uses_traces:
                row["indomain_cot"] = indomain(student, tok, "cot", args.cot_eval)
            results["runs"].append(row)
            save(last_run=f"{supervision}/{method}")


if __name__ == "__main__":
    main()
