"""Real SmolLM2 teacher: the top-k cache on real distributions, and the vocabulary check."""

from __future__ import annotations

import copy

import distill_helpers  # noqa: F401  (single-threaded torch)
import pytest
import torch

from taskdistill.distill import batches, losses
from taskdistill.distill.teacher_cache import build_cache
from taskdistill.distill.train import shared_vocab


@pytest.mark.slow
def test_topk_cache_on_real_teacher(teacher_path):
    from taskdistill.data.load import load_task_data
    from taskdistill.models.load import load_model

    teacher, tok = load_model(str(teacher_path))
    data = load_task_data("synthetic:n=40,seed=0")
    data = data.subset(data.examples[:2])
    seqs, _ = batches.build_sequences(tok, data, cot=False, max_length=512)
    batch = batches.collate(seqs, tok.pad_token_id)
    student = copy.deepcopy(teacher)
    with torch.no_grad():
        student.model.norm.weight.mul_(0.8)  # a different, still sensible distribution
    assert shared_vocab(student, teacher, tok) is None  # same 49,152-token vocabulary
    top64 = build_cache(teacher, seqs, k=64, temperature=1.0, vocab=None, pad_id=tok.pad_token_id)
    full = build_cache(teacher, seqs, k=None, temperature=1.0, vocab=None, pad_id=tok.pad_token_id)
    assert top64.k == 64 and full.k == 49152
    with torch.no_grad():
        s = student(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[batch.row, batch.pred_pos]
        exact = losses.kd_loss(s, *full.topk(batch))
        approx = losses.kd_loss(s, *top64.topk(batch))
        t = teacher(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[batch.row, batch.pred_pos]
    direct = torch.nn.functional.kl_div(torch.log_softmax(s, -1), torch.log_softmax(t, -1), log_target=True,
                                        reduction="none").sum(-1)
    torch.testing.assert_close(exact, direct, rtol=1e-3, atol=1e-5)
    # Merging the outside mass into one bucket can only lose divergence (data processing inequality).
    assert (approx <= exact + 1e-5).all() and approx.sum() > 0.5 * exact.sum()
