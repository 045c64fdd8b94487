"""The distillation loop: golden losses, exact resume, KL targets, chunking, guards, bad input."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from distill_helpers import LABELS, sharp_teacher, task_data

from taskdistill.distill import batches
from taskdistill.distill.config import DistillConfig
from taskdistill.distill.train import combine, distill, micro_terms
from taskdistill.errors import TaskDistillError
from taskdistill.models.prompts import answer, build_prompt, cot_answer


def cfg(**kw):
    base = dict(max_steps=2, batch_size=4, lr=1e-2, warmup_ratio=0.0, top_k=8, bf16=False)  # fp32: machine-independent
    base.update(kw)
    return DistillConfig(**base)


def test_golden_two_step_losses(tiny):
    model, tok = tiny
    _, report = distill(model(seed=0), tok(), task_data(False), cfg(), progress=False)
    # Recorded once from this exact setup; pins tokenisation, masking, the loss and the optimiser.
    assert [r["loss"] for r in report.history] == pytest.approx(GOLDEN_LABEL, abs=1e-4)
    _, report = distill(model(seed=0), tok(), task_data(), cfg(supervision="blended", lam=0.5),
                        teacher=sharp_teacher(model), progress=False)
    assert [r["loss"] for r in report.history] == pytest.approx(GOLDEN_BLENDED, abs=1e-4)


GOLDEN_LABEL = [5.73562, 5.258248]
GOLDEN_BLENDED = [5.401852, 5.405711]


def test_sequences_train_exactly_the_evaluated_answer(tiny):
    _, tok = tiny
    tok = tok()
    data = task_data()
    ex = data.examples[0]
    seqs, counts = batches.build_sequences(tok, data, cot=False, max_length=512)
    prompt = build_prompt(tok, ex.text, LABELS)
    assert tok.decode(seqs[0].input_ids[: seqs[0].target_pos[0]]) == prompt
    assert tok.decode([seqs[0].input_ids[p] for p in seqs[0].target_pos]) == answer(ex.label)
    assert counts == {"used": 8, "no_trace": 0, "too_long": 0}
    cot_seqs, _ = batches.build_sequences(tok, data, cot=True, max_length=512)
    s = cot_seqs[0]
    label_text = tok.decode([s.input_ids[p] for p, lab in zip(s.target_pos, s.is_label) if lab])
    trace_text = tok.decode([s.input_ids[p] for p, lab in zip(s.target_pos, s.is_label) if not lab])
    assert label_text.strip() == answer(ex.label)
    assert (trace_text + label_text) == cot_answer(ex.cot, ex.label)
    assert tok.decode(s.input_ids[: s.target_pos[0]]) == build_prompt(tok, ex.text, LABELS, cot=True)


def test_length_grouped_batches_cover_everything_once_and_are_deterministic():
    lengths = [5, 50, 7, 48, 6, 49, 8, 47, 9]
    a = batches.length_grouped_batches(lengths, 3, seed=1, epoch=0, group=1)
    assert sorted(i for b in a for i in b) == list(range(9))
    assert a == batches.length_grouped_batches(lengths, 3, seed=1, epoch=0, group=1)
    assert a != batches.length_grouped_batches(lengths, 3, seed=1, epoch=1, group=1)
    lengths = [5, 50, 6, 51, 7, 52]
    grouped = batches.length_grouped_batches(lengths, 3, seed=1, epoch=0, group=2)
    pad = sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in grouped)
    assert pad == 6  # sorted inside the mega-batch: short with short, long with long


def test_exact_resume_gives_identical_next_step_losses(tiny, tmp_path):
    model, tok = tiny
    config = cfg(max_steps=4, batch_size=2, checkpoint_every=2, supervision="kl")
    teacher = sharp_teacher(model)
    _, full = distill(model(seed=0), tok(), task_data(), config, teacher=teacher, out_dir=tmp_path / "a", progress=False)

    def crash(step, record):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distill(model(seed=0), tok(), task_data(), config, teacher=teacher, out_dir=tmp_path / "b", progress=False,
                on_step=crash)
    assert not (tmp_path / "b" / "model").exists()
    _, resumed = distill(model(seed=0), tok(), task_data(), config, teacher=teacher, out_dir=tmp_path / "b",
                         progress=False)
    assert resumed.resumed_from == 2
    assert [r["loss"] for r in resumed.history[2:]] == [r["loss"] for r in full.history[2:]]
    lines = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4]
    from safetensors.torch import load_file

    wa = load_file(tmp_path / "a" / "model" / "model.safetensors")
    wb = load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_from_a_different_config_is_a_clear_error(tiny, tmp_path):
    model, tok = tiny

    def crash(step, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distill(model(seed=0), tok(), task_data(), cfg(max_steps=4, checkpoint_every=1), out_dir=tmp_path,
                progress=False, on_step=lambda s, r: crash(s, r) if s == 2 else None)
    with pytest.raises(TaskDistillError, match="different distillation config"):
        distill(model(seed=0), tok(), task_data(), cfg(max_steps=4, checkpoint_every=1, lr=5e-3), out_dir=tmp_path,
                progress=False)


def test_kl_from_full_vocab_cache_equals_direct_full_vocab_kl(tiny):
    model, tok = tiny
    tok = tok()
    student, teacher = model(seed=0), sharp_teacher(model)
    data = task_data()
    seqs, _ = batches.build_sequences(tok, data, cot=True, max_length=512)
    from taskdistill.distill.teacher_cache import build_cache

    cache = build_cache(teacher, seqs, k=None, temperature=2.0, vocab=None, pad_id=tok.pad_token_id, shard_size=3)
    assert len(cache.meta["shards"]) == 3 and cache.k == len(tok)
    batch = batches.collate(seqs[:4], tok.pad_token_id)
    config = cfg(supervision="cot_kl", temperature=2.0, top_k=None)
    with torch.no_grad():
        got = micro_terms(student, batch, config, cache.topk(batch), None)["loss"]
        s = student(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[batch.row, batch.pred_pos]
        t = teacher(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[batch.row, batch.pred_pos]
        direct = 4.0 * F.kl_div(F.log_softmax(s / 2, -1), F.log_softmax(t / 2, -1), log_target=True,
                                reduction="batchmean")
    assert got.item() == pytest.approx(direct.item(), rel=1e-4)
    assert direct.item() > 0.1


def test_cached_and_online_teacher_train_identically(tiny):
    model, tok = tiny
    teacher = sharp_teacher(model)
    runs = [
        distill(model(seed=0), tok(), task_data(), cfg(supervision="kl", online_teacher=online), teacher=teacher,
                progress=False)[1]
        for online in (False, True)
    ]
    assert [r["loss"] for r in runs[0].history] == pytest.approx([r["loss"] for r in runs[1].history], abs=1e-6)


def test_loss_does_not_depend_on_the_chunk_size(tiny):
    model, tok = tiny
    teacher = sharp_teacher(model)
    losses = []
    for chunk in (3, 4096):
        _, rep = distill(model(seed=0), tok(), task_data(), cfg(supervision="blended", logit_chunk=chunk, trace_ce=0.3),
                         teacher=teacher, progress=False)
        losses.append([r["loss"] for r in rep.history])
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def test_combine_formulas_by_hand():
    sums = torch.tensor([6.0, 20.0, 3.0, 8.0])  # ce_label, ce_trace, kl_label, kl_trace sums
    n_label, n_trace = 3, 10
    expect = {
        "label": 2.0,
        "kl": 1.0,
        "cot": 26.0 / 13,
        "cot_kl": 11.0 / 13,
        "blended": 0.25 * 0.8 + 0.75 * 2.0 + 0.5 * 2.0,
    }
    for sup, value in expect.items():
        got = combine(sums, n_label, n_trace, DistillConfig(supervision=sup, lam=0.25, trace_ce=0.5))
        assert got["loss"].item() == pytest.approx(value)
        assert got["kl_trace"].item() == pytest.approx(0.8)


def test_nan_guard_skips_then_stops(tiny):
    model, tok = tiny
    student = model(seed=0)
    with torch.no_grad():
        student.model.layers[0].mlp.up_proj.weight[0, 0] = float("nan")
    with pytest.raises(TaskDistillError, match="non-finite"):
        distill(student, tok(), task_data(), cfg(max_steps=10, max_bad_steps=3), progress=False)


def test_vocabulary_checks(tiny):
    model, tok = tiny
    n = len(tok())
    padded = sharp_teacher(model, vocab_size=n + 16)
    _, rep = distill(model(seed=0), tok(), task_data(), cfg(supervision="kl", max_steps=1), teacher=padded,
                     progress=False)
    assert rep.history[0]["kl_label"] > 0
    other = copy.deepcopy(tok())
    other.add_tokens(["<|extra-token|>"])
    with pytest.raises(TaskDistillError, match="teacher tokenizer .* differs from the student's"):
        distill(model(seed=0), tok(), task_data(), cfg(supervision="kl"), teacher=padded, teacher_tokenizer=other,
                progress=False)
    short = model(seed=2, vocab_size=n - 10)
    with pytest.raises(TaskDistillError, match="share one vocabulary"):
        distill(model(seed=0), tok(), task_data(), cfg(supervision="kl"), teacher=short, progress=False)


def test_bad_settings_are_one_line_errors(tiny):
    with pytest.raises(TaskDistillError, match="Did you mean 'blended'"):
        DistillConfig(supervision="blend")
    model, tok = tiny
    with pytest.raises(TaskDistillError, match="needs a teacher"):
        distill(model(seed=0), tok(), task_data(), cfg(supervision="cot_kl"), progress=False)
    with pytest.raises(TaskDistillError, match="no example has a chain-of-thought trace"):
        distill(model(seed=0), tok(), task_data(False), cfg(supervision="cot"), progress=False)
    with pytest.raises(TaskDistillError, match="exceeds"):
        distill(model(seed=0), tok(), task_data(), cfg(dataset_size=100), progress=False)


def test_bf16_auto_follows_the_device(monkeypatch):
    from taskdistill.distill import train
    from taskdistill.models import runtime

    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: True)
    assert train.use_bf16("auto", cpu) and not train.use_bf16(False, cpu)
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)
    assert not train.use_bf16("auto", cpu) and train.use_bf16(True, cpu)


def test_bf16_autocast_trains_close_to_fp32(tiny):
    model, tok = tiny
    runs = [distill(model(seed=0), tok(), task_data(False), cfg(bf16=flag), progress=False)[1] for flag in (False, True)]
    assert runs[1].history[0]["loss"] == pytest.approx(runs[0].history[0]["loss"], rel=2e-2)
    assert runs[1].history[0]["loss"] != runs[0].history[0]["loss"]  # autocast really ran in bf16
