"""Cost figures of two students checked against independent measurements.

Students: the SmolLM2-135M teacher and a copy pruned to κ = 0.5 (width). For each:
  parameters     measure_cost vs the tensor shapes stored in the safetensors file (save_pretrained)
  FLOPs/token    analytic formula vs torch.utils.flop_counter.FlopCounterMode on an eager forward
  prefill tok/s  measure_cost vs torch.utils.benchmark.Timer around one plain forward
  latency        measure_cost (batch 1) vs a plain perf_counter loop around model.generate
Prints a table of ratios (1.00 = agreement) and the measure_cost wall time.

Run: TASKDISTILL_HOME=.test-home python benchmarks/bench_cost.py [--repeats 3] [--batch 8]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors import safe_open
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TASKDISTILL_HOME", str(ROOT / ".test-home"))

from taskdistill.evaluate import cost
from taskdistill.models.load import load_model


def stored_parameters(model) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        total = 0
        for f in Path(tmp).glob("*.safetensors"):
            with safe_open(f, "pt") as fh:
                total += sum(math.prod(fh.get_slice(k).get_shape()) for k in fh.keys())
        return total


def counted_flops_per_token(model, tokens: int) -> float:
    impl = model.config._attn_implementation
    model.config._attn_implementation = "eager"  # the fused sdpa kernel is invisible to the counter
    ids = torch.randint(0, model.config.vocab_size, (1, tokens))
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(input_ids=ids)
    model.config._attn_implementation = impl
    return counter.get_total_flops() / tokens


def plain_prefill_tokens_per_s(model, ids) -> float:
    timer = benchmark.Timer(stmt="model(input_ids=ids)", globals={"model": model, "ids": ids},
                            num_threads=torch.get_num_threads())
    with torch.inference_mode():
        return ids.shape[1] / timer.blocked_autorange(min_run_time=1.0).median


def plain_latency_ms(model, tok, prompt: str, new_tokens: int, repeats: int) -> float:
    batch = tok([prompt], return_tensors="pt")
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    times = []
    with torch.inference_mode():
        model.generate(**batch, **kwargs)
        for _ in range(repeats):
            start = time.perf_counter()
            model.generate(**batch, **kwargs)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def check(name: str, model, tok, repeats: int, batch: int) -> dict:
    prompts = cost.default_prompts(tok, batch)
    start = time.perf_counter()
    c = cost.measure_cost(model, tok, prompts, batch_sizes=(1, batch), new_tokens=16, repeats=repeats)
    wall = time.perf_counter() - start
    tokens = round(c.context_length)
    ids = tok([prompts[0]], return_tensors="pt", add_special_tokens=False)["input_ids"]
    return {
        "student": name,
        "params": c.params_total,
        "params ratio": c.params_total / stored_parameters(model),
        "flops/token": c.flops_per_token,
        "flops ratio": cost.flops_per_token(model, tokens) / counted_flops_per_token(model, tokens),
        "prefill tok/s": c.prefill_tokens_per_s[1],
        "prefill ratio": c.prefill_tokens_per_s[1] / plain_prefill_tokens_per_s(model, ids),
        "latency ms": c.latency_ms[1],
        "latency ratio": c.latency_ms[1] / plain_latency_ms(model, tok, prompts[0], 16, repeats),
        "decode tok/s": c.decode_tokens_per_s[1],
        f"latency ms (B={batch})": c.latency_ms[batch],
        "peak RSS MB": c.peak_rss_mb,
        "measure_cost s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="the batched size measured besides batch 1")
    parser.add_argument("--keep", type=float, default=0.5)
    args = parser.parse_args()
    from taskdistill.prune.api import prune

    model, tok = load_model("smollm2-135m-instruct")
    rows = [check("SmolLM2-135M teacher", model, tok, args.repeats, args.batch)]
    print("teacher measured", file=sys.stderr)
    calib = [h for h in cost.HEADLINES] * 4
    pruned, _ = prune(model, tok, args.keep, calib, axes="width")
    rows.append(check(f"pruned κ={args.keep}", pruned, tok, args.repeats, args.batch))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs", file=sys.stderr)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
                                for v in r.values()) + " |")


if __name__ == "__main__":
    main()
