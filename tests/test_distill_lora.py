"""LoRA students: merged weights give the unmerged logits; only adapters train; bad targets are errors."""

from __future__ import annotations

import pytest
import torch
from distill_helpers import task_data

from taskdistill.distill.config import DistillConfig
from taskdistill.distill.lora import apply_lora, merge
from taskdistill.distill.train import distill
from taskdistill.errors import TaskDistillError


def test_merged_lora_gives_unmerged_logits(tiny):
    model, _ = tiny
    peft_model = apply_lora(model(seed=0), DistillConfig(lora_rank=4, lora_alpha=8))
    with torch.no_grad():  # non-zero adapters (B starts at zero, which would make the test vacuous)
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    ids = torch.randint(3, 300, (2, 12))
    with torch.no_grad():
        unmerged = peft_model(input_ids=ids).logits
        with peft_model.disable_adapter():
            plain = peft_model(input_ids=ids).logits
        merged_model = merge(peft_model)
        merged = merged_model(input_ids=ids).logits
    assert not torch.allclose(unmerged, plain, atol=1e-4)  # the adapters matter
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-5)
    assert type(merged_model).__name__ == "LlamaForCausalLM"
    assert not any("lora" in n for n, _ in merged_model.named_parameters())


def test_lora_training_changes_only_adapters_then_saves_a_plain_model(tiny, tmp_path):
    model, tok = tiny
    student = model(seed=0)
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    config = DistillConfig(method="lora", max_steps=2, batch_size=4, lr=5e-2, warmup_ratio=0.0, lora_rank=4)
    merged, report = distill(student, tok(), task_data(False), config, out_dir=tmp_path, progress=False)
    assert report.history[1]["loss"] < report.history[0]["loss"]
    after = dict(merged.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    targets = set(config.lora_targets)
    assert changed and all(n.split(".")[-2] in targets for n in changed)  # only adapted projections moved
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    ids = torch.randint(3, 300, (1, 10))
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, merged(input_ids=ids).logits)


def test_lora_target_matching_nothing_is_a_clear_error(tiny):
    model, _ = tiny
    with pytest.raises(TaskDistillError, match="match no linear layer.*q_proj"):
        apply_lora(model(seed=0), DistillConfig(lora_targets=("q_proj", "query_key_value")))
