"""Schedules and the iterative prune → recover → evaluate driver."""

from __future__ import annotations

import pytest
import torch
from tiny import CORPUS, tiny_model, tiny_tokenizer

from taskdistill.errors import TaskDistillError
from taskdistill.prune import api
from taskdistill.prune.params import count_parameters
from taskdistill.prune.schedule import iterative_prune, parse_schedule


def test_parse_schedule_forms():
    assert parse_schedule("0.5") == [0.5]
    assert parse_schedule(0.5) == [0.5]
    assert parse_schedule("paper") == [0.79, 0.58, 0.37, 0.16]
    assert parse_schedule("0.8, 0.6,0.4") == [0.8, 0.6, 0.4]
    geometric = parse_schedule("geometric:0.5:4")
    assert geometric == pytest.approx([0.5 ** 0.25, 0.5 ** 0.5, 0.5 ** 0.75, 0.5], abs=1e-6)
    assert geometric[-1] == 0.5
    steps = [a - b for a, b in zip([1.0, *parse_schedule("paper")], parse_schedule("paper"))]
    assert steps == pytest.approx([0.21] * 4)  # the paper's constant step


@pytest.mark.parametrize("spec, message", [
    ("0.6,0.8", "strictly decreasing"), ("1.2", r"outside \(0, 1\]"), ("0", r"outside \(0, 1\]"),
    ("geometric:0.5", "geometric:FINAL:STEPS"), ("geometric:0.5:0", "STEPS"), ("fast", "preset"), ("", "empty"),
])
def test_parse_schedule_errors(spec, message):
    with pytest.raises(TaskDistillError, match=message):
        parse_schedule(spec)


def test_iterative_driver_recovers_and_keeps_fractions_relative_to_the_original(monkeypatch):
    model, tok = tiny_model("qwen3", num_hidden_layers=6), tiny_tokenizer()
    original = count_parameters(model)
    measured_sizes, events = [], []
    real = api.compute_importance

    def spy(m, *args, **kwargs):
        measured_sizes.append(count_parameters(m)[0])
        return real(m, *args, **kwargs)

    monkeypatch.setattr(api, "compute_importance", spy)

    def recover(m, tokenizer, info):
        events.append(("recover", info.step, count_parameters(m)[0]))
        with torch.no_grad():  # a visible change, so the next step must measure the recovered model
            m.model.norm.weight.mul_(1.5)
        m.recovered = info.step
        return m

    def on_step(info, m):
        events.append(("on_step", info.step, getattr(m, "recovered", None)))
        assert info.report.reference_params == original[0]
        assert info.report.fraction_total == pytest.approx(info.keep_fraction, rel=0.01)
        assert info.report.fraction_non_embedding == count_parameters(m)[1] / original[1]

    final = iterative_prune(model, tok, "0.8,0.6,0.4", CORPUS, recover=recover, on_step=on_step, axes="mixed")
    assert [e[:2] for e in events] == [("recover", 1), ("on_step", 1), ("recover", 2), ("on_step", 2),
                                       ("recover", 3), ("on_step", 3)]
    assert [e[2] for e in events if e[0] == "on_step"] == [1, 2, 3]
    assert measured_sizes[0] == original[0]  # step 1 measures the original ...
    assert measured_sizes[1:] == [e[2] for e in events if e[0] == "recover"][:2]  # ... then the current model
    assert count_parameters(final)[0] == pytest.approx(0.4 * original[0], rel=0.01)


def test_default_recovery_is_identity():
    model, tok = tiny_model("llama"), tiny_tokenizer()
    seen = []
    final = iterative_prune(model, tok, [0.7], CORPUS, on_step=lambda info, m: seen.append(m))
    assert seen == [final]
    assert count_parameters(final)[0] == pytest.approx(0.7 * count_parameters(model)[0], rel=0.01)
