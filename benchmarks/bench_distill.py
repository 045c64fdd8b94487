"""KD training step: taskdistill vs TRL's GKDTrainer vs a plain HF Trainer with a KD loss.

    python benchmarks/bench_distill.py [--steps 4 --batch-size 4 --threads 1 --only ours_cached,trl_gkd]

Same student, teacher, data, batch and sequence length for every trainer: SmolLM2-shaped random
Llama models (SmolLM2-135M's width, heads and 49,152-token vocabulary; teacher 6 layers, student 3,
so a 2-core CPU finishes in minutes), prompts of the synthetic 35-class task with the SmolLM2 chat
template, forward-KL (τ = 1) on the answer tokens, AdamW. Each trainer runs in its own subprocess, so
peak memory (``ru_maxrss``) is its own. tokens/s counts non-pad tokens over the timed steps (the
first step is a warm-up). MFU = the FLOPs a KD step needs (6·P·T for the student's non-embedding
weights, 2·P·T for the teacher's when it runs in the step, 6·H·V / 2·H·V per supervised position for
the LM heads; the same count for every trainer) / step time / a measured fp32 matmul peak.
``ours_cached_bf16`` is our step under CPU bf16 autocast (the measurement behind ``bf16="auto"``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

TRAINERS = ("ours_cached", "ours_online", "trl_gkd", "hf_trainer_kd", "ours_cached_bf16")


def models(seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    def make(layers, s):
        torch.manual_seed(s)
        cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers,
                          num_attention_heads=9, num_key_value_heads=3, head_dim=64, tie_word_embeddings=True,
                          max_position_embeddings=2048, pad_token_id=2, bos_token_id=1, eos_token_id=2)
        return LlamaForCausalLM(cfg)

    return make(3, seed), make(6, seed + 1)


def task(n: int):
    from taskdistill.data.load import load_task_data

    return load_task_data(f"synthetic:n={n},seed=0")


def tokenizer():
    """SmolLM2's tokenizer (the built-in teacher's folder; pulled once into $TASKDISTILL_HOME)."""
    from transformers import AutoTokenizer

    from taskdistill.models.load import prepare_tokenizer, resolve

    tok = AutoTokenizer.from_pretrained(resolve("smollm2-135m-instruct")[0])
    prepare_tokenizer(tok)
    return tok


def matmul_peak(seconds: float = 3.0) -> float:
    """Measured fp32 GEMM throughput (FLOP/s) of this machine at the current thread count."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start)


def useful_flops(student, teacher, tokens: int, supervised: int, teacher_in_step: bool) -> float:
    def non_emb(m):
        return sum(p.numel() for n, p in m.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)

    hv = student.config.hidden_size * student.config.vocab_size
    flops = 6 * non_emb(student) * tokens + 6 * hv * supervised
    if teacher_in_step:
        flops += 2 * non_emb(teacher) * tokens + 2 * hv * supervised
    return flops


def run_ours(args, online: bool, bf16: bool = False) -> dict:
    from taskdistill.distill.config import DistillConfig
    from taskdistill.distill.train import distill

    student, teacher = models()
    tok = tokenizer()
    data = task(args.batch_size * (args.steps + 1))
    config = DistillConfig(supervision="kl", method="logit", max_steps=args.steps + 1, batch_size=args.batch_size,
                           lr=1e-4, warmup_ratio=0.0, top_k=args.top_k, online_teacher=online, bf16=bf16)
    times, records = [], []
    last = [time.perf_counter()]

    def on_step(step, record):
        now = time.perf_counter()
        times.append(now - last[0])
        records.append(record)
        last[0] = now

    if not online:  # the cache is built once per (teacher, data) and reused by every run: not a step cost
        from taskdistill.distill.batches import build_sequences
        from taskdistill.distill.teacher_cache import build_cache

        seqs, _ = build_sequences(tok, data, cot=False, max_length=512)
        t0 = time.perf_counter()
        build_cache(teacher, seqs, k=args.top_k, temperature=1.0, vocab=None, pad_id=tok.pad_token_id)
        cache_s = time.perf_counter() - t0
    last[0] = time.perf_counter()
    distill(student, tok, data, config, teacher=teacher, progress=False, on_step=on_step)
    out = {"timed_s": sum(times[1:]), "tokens": records[-1]["tokens"] - records[0]["tokens"],
           "supervised": sum(r["positions"] for r in records[1:]), "teacher_in_step": online}
    if not online:
        out["cache_build_s"] = round(cache_s, 2)
    return out


def hf_dataset(tok, data):
    from datasets import Dataset

    from taskdistill.models.prompts import PromptFormat, answer, user_message

    fmt = PromptFormat()
    rows = [{"messages": [{"role": "user", "content": user_message(e.text, data.labels, fmt)},
                          {"role": "assistant", "content": answer(e.label)}]} for e in data.examples]
    return Dataset.from_list(rows)


