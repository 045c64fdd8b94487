"""Measured peaks for the memory estimator's test (run as a subprocess: a fresh heap per measurement run).

``python memory_probe.py HIDDEN LAYERS INTERMEDIATE [...]`` prints one JSON object per model: the resident-set
rise (bytes) of loading a random Llama from disk and then pruning it to κ = 0.5, training it 2 steps, or
scoring a test set, plus the sequence lengths the estimate needs. glibc's mmap threshold is pinned (the
caller sets MALLOC_MMAP_THRESHOLD_), so freed tensors go back to the system between measurements.
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
from pathlib import Path

import torch
from tiny import tiny_tokenizer
from transformers import AutoModelForCausalLM, LlamaConfig

from taskdistill.data.load import load_task_data
from taskdistill.evaluate.cost import PeakRSS
from taskdistill.models.load import load_model, save_model
from taskdistill.models.prompts import build_prompt, encode

BATCH = 8


def config(hidden: int, layers: int, intermediate: int) -> LlamaConfig:
    return LlamaConfig(vocab_size=len(tiny_tokenizer()), hidden_size=hidden, intermediate_size=intermediate,
                       num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=4, head_dim=hidden // 8,
                       tie_word_embeddings=True, pad_token_id=0, bos_token_id=0, eos_token_id=2)


def probe(hidden: int, layers: int, intermediate: int) -> dict:
    from taskdistill.distill.batches import build_sequences
    from taskdistill.distill.config import DistillConfig
    from taskdistill.distill.train import distill
    from taskdistill.evaluate.task import evaluate_task
    from taskdistill.prune.api import prune

    tok = tiny_tokenizer()
    folder = Path(tempfile.mkdtemp()) / "model"
    torch.manual_seed(0)
    save_model(AutoModelForCausalLM.from_config(config(hidden, layers, intermediate)), tok, folder)
    data = load_task_data("synthetic:n=64,seed=0,granularity=coarse")
    train, test = data.subset(data.examples[:24]), data.subset(data.examples[:16])
    calib = [e.text for e in data.examples[:16]]
    out = {}

    def measure(name, work):
        gc.collect()
        with PeakRSS() as memory:
            work()
        gc.collect()
        out[name] = memory.delta_mb * 2**20 if memory.delta_mb is not None else None

    def pruning():
        model, t = load_model(str(folder))
        pruned, _ = prune(model, t, 0.5, calib, axes="width")
        out["child_params"] = sum(p.numel() for p in pruned.parameters())

    def training():
        model, t = load_model(str(folder))
        distill(model, t, train, DistillConfig(max_steps=2, batch_size=BATCH, lr=1e-4, bf16=False, max_length=1024),
                progress=False)  # step 2's backward is the peak: weights, AdamW states, gradients, activations

    def scoring():
        model, t = load_model(str(folder))
        evaluate_task(model, t, test, batch_size=BATCH)

    measure("prune", pruning)
    measure("train", training)
    measure("evaluate", scoring)
    seqs, _ = build_sequences(tok, train, cot=False, max_length=1024)
    out["train_tokens"] = max(len(s.input_ids) for s in seqs)
    out["eval_tokens"] = max(len(encode(tok, build_prompt(tok, e.text, data.labels))[0]) for e in test.examples)
    out["calib_tokens"] = max(len(tok(t)["input_ids"]) for t in calib)
    from taskdistill.evaluate.scoring import _Block
    from taskdistill.evaluate.task import label_continuations

    out["label_block"] = _Block(label_continuations(tok, data.labels)).size
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    args = [int(a) for a in sys.argv[1:]]
    for i in range(0, len(args), 3):
        print(json.dumps(probe(*args[i : i + 3])), flush=True)
