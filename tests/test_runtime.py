"""The runtime (device, dtype, autocast policy), its one-line refusals, and every stage on a placed model:
device cpu with float32 and bfloat16 weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from distill_helpers import sharp_teacher, task_data

from taskdistill.errors import TaskDistillError
from taskdistill.models import runtime as rt
from taskdistill.models.runtime import resolve_runtime

TOY_GPU = "Toy GPU (compute capability 7.0)"


@pytest.fixture
def two_old_gpus(monkeypatch):
    """Pretend two CUDA GPUs without bf16 are visible (the resolution logic only; nothing runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: TOY_GPU)


def test_auto_on_this_machine_is_the_cpu_in_float32():
    run = resolve_runtime()
    assert run.device == torch.device("cpu") and run.dtype == torch.float32 and not run.gradient_checkpointing
    assert resolve_runtime("cpu", "bfloat16").dtype == torch.bfloat16
    assert run.request() == {"device": "auto", "dtype": "auto", "gradient_checkpointing": False}


def test_bad_requests_are_one_line_naming_the_fix(two_old_gpus, monkeypatch):
    with pytest.raises(TaskDistillError, match=r"device 'cuda:2': only 2 CUDA GPU\(s\) are visible"):
        resolve_runtime("cuda:2")
    with pytest.raises(TaskDistillError, match="has no bfloat16 support .* use float16 or float32"):
        resolve_runtime("cuda", "bfloat16")
    gpu = resolve_runtime("cuda:1")
    assert gpu.device == torch.device("cuda", 1) and gpu.dtype == torch.float16  # auto without bf16: fp16
    assert gpu.training_precision() == "fp16" and gpu.gradient_checkpointing
    with pytest.raises(TaskDistillError, match="Did you mean 'bfloat16'"):
        resolve_runtime("cpu", "bfloat")
    with pytest.raises(TaskDistillError, match="the GPU index must be a number"):
        resolve_runtime("cuda:x")
    with pytest.raises(TaskDistillError, match="float16 kernels are missing"):
        resolve_runtime("cpu", "float16")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(TaskDistillError, match="no CUDA GPU is visible to this process") as err:
        resolve_runtime("cuda")
    assert "\n" not in str(err.value)


def test_training_precision_policy(monkeypatch):
    cpu = resolve_runtime("cpu")
    monkeypatch.setattr(rt, "cpu_has_bf16", lambda: True)  # measured 1.68x faster under bf16 autocast
    assert cpu.training_precision("auto") == "bf16" and cpu.training_precision(False) == "no"
    monkeypatch.setattr(rt, "cpu_has_bf16", lambda: False)  # emulated bf16: stay fp32
    assert cpu.training_precision("auto") == "no" and cpu.training_precision(True) == "bf16"
    assert resolve_runtime("cpu", "float32").training_precision("auto") == "no"
    assert resolve_runtime("cpu", "bfloat16").training_precision("auto") == "bf16"


