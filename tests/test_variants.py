"""One record per variant: a new architecture and a new supervision format, each defined inside its test
alone, run through their stage — the format through a tiny study and a law fit. (A new law form:
tests/test_laws_records.py; a new benchmark: tests/test_knowledge_records.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_study_run import tiny_spec, tiny_teacher
from tiny import CORPUS, tiny_tokenizer

from taskdistill.distill import supervision as formats
from taskdistill.errors import TaskDistillError
from taskdistill.prune import archs
from taskdistill.prune.api import prune
from taskdistill.prune.shape import TargetShape
from taskdistill.prune.surgery import prune_model


def _granite(**overrides):
    from transformers import AutoModelForCausalLM, GraniteConfig

    torch.manual_seed(0)
    config = GraniteConfig(vocab_size=len(tiny_tokenizer()), hidden_size=64, intermediate_size=128,
                           num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                           max_position_embeddings=512, embedding_multiplier=2.0, residual_multiplier=0.5,
                           attention_multiplier=0.3, logits_scaling=4.0, pad_token_id=0, bos_token_id=0,
                           eos_token_id=2, **overrides)
    return AutoModelForCausalLM.from_config(config).eval()


@pytest.fixture
def without_granite():
    saved = archs.ARCHITECTURES.pop("granite")
    yield
    archs.ARCHITECTURES["granite"] = saved


def test_a_new_architecture_is_one_record(without_granite):
    model = _granite()
    with pytest.raises(TaskDistillError, match="unsupported architecture 'granite'"):
        prune(model, tiny_tokenizer(), 0.7, CORPUS)
    # the whole definition of Granite for pruning: Llama's tensors, nothing else
    archs.register(archs.Architecture("granite", (*archs.PRE_NORMS, *archs.attention("attention_bias", "attention_bias"),
                                                  *archs.gated_mlp("mlp_bias"))))
    ids = tiny_tokenizer()(CORPUS[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model(**ids).logits
        for layer in model.model.layers:  # 32 dead neurons and 2 query heads (one per KV group) carry nothing
            layer.mlp.down_proj.weight[:, 96:] = 0
            layer.self_attn.o_proj.weight[:, 16:32] = 0
            layer.self_attn.o_proj.weight[:, 48:64] = 0
        zeroed = model(**ids).logits
    from test_prune import scores

    imp = scores(model)
    imp.neurons[:, 96:] = 0
    imp.heads[:, [1, 3]] = 0
    pruned = prune_model(model, imp, TargetShape(4, 64, 96, 2, 2, 16))
    with torch.no_grad():
        assert torch.allclose(pruned(**ids).logits, zeroed, atol=1e-5)
    assert not torch.allclose(before, zeroed)
    small, report = prune(_granite(), tiny_tokenizer(), 0.7, CORPUS, axes="mixed")
    assert abs(report.fraction_total - 0.7) <= 0.01 and small.config.model_type == "granite"


@pytest.fixture
def trace_only():
    """A supervision format defined here alone: cross entropy on the rationale tokens only."""
    record = formats.register(formats.Supervision("trace_only", "CE on the rationale tokens only",
                                                  lambda terms, config: terms.mean("ce_trace"), traces=True,
                                                  shown=("ce_trace",)))
    yield record
    del formats.SUPERVISIONS["trace_only"]


def test_a_new_supervision_format_runs_through_a_tiny_study_and_a_law_fit(trace_only, tmp_path, monkeypatch):
    from taskdistill.data.files import write_jsonl
    from taskdistill.data.load import load_task_data
    from taskdistill.data.schema import Example
    from taskdistill.laws.analysis import fit_study
    from taskdistill.laws.synthetic import law_q
    from taskdistill.report import compute_results
    from taskdistill.study.plan import plan
    from taskdistill.study.run import run_study
    from taskdistill.study.spec import parse_spec
    from taskdistill.study.store import open_store

    monkeypatch.setenv("TASKDISTILL_HOME", str(tmp_path / "home"))
    data = load_task_data("synthetic:n=90,seed=2,granularity=coarse")
    data = data.subset([Example(e.text, e.label, e.id, f"It is about {e.label.lower()}.") for e in data.examples])
    write_jsonl(tmp_path / "headlines.jsonl", data)
    spec = tiny_spec(tiny_teacher(tmp_path), task={"source": str(tmp_path / "headlines.jsonl"), "test_size": 26,
                                                   "calibration_size": 8})
    kappas = [0.85, 0.75, 0.65, 0.55, 0.45]
    spec["axes"] = {"dataset_sizes": [8], "keep_fractions": kappas, "supervision": ["label", "trace_only"],
                    "method": ["logit"], "seeds": [0]}
    spec["training"] = dict(spec["training"], max_steps=1)
    spec["evaluation"] = dict(spec["evaluation"], test_limit=6, cot_max_new_tokens=4)
    spec["knowledge"] = dict(spec["knowledge"], limit=4)
    parsed = parse_spec(spec)  # the spec accepts the new name
    p = plan(parsed)
    traces = next(k for k, s in p.steps.items() if s.kind == "traces")
    for step in p.steps.values():  # the planner read the record: only the new format's recoveries read traces
        if step.kind == "recover":
            assert (step.deps.get("traces") == traces) == (step.inputs["training"]["supervision"] == "trace_only")
    summary = run_study(parsed, tmp_path / "s")
    assert set(summary) == {"done"}
    store = open_store(tmp_path / "s")
    rows, runs = store.observations(), store.runs()
    store.close()
    mine = [r for r in runs if r["supervision"] == "trace_only" and r["stage"] == "recovered"]
    assert len(mine) == 5 and {r["view"] for r in mine} == {"cot"}  # evaluated in the format it was trained in
    history = mine[0]["train"]["history"][0]
    assert history["loss"] == pytest.approx(history["ce_trace"], abs=1e-5)  # the record's loss was trained
    # a law fit over the study's own rows: known a1 retention put in place of the tiny models' values
    gk = [dict(r) for r in rows if r["metric"] == "gk_aggregate" and r["stage"] == "recovered"]
    truth = {"label": {"a": 0.05, "alpha": 3.0}, "trace_only": {"a": 0.02, "alpha": 3.0}}
    for r in gk:
        q = float(law_q("a1", truth[r["supervision"]], r["keep_fraction"]))
        r.update(n=4000, reference=0.8, chance=0.25, reference_correct=None, reference_n=None)
        r["correct"] = round(4000 * (0.25 + 0.55 * q))
        r["value"] = r["correct"] / 4000
    fitted = fit_study(gk, ["gk_aggregate"], ["a1"], B=0, validate=False)
    ours = next(g for g in fitted["groups"] if g["slice"]["supervision"] == "trace_only")
    assert ours["status"] == "ok"
    assert ours["fit"]["params"]["alpha"] == pytest.approx(3.0, rel=0.1)
    results = compute_results(rows, runs, fit_laws=False)  # and the report shows it
    assert any(s["supervision"] == "trace_only" for s in results["students"])
    assert json.dumps(results, default=str)
    assert np.isfinite(ours["fit"]["params"]["a"])
