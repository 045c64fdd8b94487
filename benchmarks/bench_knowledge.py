"""Throughput of our lm-eval adapter vs lm-eval's stock HFLM: same model object, same tasks, same items.

    TASKDISTILL_DATA_DIR=../shared/data python benchmarks/bench_knowledge.py --n 100 --threads 1

For each benchmark the same lm-eval task (our local config over a fixed stratified subset) is run
through ``simple_evaluate`` with (a) ``InMemoryLM`` in float32, (b) ``InMemoryLM`` under bf16
autocast, (c) ``lm_eval.models.huggingface.HFLM(pretrained=model, tokenizer=tok, batch_size=B)``.
Reports items/s, accuracy of each and the speed ratios. Needs the SmolLM2 teacher in TASKDISTILL_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--benchmarks", default="arc_easy,piqa,hellaswag")
    parser.add_argument("--n", type=int, default=100, help="items per benchmark")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from lm_eval.api.task import ConfigurableTask
    from lm_eval.models.huggingface import HFLM

    from taskdistill.evaluate.knowledge import api, tasks
    from taskdistill.evaluate.knowledge.adapter import InMemoryLM
    from taskdistill.evaluate.knowledge.retention import stratified_subset
    from taskdistill.models.load import load_model

    model, tok = load_model(args.model)
    adapters = {
        "ours_fp32": lambda: InMemoryLM(model, tok, batch_size=args.batch_size),
        "ours_bf16": lambda: InMemoryLM(model, tok, batch_size=args.batch_size, precision="bfloat16"),
        "hflm_fp32": lambda: HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size, device="cpu"),
    }
    rows = []
    for name in args.benchmarks.split(","):
        resolved = tasks.resolve(name)
        docs = resolved.docs()
        chosen = [docs[i] for i in stratified_subset([d["stratum"] for d in docs], args.n, 0, resolved.balanced)]
        row = {"benchmark": name, "n": len(chosen)}
        for label, make in adapters.items():
            lm = make()
            task = ConfigurableTask(config=tasks.task_config(resolved, chosen))
            from lm_eval.tasks import TaskManager

            start = time.perf_counter()
            out = api._simple_evaluate(lm, [task], TaskManager(include_defaults=False))
            seconds = time.perf_counter() - start
            result = api.summarise(resolved, out["samples"][task.task_name])
            row[label] = {"seconds": seconds, "items_per_s": len(chosen) / seconds, "acc": result.acc,
                          "acc_norm": result.acc_norm}
            print(f"{name:10s} {label}: {len(chosen) / seconds:6.2f} items/s  acc {result.acc:.4f}  "
                  f"acc_norm {result.acc_norm:.4f}  ({seconds:.1f} s)", flush=True)
        for label in ("ours_fp32", "ours_bf16"):
            row[f"speedup_{label}"] = row[label]["items_per_s"] / row["hflm_fp32"]["items_per_s"]
            row[f"acc_diff_{label}_points"] = 100 * (row[label]["acc"] - row["hflm_fp32"]["acc"])
        rows.append(row)
        print(f"{name:10s} speed-up fp32 {row['speedup_ours_fp32']:.2f}x, bf16 {row['speedup_ours_bf16']:.2f}x; "
              f"acc diff fp32 {row['acc_diff_ours_fp32_points']:+.2f} pt, bf16 {row['acc_diff_ours_bf16_points']:+.2f} pt",
              flush=True)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "load_avg": os.getloadavg()}
    print(json.dumps(machine))
    if args.json:
        from taskdistill.cache import atomic_write_json

        atomic_write_json(args.json, {"machine": machine, "rows": rows, "args": vars(args)})


if __name__ == "__main__":
    main()