def test_cli_refuses_a_missing_gpu_before_loading_anything():
    from typer.testing import CliRunner

    from taskdistill.cli import app

    for args, message in ((["--device", "cuda"], "no CUDA GPU is visible"), (["--dtype", "float16"], "float16 kernels")):
        result = CliRunner().invoke(app, ["eval", "task", "no-such-model", "--data", "synthetic:n=10", *args])
        assert result.exit_code == 2 and message in result.output
        assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_every_stage_runs_on_a_placed_model(tiny, tmp_path, dtype, one_thread):
    """load_model(runtime=…) places the weights; scoring, generation, general knowledge, importance, the teacher
    cache, cost and distillation then run with inputs and accumulators on the model's device and dtype."""
    from taskdistill.distill import batches
    from taskdistill.distill.config import DistillConfig
    from taskdistill.distill.teacher_cache import build_cache
    from taskdistill.distill.train import distill, training_dtype
    from taskdistill.evaluate.cost import measure_cost
    from taskdistill.evaluate.knowledge import evaluate_knowledge
    from taskdistill.evaluate.task import evaluate_task
    from taskdistill.models.generate import generate_texts
    from taskdistill.models.load import load_model, model_fingerprint, save_model
    from taskdistill.prune.importance import compute_importance

    tiny_model, tiny_tokenizer = tiny
    run = resolve_runtime("cpu", dtype)
    save_model(sharp_teacher(tiny_model), tiny_tokenizer(), tmp_path / "teacher")
    save_model(tiny_model(seed=0), tiny_tokenizer(), tmp_path / "student")
    model, tok = load_model(str(tmp_path / "teacher"), runtime=run)
    assert {p.dtype for p in model.parameters()} == {run.dtype} and rt.model_device(model) == run.device
    data = task_data()
    metrics = evaluate_task(model, tok, data, batch_size=4)
    assert 0 <= metrics.accuracy <= 1 and np.isfinite(metrics.nll)
    assert len(generate_texts(model, tok, [[5, 6, 7]], max_new_tokens=3)) == 1
    bench = tmp_path / "facts.jsonl"
    bench.write_text("".join(json.dumps({"question": f"Is {w} a word?", "choices": ["yes", "no"], "answer": i % 2})
                             + "\n" for i, w in enumerate(["cat", "dog", "sun", "sky"])))
    knowledge = evaluate_knowledge(model, tok, [f"jsonl:{bench}"], limit=4, use_cache=False)
    assert knowledge.results[0].n == 4
    importance = compute_importance(model, tok, [e.text for e in data.examples], batch_size=4)
    assert importance.neurons.dtype == torch.float32 and torch.isfinite(importance.neurons).all()
    seqs, _ = batches.build_sequences(tok, data, cot=False, max_length=512)
    cache = build_cache(model, seqs, k=4, temperature=1.0, vocab=None, pad_id=tok.pad_token_id)
    idx, logp = cache.example(0)
    assert idx.dtype == np.int32 and logp.dtype == np.float32 and np.isfinite(logp).all()
    cost = measure_cost(model, tok, batch_sizes=(1,), new_tokens=2, repeats=1)
    assert cost.weights_mb > 0 and cost.peak_device_mb is None  # no GPU: host memory only
    config = DistillConfig(max_steps=1, batch_size=4, supervision="kl", method="lora", lora_rank=2, top_k=4)
    student, _ = load_model(str(tmp_path / "student"), runtime=run, dtype=training_dtype(config, run))
    before = model_fingerprint(student)
    trained, report = distill(student, tok, data, config, teacher=model, runtime=run, progress=False)
    assert np.isfinite(report.final_loss) and model_fingerprint(trained) != before
    assert {p.dtype for p in trained.parameters()} == {run.dtype}  # LoRA: the frozen base keeps the runtime dtype
    logit = DistillConfig(max_steps=1, batch_size=4, bf16="auto")
    full, _ = load_model(str(tmp_path / "student"), runtime=run, dtype=training_dtype(logit, run))
    trained, report = distill(full, tok, data, logit, runtime=run, progress=False)
    assert {p.dtype for p in trained.parameters()} == {torch.float32}  # full fine-tuning: fp32 masters
    assert np.isfinite(report.final_loss)


def test_bfloat16_scores_stay_close_to_float32(tiny):
    from taskdistill.evaluate.task import score_labels

    tiny_model, tiny_tokenizer = tiny
    model, tok = tiny_model("qwen2"), tiny_tokenizer()
    data = task_data()
    texts = [e.text for e in data.examples]
    full = score_labels(model, tok, texts, data.labels)
    half = score_labels(model.to(torch.bfloat16), tok, texts, data.labels)
    assert np.abs(np.exp(full) - np.exp(half)).max() < 0.05  # class probabilities within 5 points


def test_device_map_spreads_whole_layers_over_gpus_then_the_host(tiny):
    """What a model larger than one GPU gets (accelerate on empty weights; no GPU needed to plan it)."""
    from tiny import tiny_config

    config = tiny_config("qwen2", num_hidden_layers=6)
    empty = rt.empty_model(config, torch.float32)
    total = sum(p.numel() * 4 for p in empty.parameters())
    layer = sum(p.numel() * 4 for p in empty.model.layers[0].parameters())
    budget = {0: total // 3, 1: total // 3, "cpu": 4 * total}
    device_map = rt.device_map_for(config, torch.float32, budget)
    layers = [device_map[f"model.layers.{i}"] for i in range(6)]  # whole layers: one entry each
    order = [device_map[k] for k in device_map]
    assert set(order) == {0, 1, "cpu"} and order == sorted(order, key=lambda d: 2 if d == "cpu" else d)
    assert "cpu" in layers and 1 in layers  # GPU 0 first (the embedding), then GPU 1, the rest on the host
    for device, cap in budget.items():  # each device holds whole layers within its budget
        assert sum(layer for d in layers if d == device) <= cap
    assert set(device_map) >= {"model.embed_tokens", "model.norm", "lm_head"}
