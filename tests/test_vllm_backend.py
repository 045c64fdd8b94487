"""vLLM back-end against a fake ``vllm`` module (tests/fake_vllm.py) whose numbers come from the same tiny
HF model: traces and top-k rows must equal the HF path's; hub ids and tensor parallelism reach ``LLM``;
``auto`` falls back to HF with a log line; pruned checkpoints meet what vLLM needs from a config.

No real vLLM run happens here (it needs its CUDA build and a GPU).
"""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest
import torch
from distill_helpers import task_data
from fake_vllm import SAMPLING_FIELDS, make
from tiny import ARCHS, CORPUS, tiny_model, tiny_thinking_tokenizer, tiny_tokenizer

from taskdistill.distill import traces, vllm_backend
from taskdistill.distill.batches import build_sequences
from taskdistill.distill.teacher_cache import TeacherLogits, build_cache
from taskdistill.errors import TaskDistillError
from taskdistill.models.load import load_model, save_model
from taskdistill.models.prompts import PromptFormat, encode

LOGGER = "taskdistill.distill.vllm_backend"


@pytest.fixture
def vllm(monkeypatch):
    """A fake vllm importable, two visible "GPUs"."""
    module = make()
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(vllm_backend, "cuda_devices", lambda: 2)
    return module


@pytest.fixture
def teacher(tmp_path, vllm):
    """A tiny teacher loaded from a checkpoint folder (as load_model does), registered with the fake."""
    folder = save_model(tiny_model("qwen2", seed=0), tiny_tokenizer(), tmp_path / "teacher")  # untied: varied text
    model, tok = load_model(str(folder))
    vllm.LLM.models[str(folder)] = (model, tok)
    return model, tok, str(folder)


def by_id(idx, logp, vocab):
    """Top-k log-probs placed at their token ids (−inf elsewhere), to compare rows whatever their order."""
    out = np.full((idx.shape[0], vocab), -np.inf)
    np.put_along_axis(out, idx.astype(np.int64), logp[:, :-1], axis=1)
    return out


def prompts_for(tok, data):
    return [traces.teacher_prompt(tok, ex, data.labels, PromptFormat(), explain_gold=False) for ex in data.examples]


def test_generations_match_hf_and_prompts_go_in_as_token_ids(teacher, vllm):
    model, tok, folder = teacher
    prompts = prompts_for(tok, task_data(False))
    free = traces.generate(model, tok, prompts, 10, 8, "hf")
    stop = [next(g for g in free if len(g) > 6)[3:5]]  # a stop string the model does write
    hf = traces.generate(model, tok, prompts, 10, 8, "hf", stop=stop)
    via_vllm = traces.generate(model, tok, prompts, 10, 8, "vllm", stop=stop)
    assert via_vllm == hf and any(h.endswith(stop[0]) for h in hf)
    llm = vllm.LLM.instances[-1]
    assert llm.kwargs["model"] == folder and llm.kwargs["tensor_parallel_size"] == 2
    assert llm.kwargs["dtype"] == "float32"
    assert [ids for ids, _ in llm.requests] == [encode(tok, p)[0] for p in prompts]
    params = llm.requests[0][1]
    assert (params.temperature, params.max_tokens, params.stop) == (0.0, 10, stop)


def test_build_traces_writes_what_hf_writes(teacher, vllm):
    """A random teacher's traces are all dropped, but the generations (cached before the filter) must agree."""
    model, tok, _ = teacher
    data = task_data(False)
    written = {}
    for backend in ("hf", "vllm"):
        with pytest.raises(TaskDistillError, match="no trace survived"):
            traces.build_traces(model, tok, data, max_new_tokens=8, backend=backend, use_cache=False)
        (path,) = [p for p in (traces.settings.cache_dir("traces")).iterdir()]
        written[backend] = [json.loads(line) for line in path.read_text().splitlines()]
        path.unlink()
    assert [r["generated"] for r in written["vllm"]] == [r["generated"] for r in written["hf"]]
    assert {r["backend"] for r in written["hf"]} == {"hf"} and {r["backend"] for r in written["vllm"]} == {"vllm"}
    assert vllm.LLM.instances[-1].requests[0][1].stop == ["]]"]


