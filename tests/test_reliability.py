"""What the bad-input table relies on, checked directly: checkpoint integrity, causal-LM architectures,
destinations that can be written, long texts, rows without ids or with duplicates, and the divergence guard."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from distill_helpers import task_data
from tiny import tiny_model, tiny_tokenizer
from typer.testing import CliRunner

from taskdistill.errors import TaskDistillError


def saved(folder, **overrides):
    from taskdistill.models.load import save_model

    return save_model(tiny_model("llama", **overrides), tiny_tokenizer(), folder)


# -- checkpoints -------------------------------------------------------------------------------------
def test_a_sound_checkpoint_passes_and_every_kind_of_damage_is_named(tmp_path):
    from taskdistill.models.load import check_model, check_weights, load_model

    sound = saved(tmp_path / "sound")
    check_weights(sound)
    check_model(str(sound))
    weights = (sound / "model.safetensors").read_bytes()
    cases = {
        "cut": weights[: len(weights) - 100],  # the last tensor's bytes run past the end
        "header": weights[:1000],  # the header itself is cut
        "stub": weights[:5],  # not even the 8-byte header length
        "longer": weights + b"\0" * 64,  # bytes no tensor accounts for
    }
    for name, data in cases.items():
        broken = tmp_path / name
        shutil.copytree(sound, broken)
        (broken / "model.safetensors").write_bytes(data)
        with pytest.raises(TaskDistillError, match=f"{name}/model.safetensors is truncated or corrupt"):
            load_model(str(broken))
    sharded = tmp_path / "sharded"
    shutil.copytree(sound, sharded)
    (sharded / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(TaskDistillError, match="lacks the weight shard model-00001-of-00002.safetensors"):
        check_weights(sharded)
    (sharded / "model.safetensors.index.json").write_text('{"weight_map": {"a": ')
    with pytest.raises(TaskDistillError, match="index.json is truncated or corrupt"):
        check_model(str(sharded))


def test_architectures_that_are_not_causal_lms_are_refused_by_name():
    from transformers import (
        BartConfig,
        BertConfig,
        GPTNeoXConfig,
        LlamaConfig,
        RobertaConfig,
        T5Config,
    )

    from taskdistill.models.load import check_causal

    check_causal(LlamaConfig(), "llama")
    check_causal(GPTNeoXConfig(), "pythia")  # decoder-only, though its config says is_decoder=False
    check_causal(BertConfig(is_decoder=True), "a BERT trained as a decoder")  # causal attention: accepted
    for config, name, why in ((BertConfig(), "bert", "an encoder"), (RobertaConfig(), "roberta", "an encoder"),
                              (BartConfig(), "bart", "an encoder-decoder"), (T5Config(), "t5", "an encoder-decoder")):
        with pytest.raises(TaskDistillError, match=f"is a {name} model .*{why}.*, not a causal language model"):
            check_causal(config, name)


# -- destinations ------------------------------------------------------------------------------------
def test_check_writable_names_files_in_the_way(tmp_path):
    from taskdistill.cache import check_writable

    (tmp_path / "f").write_text("x")
    check_writable(tmp_path / "new" / "deeper" / "out.json", "--json")
    check_writable(tmp_path / "new-folder", "--out", folder=True)
    check_writable(tmp_path, "--dir", folder=True, inside=True)
    with pytest.raises(TaskDistillError, match="is a file, not a folder"):
        check_writable(tmp_path / "f", "--out", folder=True)
    with pytest.raises(TaskDistillError, match="is a folder; give a file path"):
        check_writable(tmp_path, "--json")
    with pytest.raises(TaskDistillError, match="lies under .*/f, which is a file"):
        check_writable(tmp_path / "f" / "a" / "b", "--out", folder=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # the probes leave nothing behind


# -- long texts --------------------------------------------------------------------------------------
def test_a_long_text_is_cut_to_the_budget_and_the_prompt_keeps_its_frame():
    from taskdistill.models import prompts

    tok = tiny_tokenizer()
    short = "Acme beats estimates"
    assert prompts.clip_text(tok, short) == short
    long = "Acme beats quarterly earnings estimates as revenue rises. " * 2000
    cut = prompts.clip_text(tok, long)
    assert long.startswith(cut[:200]) and len(tok(cut, add_special_tokens=False)["input_ids"]) <= \
        prompts.MAX_TEXT_TOKENS + 2
    prompt = prompts.build_prompt(tok, long, ["Earnings", "Guidance"])
    assert cut in prompt and prompt.rstrip().endswith("assistant")  # the chat turn that takes the answer
    assert "Event types: Earnings; Guidance." in prompt and prompts.PromptFormat().answer_hint in prompt


def test_eval_task_cuts_a_5_mb_row_and_says_so(tmp_path):
    from taskdistill.cli import app

    saved(tmp_path / "model", max_position_embeddings=2048)
    rows = [{"text": "Acme beats estimates " * 250_000, "label": "Earnings"},
            {"text": "Globex cuts guidance", "label": "Guidance"}]
    (tmp_path / "big.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["eval", "task", str(tmp_path / "model"), "--data", str(tmp_path / "big.jsonl"),
                                      "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    assert "1 text(s) longer than 512 tokens were cut" in result.output
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 2


# -- rows without ids, duplicates, one class ---------------------------------------------------------
FLAT = """id,headline,target,aspect,label
1,Acme shares jump after earnings beat,Acme,Stock,positive
1,Acme shares jump after earnings beat,Acme,Stock,positive
2,Globex cuts outlook as demand slows,Globex,Corporate,negative
3,Initech rival Hooli falls behind,Initech,Market,positive
3,Initech rival Hooli falls behind,Hooli,Market,negative
4,Umbrella holds steady,Umbrella,Stock,neutral
"""


def test_no_id_col_and_drop_duplicates(tmp_path):
    from taskdistill.data.load import load_task_data

    path = tmp_path / "flat.csv"
    path.write_text(FLAT)
    with pytest.raises(TaskDistillError, match="id '1' duplicates flat.csv line 2"):
        load_task_data(path)
    numbered = load_task_data(path, no_id_col=True)
    assert [e.id for e in numbered.examples] == [f"flat-{i}" for i in range(1, 7)]
    assert "dropped_duplicates" not in numbered.meta and numbered.meta["id_col"] is None
    with pytest.raises(TaskDistillError, match="id '3' duplicates flat.csv line 5"):  # lines 5, 6: other labels
        load_task_data(path, drop_duplicates=True)  # (line 3, an exact repeat of line 2, is dropped first)
    both = load_task_data(path, no_id_col=True, drop_duplicates=True)
    assert both.meta["dropped_duplicates"] == 1 and len(both) == 5
    assert [e.id for e in both.examples] == ["flat-1", "flat-3", "flat-4", "flat-5", "flat-6"]  # row numbers kept
    assert sorted(e.label for e in both.examples if e.text.startswith("Initech")) == ["negative", "positive"]

    from taskdistill.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["data", "inspect", str(path), "--no-id-col", "--drop-duplicates"])
    assert shown.exit_code == 0, shown.output
    assert "dropped 1 exact duplicate row (same text and label) from flat; 5 remain" in shown.output
    split = runner.invoke(app, ["data", "split", str(path), "--no-id-col", "--drop-duplicates", "--test-size", "1",
                                "--out", str(tmp_path / "split")])
    assert split.exit_code == 0, split.output
    assert len(load_task_data(tmp_path / "split" / "train_pool.jsonl")) == 4


def test_a_single_class_is_refused_where_a_classifier_is_made():
    from taskdistill.data.load import require_classes
    from taskdistill.data.schema import Example, TaskData

    two = task_data()
    assert require_classes(two) is two
    one = TaskData([Example("a", "A", "1"), Example("b", "A", "2")], ["A"], name="one")
    with pytest.raises(TaskDistillError, match="'one' has a single class \\('A'\\)"):
        require_classes(one)


def test_study_task_switches_only_enter_the_spec_when_on(tmp_path):
    from test_study_run import tiny_spec, tiny_teacher

    from taskdistill.study.run import prepare
    from taskdistill.study.spec import dump_spec, parse_spec

    (tmp_path / "flat.csv").write_text(FLAT + "".join(
        f"{i},Hooli headline {i},Hooli,Stock,{'positive' if i % 2 else 'negative'}\n" for i in range(5, 40)))
    base = tiny_spec(tiny_teacher(tmp_path))
    task = {"source": str(tmp_path / "flat.csv"), "text_col": "headline", "test_size": 10, "calibration_size": 4}
    off = parse_spec({**base, "task": task})
    assert "no_id_col" not in off.task.model_dump() and "drop_duplicates" not in dump_spec(off)
    on = parse_spec({**base, "task": {**task, "no_id_col": True, "drop_duplicates": True}})
    assert on.task.model_dump()["drop_duplicates"] is True and on.spec_hash() != off.spec_hash()
    assert parse_spec(yaml.safe_load(dump_spec(on))).spec_hash() == on.spec_hash()  # the spec copy round-trips
    with pytest.raises(TaskDistillError, match="id '1' duplicates"):
        prepare(off, tmp_path / "study")
    plan = prepare(on, tmp_path / "study")
    assert any("dropped 1 exact duplicate row" in w for w in plan.warnings)
    assert not (tmp_path / "study").exists()
    with pytest.raises(TaskDistillError, match="id_col or no_id_col"):
        parse_spec({**base, "task": {**task, "id_col": "id", "no_id_col": True}})


# -- the divergence guard ----------------------------------------------------------------------------
def test_healthy_step():
    from taskdistill.distill.train import healthy_step

    assert healthy_step(2.3, 0.7) and healthy_step(0.0, 0.0)  # a perfect fit has no gradient
    for loss, grad in ((float("nan"), 1.0), (2.3, float("inf")), (float("inf"), 1.0), (5.99, 0.0)):
        assert not healthy_step(loss, grad)


def cfg(**kw):
    from taskdistill.distill.config import DistillConfig

    return DistillConfig(**{"batch_size": 4, "bf16": False, "max_steps": 4, **kw})


@pytest.mark.parametrize("lr, step, what", [
    (1e6, 2, "every step had a non-finite loss or gradient, or no gradient at all"),  # weights ~1e6, logits equal
    (1e30, 2, "every step had a non-finite loss or gradient"),  # weights ~1e30, NaN gradients
])
def test_a_diverging_run_stops_and_saves_nothing(tmp_path, one_thread, lr, step, what):
    from taskdistill.distill.train import distill

    out = tmp_path / "out"
    out.mkdir()  # the folder was there before: it stays, but holds no model and no checkpoint
    with pytest.raises(TaskDistillError, match=f"training diverged at step {step} .*{what}"):
        distill(tiny_model("llama"), tiny_tokenizer(), task_data(), cfg(lr=lr, checkpoint_every=1), out_dir=out,
                progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl"]
    with pytest.raises(TaskDistillError, match="training diverged"):  # without a folder, in memory (studies)
        distill(tiny_model("llama"), tiny_tokenizer(), task_data(), cfg(lr=lr), progress=False)


def test_an_update_that_makes_a_weight_non_finite_stops_at_once(one_thread, monkeypatch):
    from taskdistill.distill import train

    class Poisoned(torch.optim.SGD):
        def step(self, closure=None):
            super().step(closure)
            self.param_groups[0]["params"][0].data.view(-1)[0] = float("inf")

    monkeypatch.setattr(train, "_optimizer", lambda model, config: Poisoned(model.parameters(), lr=config.lr))
    with pytest.raises(TaskDistillError, match="diverged at step 1 .*the update made weights non-finite"):
        train.distill(tiny_model("llama"), tiny_tokenizer(), task_data(), cfg(lr=1e-3), progress=False)


def test_a_learning_rate_beyond_float32_is_refused():
    from taskdistill.distill.config import make_config

    for lr in (1e39, float("inf"), float("nan"), 0.0):
        with pytest.raises(TaskDistillError, match="invalid distillation setting lr"):
            make_config(lr=lr)


def test_a_few_bad_steps_in_the_middle_are_skipped_when_the_run_recovers(one_thread, monkeypatch):
    from taskdistill.distill import train

    calls = iter(range(100))
    real = train.healthy_step
    monkeypatch.setattr(train, "healthy_step", lambda loss, grad: next(calls) != 1 and real(loss, grad))
    _, report = train.distill(tiny_model("llama"), tiny_tokenizer(), task_data(), cfg(lr=1e-3), progress=False)
    assert report.skipped_steps == 1 and [r["skipped"] for r in report.history] == [False, True, False, False]


def test_distill_cli_resumes_an_interrupted_run_in_its_folder(tmp_path, one_thread, monkeypatch):
    from taskdistill.cli import app
    from taskdistill.distill import train

    saved(tmp_path / "student")
    rows = [{"id": e.id, "text": e.text, "label": e.label} for e in task_data().examples]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["distill", "--teacher", str(tmp_path / "student"), "--student", str(tmp_path / "student"), "--data",
            str(tmp_path / "data.jsonl"), "--max-steps", "4", "--batch-size", "4", "--bf16", "false",
            "--checkpoint-every", "1", "--lr", "1e-3", "--out", str(tmp_path / "out")]

    def interrupt(bar, record, config):
        if record["step"] == 3:
            raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(train, "_advance", interrupt)
        CliRunner().invoke(app, args)
    assert (tmp_path / "out" / "checkpoint").is_dir() and not (tmp_path / "out" / "model").exists()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["resumed_from"] == 2 and report["steps"] == 4
