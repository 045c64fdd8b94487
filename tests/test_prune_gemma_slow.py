"""The real Gemma 3 270M (262k vocabulary, (1 + w) norms, scaled embeddings, sliding/full layers): prune, save,
reload with stock transformers."""

from __future__ import annotations

import math
import os

import pytest
import torch
from conftest import slow_home

pytestmark = pytest.mark.slow

ENGLISH = ["The capital of France is Paris, and the river that runs through it is the Seine.",
           "She opened the door and walked into the garden, where the roses were in full bloom."]


@pytest.fixture(scope="module")
def gemma_path():
    """The built-in gemma3-270m, pulled once into the shared test home."""
    os.environ["TASKDISTILL_HOME"] = str(slow_home())
    from taskdistill.models import builtin

    return builtin.pull("gemma3-270m")


def lm_loss(model, batch) -> float:
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.inference_mode():
        return float(model(**batch, labels=labels).loss)


def test_gemma3_mixed_pruning(gemma_path, tmp_path):
    from transformers import AutoModelForCausalLM

    from taskdistill.data.load import load_task_data
    from taskdistill.models.load import load_model, save_model
    from taskdistill.prune import count_parameters, plan_shape, prune

    model, tok = load_model(str(gemma_path))
    assert type(model).__name__ == "Gemma3ForCausalLM" and model.config.model_type == "gemma3_text"
    assert count_parameters(model) == count_parameters(model.config) == (268_098_176, 100_326_016)
    calib = [e.text for e in load_task_data("synthetic:n=32").examples]

    plan = plan_shape(model.config, 0.8, "mixed")
    pruned, report = prune(model, tok, 0.8, calib, axes="mixed")
    assert report.after == plan.as_dict() and report.fraction_total == pytest.approx(0.8, rel=0.01)
    assert plan.num_hidden_layers < 18 and plan.hidden_size < 640 and plan.intermediate_size < 2048
    assert count_parameters(pruned) == count_parameters(pruned.config) == plan.parameters(model.config)
    assert len(pruned.config.layer_types) == plan.num_hidden_layers
    assert "full_attention" in pruned.config.layer_types and "sliding_attention" in pruned.config.layer_types

    save_model(pruned, tok, tmp_path / "pruned")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "pruned").eval()
    assert count_parameters(again) == count_parameters(pruned)
    assert again.config.layer_types == pruned.config.layer_types
    batch = tok(ENGLISH, return_tensors="pt", padding=True)
    with torch.inference_mode():
        assert torch.allclose(again(**batch).logits, pruned(**batch).logits, atol=1e-5)
    teacher, student = lm_loss(model, batch), lm_loss(again, batch)
    assert math.isfinite(student) and teacher < student, (teacher, student)