def test_thinking_traces_through_vllm_for_a_hub_teacher(vllm):
    """Qwen3-like template: thinking on for the traces, the thinking text is the rationale, the answer after
    ``</think>`` gives the label; the hub id goes to vLLM as given."""
    tok = tiny_thinking_tokenizer()
    model = tiny_model("qwen3", vocab_size=len(tok))
    model.config._name_or_path, model.config.architectures = "acme/thinker-0.6b", ["Qwen3ForCausalLM"]
    vllm.LLM.models["acme/thinker-0.6b"] = (model, tok)
    data = task_data(False)
    golds = [e.label for e in data.examples]
    script = [f"<think>\nThe headline says {g.lower()}.\n\nSo it is {g}.\n</think>\n\nThe event is [[{g}]]."
              for g in golds]
    script[1] = "<think>\nStill weighing the options"  # thinking not finished within max_new_tokens
    script[2] = f"<think>\n</think>\n\n[[{golds[2]}]]"  # empty thinking
    vllm.LLM.script = script
    out = traces.build_traces(model, tok, data, backend="vllm", max_new_tokens=64)
    report = out.meta["traces"]
    assert report["backend"]["name"] == "vllm" and report["backend"]["source"] == "acme/thinker-0.6b"
    assert report["thinking"] is True and (report["kept"], report["unfinished_thinking"], report["empty"]) == (6, 1, 1)
    assert out.examples[0].cot == f"The headline says {golds[0].lower()}. So it is {golds[0]}."
    llm = vllm.LLM.instances[-1]
    assert llm.kwargs["model"] == "acme/thinker-0.6b"
    first = tok.decode(llm.requests[0][0])
    assert first.endswith("<|im_start|>assistant\n") and "<think>" not in first  # the model opens its own block
    assert llm.requests[0][1].stop is None  # the thinking may quote the [[...]] format: no "]]" stop


@pytest.mark.parametrize("fields", [SAMPLING_FIELDS, tuple(f for f in SAMPLING_FIELDS if f != "prompt_logprob_start")],
                         ids=["prompt_logprob_start", "older-vllm"])
@pytest.mark.parametrize("k", [8, None], ids=["k8", "k-vocab"])
def test_topk_cache_rows_equal_hf(teacher, monkeypatch, tmp_path, fields, k):
    model, tok, folder = teacher
    module = make(fields)
    module.LLM.models[folder] = (model, tok)
    monkeypatch.setitem(sys.modules, "vllm", module)
    k = k or len(tok)  # the whole vocabulary as a top-k: rest = −inf on both sides
    sequences, _ = build_sequences(tok, task_data(), cot=True, max_length=512)
    args = {"k": k, "temperature": 1.0, "vocab": None, "pad_id": tok.pad_token_id, "shard_size": 5}
    hf = build_cache(model, sequences, backend="hf", root=tmp_path / "hf", **args)
    via_vllm = build_cache(model, sequences, backend="vllm", root=tmp_path / "vllm", **args)
    assert hf.meta["backend"]["name"] == "hf" and via_vllm.meta["backend"]["name"] == "vllm"
    assert via_vllm.meta["shards"] == hf.meta["shards"] and via_vllm.k == hf.k == k
    for s in sequences:
        (i_hf, lp_hf), (i_v, lp_v) = hf.example(s.index), via_vllm.example(s.index)
        assert np.array_equal(np.sort(i_v), np.sort(i_hf))  # the same top-k (order may differ within fp32 ties)
        np.testing.assert_allclose(by_id(i_v, lp_v, len(tok)), by_id(i_hf, lp_hf, len(tok)), atol=2e-5)
        np.testing.assert_allclose(lp_v[:, -1], lp_hf[:, -1], atol=2e-5)  # the rest bucket
    llm = module.LLM.instances[-1]
    assert llm.kwargs["max_logprobs"] == k and llm.kwargs["skip_tokenizer_init"] is True
    assert llm.kwargs["max_model_len"] == max(len(s.input_ids) for s in sequences) + 1
    starts = [p.prompt_logprob_start for _, p in llm.requests]
    assert starts == ([min(s.target_pos) - 1 for s in sequences] if "prompt_logprob_start" in fields
                      else [None] * len(sequences))
    assert TeacherLogits(via_vllm.path).meta == via_vllm.meta  # a finished cache, reopened


