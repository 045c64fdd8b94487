"""The quickstart's speed levers, each measured for its effect on time and on the numbers, in one run.

    python benchmarks/bench_levers.py --study runs/quickstart [--json levers.json]

Reads the corrected teacher, the test set and the prompt of a finished (or at least corrected) study
folder, then times, on the same process and machine:

1. the compact task prompt (no 35-label list) against the full one: prompt tokens and scoring time;
2. precision for inference: float32 weights, float32 weights under bf16 autocast, bf16 weights — scoring
   (time, accuracy, NLL, largest class-probability difference to float32), the CoT view (time, accuracy)
   and the general-knowledge probe (time, accuracy);
3. a model load from disk: what each hit of the study's in-process model cache saves (a hit hands the
   loaded object over, nothing is copied);
4. training throughput (label supervision, compact prompt) in float32 and under bf16 autocast;
5. the scorer's batch size (8, 16, 32) on the test set, in bf16 weights;
6. general knowledge: seconds and accuracy per benchmark at ``--gk`` items, in bf16 weights — the probe, and
   ARC-Easy, PIQA, HellaSwag and MMLU (cloze) when a benchmark folder is configured.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True, help="study folder with a done teacher correction")
    parser.add_argument("--n", type=int, default=210, help="test headlines")
    parser.add_argument("--gk", type=int, default=200, help="probe items")
    parser.add_argument("--train", type=int, default=64, help="training examples per throughput run")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from taskdistill.data.schema import TaskData
    from taskdistill.distill.config import make_config
    from taskdistill.distill.train import distill
    from taskdistill.evaluate.knowledge import evaluate_knowledge
    from taskdistill.evaluate.task import evaluate_task, score_labels
    from taskdistill.models.load import cast_copy, load_model
    from taskdistill.models.prompts import PromptFormat, build_prompt
    from taskdistill.study.store import open_store

    store = open_store(args.study)
    steps = store.steps(store.study()["name"])
    spec = store.study()["spec"]
    store.close()
    artifact = {r["kind"]: r["artifact"] for r in steps.values() if r["status"] == "done"}
    data = Path(artifact["data"])
    test = TaskData.load(data / "test.json")
    test = test.subset(test.examples[: args.n])
    train = TaskData.load(next(data.glob("train-*.json")))
    compact = PromptFormat(**spec["prompt"])
    full = PromptFormat()
    model, tok = load_model(artifact["correct"])
    out: dict = {"machine": {"threads": torch.get_num_threads()}, "n_test": len(test)}

    # 1. prompt
    lengths = {name: float(np.mean([len(tok(build_prompt(tok, e.text, test.labels, fmt))["input_ids"])
                                    for e in test.examples])) for name, fmt in (("full", full), ("compact", compact))}
    out["prompt_tokens"] = lengths
    for name, fmt in (("full", full), ("compact", compact)):
        m, s = timed(lambda fmt=fmt: evaluate_task(model, tok, test, fmt=fmt, batch_size=16))
        out[f"score_{name}_prompt"] = {"seconds": s, "accuracy": m.accuracy}

    # 2. precision
    bf16 = cast_copy(model, torch.bfloat16)
    variants = {"float32": (model, contextlib.nullcontext), "bf16_autocast":
                (model, lambda: torch.autocast("cpu", dtype=torch.bfloat16)), "bf16_weights": (bf16, contextlib.nullcontext)}
    reference = None
    for name, (m_, ctx) in variants.items():
        with ctx():
            lp, s = timed(lambda m_=m_: score_labels(m_, tok, [e.text for e in test.examples], test.labels, compact, 16))
            met = evaluate_task(m_, tok, test, fmt=compact, batch_size=16)
            cot, s_cot = timed(lambda m_=m_: evaluate_task(m_, tok, test, mode="cot", fmt=compact, batch_size=16,
                                                           max_new_tokens=spec["evaluation"]["cot_max_new_tokens"]))
            gk, s_gk = timed(lambda m_=m_: evaluate_knowledge(m_, tok, ["probe"], limit=args.gk, use_cache=False))
        probs = np.exp(lp)
        reference = probs if reference is None else reference
        out[name] = {"score_seconds": s, "accuracy": met.accuracy, "nll": met.nll,
                     "max_abs_prob_diff_vs_fp32": float(np.abs(probs - reference).max()),
                     "cot_seconds": s_cot, "cot_accuracy": cot.accuracy, "gk_seconds": s_gk,
                     "gk_accuracy": gk["probe"].acc}

    # 3. loads
    _, out["model_load_seconds"] = timed(lambda: load_model(artifact["correct"]))

    # 4. training throughput
    subset = train.subset(train.examples[: args.train])
    for name, flag in (("float32", False), ("bf16_autocast", True)):
        config = make_config(supervision="label", epochs=1, batch_size=8, lr=3e-4, max_length=256, bf16=flag)
        _, report = distill(copy.deepcopy(model), tok, subset, config, fmt=compact, progress=False)
        out[f"train_{name}"] = {"tokens_per_s": report.tokens_per_s, "seconds": report.seconds}
    # 5. scorer batch size
    for bs in (8, 16, 32):
        _, s = timed(lambda bs=bs: evaluate_task(bf16, tok, test, fmt=compact, batch_size=bs))
        out[f"score_bf16_batch{bs}_seconds"] = s

    # 6. general knowledge per benchmark
    from taskdistill import settings

    names = ["probe"] + (["arc_easy", "piqa", "hellaswag", "mmlu_cloze"] if settings.benchmarks_dir() else [])
    for name in names:
        gk, s = timed(lambda name=name: evaluate_knowledge(bf16, tok, [name], limit=args.gk, use_cache=False))
        out[f"gk_{name}"] = {"seconds": s, "accuracy": gk[name].acc, "chance": gk[name].chance, "n": gk[name].n}
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
