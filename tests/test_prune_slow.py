"""The real SmolLM2 teacher: shapes, sizes, stock reload, cached importance, ordered loss."""

from __future__ import annotations

import json

import pytest
import torch

pytestmark = pytest.mark.slow


def question_loss(model, tok, texts) -> float:
    batch = tok(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.inference_mode():
        return float(model(**batch, labels=labels).loss)


def test_smollm2_mixed_pruning(teacher_path, data_dir, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    from taskdistill.models.load import load_model, save_model
    from taskdistill.prune import importance
    from taskdistill.prune.api import prune
    from taskdistill.prune.params import count_parameters

    torch.manual_seed(0)
    model, tok = load_model(str(teacher_path))
    assert count_parameters(model) == count_parameters(model.config) == (134_515_008, 106_203_456)
    lines = (data_dir / "arc" / "ARC-Easy-Dev.jsonl").read_text().splitlines()
    calib = [json.loads(x)["question"]["stem"] for x in lines[:48]]
    held_out = [json.loads(x)["question"]["stem"] for x in lines[100:132]]

    mild, report = prune(model, tok, 0.79, calib, axes="mixed")
    assert report.fraction_total == pytest.approx(0.79, rel=0.01)
    assert mild.config.num_attention_heads % mild.config.num_key_value_heads == 0

    def no_recompute(*args, **kwargs):
        raise AssertionError("importance recomputed for the same model and calibration set")

    monkeypatch.setattr(importance, "_measure", no_recompute)
    severe, report = prune(model, tok, 0.37, calib, axes="mixed")  # importance comes from the cache
    assert report.fraction_total == pytest.approx(0.37, rel=0.01)
    assert severe.config.num_hidden_layers < model.config.num_hidden_layers

    save_model(severe, tok, tmp_path / "severe")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "severe").eval()
    batch = tok(held_out[:2], return_tensors="pt", padding=True)
    with torch.inference_mode():
        assert torch.allclose(again(**batch).logits, severe(**batch).logits, atol=1e-5)
    losses = [question_loss(m, tok, held_out) for m in (model, mild, severe)]
    assert losses[0] < losses[1] < losses[2], losses  # more pruning, no recovery: worse language modelling