def test_hub_id_and_tensor_parallel_reach_llm(vllm, tmp_path):
    tok = tiny_tokenizer()
    model = tiny_model("llama")
    model.config._name_or_path, model.config.architectures = "acme/teacher-7b", ["LlamaForCausalLM"]
    vllm.LLM.models["acme/teacher-7b"] = (model, tok)
    sequences, _ = build_sequences(tok, task_data(), cot=False, max_length=512)
    cache = build_cache(model, sequences, k=4, temperature=1.0, vocab=None, pad_id=0, backend="vllm",
                        tensor_parallel_size=1, root=tmp_path)
    llm = vllm.LLM.instances[-1]
    assert llm.kwargs["model"] == "acme/teacher-7b" and llm.kwargs["tensor_parallel_size"] == 1
    assert cache.meta["backend"] == {"name": "vllm", "reason": "asked for", "source": "acme/teacher-7b",
                                     "tensor_parallel_size": 1, "dtype": "float32"}
    # an explicit source wins over where the model came from
    chosen = vllm_backend.choose("vllm", model, purpose="x", source="other/model")
    assert chosen.source == "other/model" and chosen.tensor_parallel_size == 2


def test_default_tensor_parallel_is_the_visible_gpus_that_split_the_model():
    config = tiny_model("llama").config  # 4 heads, 2 KV heads, MLP 128
    assert [vllm_backend.default_tensor_parallel(config, g) for g in (0, 1, 2, 3, 4, 8)] == [1, 1, 2, 2, 4, 4]


def test_auto_falls_back_to_hf_and_says_so(teacher, monkeypatch, caplog, tmp_path):
    model, tok, _ = teacher
    sequences, _ = build_sequences(tok, task_data(), cot=False, max_length=512)
    args = {"k": 4, "temperature": 1.0, "vocab": None, "pad_id": 0}
    monkeypatch.setitem(sys.modules, "vllm", None)  # not installed
    with caplog.at_level(logging.INFO, logger=LOGGER):
        cache = build_cache(model, sequences, root=tmp_path / "a", **args)
    assert cache.meta["backend"]["name"] == "hf"
    assert "teacher top-k: HF back-end (vLLM not used: vllm is not installed" in caplog.text
    with pytest.raises(TaskDistillError, match=r"back-end 'vllm' .*pip install 'taskdistill\[vllm\]'"):
        build_cache(model, sequences, backend="vllm", root=tmp_path / "b", **args)
    with pytest.raises(TaskDistillError, match="not installed"):
        traces.build_traces(model, tok, task_data(False), backend="vllm")


def test_auto_falls_back_when_vllm_cannot_give_the_rows(teacher, vllm, monkeypatch, caplog, tmp_path):
    model, tok, _ = teacher
    sequences, _ = build_sequences(tok, task_data(), cot=False, max_length=512)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        tempered = build_cache(model, sequences, k=4, temperature=2.0, vocab=None, pad_id=0, root=tmp_path / "t")
    assert tempered.meta["backend"]["name"] == "hf" and "temperature 1 only" in caplog.text
    assert any(r.levelno == logging.WARNING for r in caplog.records)  # installed, on a GPU, yet not used
    with pytest.raises(TaskDistillError, match="top_k none"):
        build_cache(model, sequences, k=None, temperature=1.0, vocab=None, pad_id=0, backend="vllm", root=tmp_path)
    with pytest.raises(TaskDistillError, match="cut to 300"):
        build_cache(model, sequences, k=4, temperature=1.0, vocab=300, pad_id=0, backend="vllm", root=tmp_path)
    with pytest.raises(TaskDistillError, match="more GPUs than the 2 visible"):
        vllm_backend.choose("vllm", model, purpose="x", tensor_parallel_size=4)
    monkeypatch.setattr(vllm_backend, "cuda_devices", lambda: 0)
    assert vllm_backend.choose("auto", model, purpose="x").name == "hf"
    with pytest.raises(TaskDistillError, match="no CUDA device"):
        vllm_backend.choose("vllm", model, purpose="x")
    with pytest.raises(TaskDistillError, match="unknown back-end 'vlm'"):
        vllm_backend.choose("vlm", model, purpose="x")


def test_vllm_refuses_a_teacher_it_cannot_read_from_files(teacher, vllm):
    model, _, folder = teacher
    with torch.no_grad():
        next(model.parameters()).add_(1.0)  # changed in memory after loading from the folder
    with pytest.raises(TaskDistillError, match="changed in memory"):
        vllm_backend.choose("vllm", model, purpose="x")
    with pytest.raises(TaskDistillError, match="not loaded from a checkpoint folder or a hub id"):
        vllm_backend.choose("vllm", tiny_model("llama"), purpose="x")
    assert vllm_backend.choose("vllm", model, purpose="x", source=folder).source == folder