class Timer:
    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class CB(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                timer.begin = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                timer.times.append(time.perf_counter() - timer.begin)

        self.times, self.tokens, self.supervised, self.callback = [], [], [], CB()

    def count(self, inputs):
        self.tokens.append(int(inputs["attention_mask"].sum()))
        self.supervised.append(int((inputs["labels"] != -100).sum()))


def run_trl(args) -> dict:
    os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    student, teacher = models()
    tok = tokenizer()
    data = task(args.batch_size * (args.steps + 1))
    timer = Timer()

    class Counted(GKDTrainer):
        def compute_loss(self, model, inputs, *a, **kw):
            timer.count(inputs)
            return super().compute_loss(model, inputs, *a, **kw)

    cfg = GKDConfig(output_dir=args.tmp + "/trl", per_device_train_batch_size=args.batch_size, max_steps=args.steps + 1,
                    learning_rate=1e-4, lmbda=0.0, beta=0.0, temperature=1.0, seq_kd=False, report_to=[],
                    use_cpu=True, save_strategy="no", logging_strategy="no", max_length=512, bf16=False,
                    lr_scheduler_type="constant", dataloader_num_workers=0)
    trainer = Counted(model=student, teacher_model=teacher, args=cfg, train_dataset=hf_dataset(tok, data),
                      processing_class=tok, callbacks=[timer.callback])
    trainer.train()
    return {"timed_s": sum(timer.times[1:]), "tokens": sum(timer.tokens[1:]), "supervised": sum(timer.supervised[1:]),
            "teacher_in_step": True, "version": __import__("trl").__version__}


def run_hf(args) -> dict:
    import torch.nn.functional as F
    from transformers import Trainer, TrainingArguments

    student, teacher = models()
    tok = tokenizer()
    data = task(args.batch_size * (args.steps + 1))
    timer = Timer()
    from trl.experimental.utils import (
        DataCollatorForChatML,  # the same tokenisation as the TRL run
    )

    class KDTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            timer.count(inputs)
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            with __import__("torch").no_grad():
                t = teacher(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
            mask = inputs["labels"][:, 1:] != -100
            s_logp = F.log_softmax(out.logits[:, :-1][mask], -1)
            t_logp = F.log_softmax(t[:, :-1][mask], -1)
            loss = F.kl_div(s_logp, t_logp, log_target=True, reduction="batchmean")
            return (loss, out) if return_outputs else loss

    targs = TrainingArguments(output_dir=args.tmp + "/hf", per_device_train_batch_size=args.batch_size,
                              max_steps=args.steps + 1, learning_rate=1e-4, report_to=[], use_cpu=True,
                              save_strategy="no", logging_strategy="no", remove_unused_columns=False,
                              lr_scheduler_type="constant", dataloader_num_workers=0)
    teacher.eval()
    trainer = KDTrainer(model=student, args=targs, train_dataset=hf_dataset(tok, data),
                        data_collator=DataCollatorForChatML(tokenizer=tok, max_length=512), callbacks=[timer.callback])
    trainer.train()
    return {"timed_s": sum(timer.times[1:]), "tokens": sum(timer.tokens[1:]), "supervised": sum(timer.supervised[1:]),
            "teacher_in_step": True}


def one(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    runner = {"ours_cached": lambda: run_ours(args, False), "ours_online": lambda: run_ours(args, True),
              "ours_cached_bf16": lambda: run_ours(args, False, bf16=True),
              "trl_gkd": lambda: run_trl(args), "hf_trainer_kd": lambda: run_hf(args)}[args.one]
    try:
        result = runner()
    except Exception as exc:  # reported in the table, e.g. TRL failing to run here
        result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4, help="timed steps (after one warm-up step)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--top-k", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default=",".join(TRAINERS), help="comma-separated trainers to run")
    ap.add_argument("--one", choices=TRAINERS, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", default=os.path.join(tempfile.gettempdir(), "taskdistill-bench-distill"))
    args = ap.parse_args()
    if args.one:
        return one(args)
    import torch

    torch.set_num_threads(args.threads)
    peak = matmul_peak()
    student, teacher = models()
    rows = {}
    for name in args.only.split(","):
        cmd = [sys.executable, __file__, "--one", name, "--steps", str(args.steps), "--batch-size",
               str(args.batch_size), "--top-k", str(args.top_k), "--threads", str(args.threads), "--tmp", args.tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        rows[name] = json.loads(line[-1][7:]) if line else {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        r = rows[name]
        if "timed_s" in r:
            r["tokens_per_s"] = r["tokens"] / r["timed_s"]
            flops = useful_flops(student, teacher, r["tokens"], r["supervised"], r["teacher_in_step"])
            r["mfu"] = flops / r["timed_s"] / peak
        print(name, json.dumps(r), flush=True)
    base = rows.get("trl_gkd") or rows[next(iter(rows))]
    print(f"\nmatmul peak: {peak / 1e9:.1f} GFLOP/s ({args.threads} thread(s))")
    ref = "TRL" if "trl_gkd" in rows else "first"
    print(f"{'trainer':16} {'tokens/s':>9} {'vs ' + ref:>9} {'peak MB':>8} {'vs ' + ref:>9} {'MFU':>6}")
    for name, r in rows.items():
        if "tokens_per_s" not in r:
            print(f"{name:16} error: {r.get('error')}")
            continue
        tput = r["tokens_per_s"] / base["tokens_per_s"] if "tokens_per_s" in base else float("nan")
        mem = r["peak_rss_mb"] / base["peak_rss_mb"] if "peak_rss_mb" in base else float("nan")
        print(f"{name:16} {r['tokens_per_s']:9.1f} {tput:9.2f} {r['peak_rss_mb']:8.0f} {mem:9.2f} {r['mfu']:6.1%}")


if __name__ == "__main__":
    main()
