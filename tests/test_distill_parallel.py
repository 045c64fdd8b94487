"""Training placement and processes: the runtime's device and dtype, gradient checkpointing, DDP over gloo,
and what FSDP2 refuses without GPUs."""

from __future__ import annotations

import json
import os

import pytest
import torch
from distill_helpers import task_data

from taskdistill.distill.config import DistillConfig
from taskdistill.distill.train import distill
from taskdistill.errors import TaskDistillError
from taskdistill.models.runtime import resolve_runtime


def cfg(**kw):
    base = {"max_steps": 2, "batch_size": 4, "lr": 1e-2, "warmup_ratio": 0.0, "top_k": 8, "bf16": False}
    base.update(kw)
    return DistillConfig(**base)


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def _rank(out, config):
    """One rank of the DDP run (forked by launch): trains and writes which rows it saw."""
    from tiny import tiny_model, tiny_tokenizer

    from taskdistill.distill import parallel

    seen = []
    shard = parallel.Parallel.shard

    def spy(self, rows):
        mine, weight = shard(self, rows)
        seen.append([list(rows), mine, weight, self.strategy])
        return mine, weight

    parallel.Parallel.shard = spy
    distill(tiny_model(seed=0), tiny_tokenizer(), task_data(False), config, out_dir=out,
            runtime=resolve_runtime("cpu", "float32"), progress=False)
    (out / f"seen-{os.environ['RANK']}.json").write_text(json.dumps(seen))


def test_ddp_over_two_cpu_processes_matches_one_process(tiny, tmp_path):
    """Each rank trains on its half of every micro-batch; the averaged gradient is the whole batch's, so the
    weights after two steps and the logged losses equal a one-process run's."""
    from taskdistill.distill.launch import launch

    model, tok = tiny
    config = cfg(batch_size=3)  # 8 examples: micro-batches of 3, 3 and 2 rows (step 2's is split 2 / 1)
    _, single = distill(model(seed=0), tok(), task_data(False), config, out_dir=tmp_path / "one",
                        runtime=resolve_runtime("cpu", "float32"), progress=False)
    launch(_rank, (tmp_path / "two", config), processes=2, cpu=True)
    seen = [json.loads((tmp_path / "two" / f"seen-{r}.json").read_text()) for r in (0, 1)]
    for (rows, mine0, _, strategy), (rows1, mine1, _, _) in zip(*seen, strict=True):
        assert strategy == "ddp" and rows == rows1
        assert sorted(mine0 + mine1) == sorted(rows) and not set(mine0) & set(mine1)  # disjoint shards
    report = json.loads((tmp_path / "two" / "report.json").read_text())
    assert report["processes"] == 2 and report["strategy"] == "ddp"
    # the averaged gradient is the whole batch's: equal norms, equal logged losses
    assert [r["grad_norm"] for r in report["history"]] == pytest.approx([r["grad_norm"] for r in single.history],
                                                                        rel=1e-5)
    assert [r["loss"] for r in report["history"]] == pytest.approx([r["loss"] for r in single.history], abs=1e-5)
    # and equal weights after two AdamW steps of 1e-2 (measured: at most 7e-6 apart, float summation order)
    one, two = _weights(tmp_path / "one" / "model"), _weights(tmp_path / "two" / "model")
    start = {k: v.detach() for k, v in model(seed=0).state_dict().items()}
    assert all(torch.allclose(one[k], two[k], atol=5e-5) for k in one)
    assert all((one[k] - start[k]).abs().max() > 1e-3 for k in one)  # every tensor moved by ~ one step



def test_gradient_checkpointing_recomputes_the_same_losses(tiny):
    model, tok = tiny
    plain, checkpointed = (resolve_runtime("cpu", "float32", gradient_checkpointing=flag) for flag in (False, True))
    runs = [distill(model(seed=0), tok(), task_data(False), cfg(), runtime=r, progress=False)[1] for r in (plain,
                                                                                                          checkpointed)]
    assert [r["loss"] for r in runs[1].history] == pytest.approx([r["loss"] for r in runs[0].history], abs=1e-6)
    trained, _ = distill(model(seed=0), tok(), task_data(False), cfg(max_steps=1), runtime=checkpointed, progress=False)
    assert not trained.is_gradient_checkpointing  # switched off again on the returned student


def test_bf16_mixed_precision_keeps_fp32_masters(tiny):
    model, tok = tiny
    run = resolve_runtime("cpu", "bfloat16")
    trained, report = distill(model(seed=0), tok(), task_data(False), cfg(bf16="auto"), runtime=run, progress=False)
    assert {p.dtype for p in trained.parameters()} == {torch.float32}
    fp32 = distill(model(seed=0), tok(), task_data(False), cfg(), runtime=resolve_runtime("cpu", "float32"),
                   progress=False)[1]
    assert report.history[0]["loss"] == pytest.approx(fp32.history[0]["loss"], rel=2e-2)
    assert report.history[0]["loss"] != fp32.history[0]["loss"]  # bf16 autocast really ran


def test_strategy_choice_and_fsdp2_without_gpus(tiny, monkeypatch):
    from taskdistill.distill import parallel

    assert parallel.choose_strategy("auto", 10, None, 1) == "single"
    assert parallel.choose_strategy("auto", 50, 100, 2) == "ddp"
    assert parallel.choose_strategy("auto", 70, 100, 2) == "fsdp2"  # the replicated state would not leave room
    assert parallel.training_state_bytes(10, 10) == 160 and parallel.training_state_bytes(10, 1) == 52
    model, _ = tiny
    plugin = parallel.fsdp2_plugin(model(), "bf16", gradient_checkpointing=True)
    assert plugin.fsdp_version == 2 and plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]
    assert plugin.mixed_precision_policy.param_dtype == torch.bfloat16
    assert plugin.mixed_precision_policy.reduce_dtype == torch.float32 and plugin.activation_checkpointing
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(TaskDistillError, match="fsdp2 needs CUDA GPUs"):
        parallel.setup(resolve_runtime("cpu"), model(), "no", "fsdp2")
    with pytest.raises(TaskDistillError, match="Did you mean 'fsdp2'"):
        parallel.setup(resolve_runtime("cpu"), model(), "no", "fsdp")