def test_prompt_logprob_rows_drop_the_actual_token_outside_the_top_k():
    module = make()
    Logprob = module.Logprob
    entry = {7: Logprob(-9.0, 40), 3: Logprob(-0.5, 1), 5: Logprob(-1.5, 2)}
    idx, logp = vllm_backend.rows_from_prompt_logprobs([None, entry], [1], k=2, vocab=400)
    assert idx.tolist() == [[3, 5]]
    rest = np.log(1 - np.exp(-0.5) - np.exp(-1.5))
    np.testing.assert_allclose(logp, [[-0.5, -1.5, rest]], rtol=1e-6)
    # top-k probabilities summing to 1 in float32: the rest is floored, never log(0) (reverse KL stays finite)
    idx, logp = vllm_backend.rows_from_prompt_logprobs([None, {1: Logprob(0.0, 1)}], [1], k=1, vocab=400)
    assert logp[0, 1] == pytest.approx(np.log(vllm_backend.REST_FLOOR))


# --- pruned checkpoints and vLLM --------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_pruned_checkpoints_meet_vllm_config_invariants(arch, tmp_path):
    """What vLLM reads from a config: architectures, an explicit head_dim (pruning changes hidden size and heads
    apart, so hidden / heads is no longer the head size), whole KV groups, one layer type per layer; a pruned
    Qwen2 whose hidden size is no longer heads × head_dim goes through vLLM's Transformers back-end."""
    from taskdistill.prune.api import prune

    model = tiny_model(arch, num_hidden_layers=6)
    for n, (keep, axes) in enumerate([(0.75, "width"), (0.6, "mixed"), (0.45, "width")]):
        pruned, _ = prune(model, tiny_tokenizer(), keep, CORPUS, axes=axes)
        folder = save_model(pruned, tiny_tokenizer(), tmp_path / f"p{n}")
        config = json.loads((folder / "config.json").read_text())
        assert vllm_backend.vllm_config_problems(config) == []
        assert config["head_dim"] == 16 and config["architectures"]
        if isinstance(config.get("layer_types"), list):
            assert len(config["layer_types"]) == config["num_hidden_layers"]
        reshaped = config["hidden_size"] != config["num_attention_heads"] * config["head_dim"]
        wanted = {"model_impl": "transformers"} if arch == "qwen2" and reshaped else {}
        assert vllm_backend.engine_overrides(config) == wanted
        tp = vllm_backend.default_tensor_parallel(config, 8)
        assert vllm_backend.vllm_config_problems(config, tp) == []


def test_real_size_pruned_shapes_split_over_gpus():
    """SmolLM2-135M (9 heads, 3 KV heads) and Gemma 3 270M shapes along the paper's schedule: every planned
    config loads at tensor_parallel_size 1, and the default tensor parallel size always splits it evenly."""
    from test_prune import gemma3_270m_config, smollm2_config

    from taskdistill.prune.shape import plan_shape
    from taskdistill.prune.surgery import target_config

    for config in (smollm2_config(), gemma3_270m_config()):
        config.architectures = ["X"]
        for kappa in (0.79, 0.58, 0.37, 0.16):
            target = plan_shape(config, kappa, "width")
            built = target_config(config, target, list(range(target.num_hidden_layers)))
            assert vllm_backend.vllm_config_problems(built) == []
            tp = vllm_backend.default_tensor_parallel(built, 8)
            assert vllm_backend.vllm_config_problems(built, tp) == []
            assert target.intermediate_size % 32 == 0  # on the MLP grid: splits over up to 32 GPUs


def test_vllm_config_problems_name_what_breaks():
    base = {"architectures": ["LlamaForCausalLM"], "num_attention_heads": 6, "num_key_value_heads": 4,
            "hidden_size": 100, "num_hidden_layers": 3, "intermediate_size": 99, "layer_types": ["full_attention"]}
    problems = " | ".join(vllm_backend.vllm_config_problems(base, 4))
    for expected in ("6 query heads do not fill 4 KV groups", "no head_dim", "layer_types has 1 entries for 3",
                     "do not split over 4 GPUs", "intermediate_size 99"):
        assert expected in problems
    assert "names no architectures" in vllm_backend.vllm_config_problems({**base, "architectures": None})[0]
