"""Load and save models: a hub id, a local HF folder, a ``.gguf`` file, or a built-in name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from taskdistill.cache import atomic_dir
from taskdistill.errors import TaskDistillError
from taskdistill.models.hf import drop_quantization, prepare_tokenizer


def resolve(ref: str) -> tuple[str, dict]:
    """Turn a model reference into a ``from_pretrained`` path and extra kwargs."""
    from taskdistill.models import builtin

    if ref in builtin.BUILTINS:
        return str(builtin.pull(ref)), {}
    path = Path(ref).expanduser()
    if path.exists():
        if path.is_file() and path.suffix == ".gguf":
            return str(path.parent), {"gguf_file": path.name}
        if path.is_dir() and (path / "config.json").is_file():
            return str(path), {}
        raise TaskDistillError(
            f"{ref} is not a model: expected a Hugging Face folder with config.json, a .gguf file, "
            f"a hub id, or a built-in name ({', '.join(builtin.BUILTINS)})"
        )
    if ref.count("/") == 1 and not ref.startswith((".", "/", "~")):
        return ref, {}  # a hub id
    raise TaskDistillError(
        f"{ref} is not a model: no such path, not a hub id (owner/name), "
        f"and not a built-in ({', '.join(builtin.BUILTINS)})"
    )


def reference_fingerprint(ref: str) -> str:
    """Content fingerprint of a model reference, without loading it: a built-in's recorded checksum,
    a local folder's or file's bytes (each file hashed once), a hub id as given."""
    from taskdistill.cache import cached_file_sha256, folder_hash
    from taskdistill.models import builtin

    if ref in builtin.BUILTINS:
        return f"builtin:{ref}:{builtin.BUILTINS[ref].sha256[:16]}"
    path = Path(ref).expanduser()
    if path.is_dir():
        return f"folder:{folder_hash(path)}"
    if path.is_file():
        return f"file:{cached_file_sha256(path)[:16]}"
    resolve(ref)  # a clear error for what is neither
    return f"hub:{ref}"


def check_weights(folder: str | Path) -> None:
    """Refuse a local folder whose safetensors checkpoint is truncated, corrupt or missing a shard,
    before ``from_pretrained`` reads it: each file's header length and its tensors' byte ranges must
    match the file size, and safetensors must open it."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TaskDistillError(f"{index} is truncated or corrupt; re-save or re-download the model") from None
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise TaskDistillError(f"{folder} lacks the weight shard {missing[0]} named in {index.name} "
                                   f"({len(missing)} missing); re-save or re-download the model")
    for file in sorted(folder.glob("*.safetensors")):
        problem = _safetensors_problem(file)
        if problem:
            raise TaskDistillError(f"{file} is truncated or corrupt ({problem}); re-save or re-download it")


def check_files(path: str, kwargs: dict) -> None:
    """Integrity of a resolved local model (see :func:`resolve`): a folder's safetensors or a .gguf file."""
    if "gguf_file" in kwargs:
        file = Path(path) / kwargs["gguf_file"]
        problem = _gguf_problem(file)
        if problem:
            raise TaskDistillError(f"{file} is truncated or corrupt ({problem}); re-save or re-download it")
    elif Path(path).is_dir():
        check_weights(path)


def _gguf_problem(file: Path) -> str | None:
    """Why ``file`` is not a complete GGUF file, or None."""
    import struct

    from gguf import GGUFReader

    try:
        reader = GGUFReader(file)
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    except (ValueError, struct.error, IndexError, KeyError, OSError) as exc:
        return _first_line(exc)
    size = file.stat().st_size
    return f"its tensors need {end} bytes, the file holds {size}" if end > size else None


def _safetensors_problem(file: Path) -> str | None:
    """Why ``file`` is not a complete safetensors file, or None."""
    from safetensors import SafetensorError, safe_open

    size = file.stat().st_size
    with open(file, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"{size} bytes, shorter than the 8-byte header length"
        length = int.from_bytes(head, "little")
        if 8 + length > size:
            return f"its header needs {8 + length} bytes, the file holds {size}"
        try:
            header = json.loads(fh.read(length))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return "unreadable header"
    if 8 + length + end != size:
        return f"its tensors need {8 + length + end} bytes, the file holds {size}"
    try:
        with safe_open(str(file), framework="pt"):
            pass
    except (SafetensorError, OSError, ValueError) as exc:
        return _first_line(exc)
    return None


def check_causal(config, ref: str) -> None:
    """Refuse an architecture that is not a causal (decoder-only) language model, by name.

    Encoders (BERT, RoBERTa, …: masked-LM families not configured as decoders) and encoder-decoders (BART,
    Marian, Whisper, …) have a causal-LM class in transformers too, but it is not the model: an encoder
    attends both ways, and of an encoder-decoder only the decoder would be loaded."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = getattr(config, "model_type", None) or type(config).__name__
    named = ", ".join(getattr(config, "architectures", None) or []) or kind
    remote = "AutoModelForCausalLM" in (getattr(config, "auto_map", None) or {})
    if getattr(config, "is_encoder_decoder", False):
        why = "an encoder-decoder"
    elif kind in MODEL_FOR_MASKED_LM_MAPPING_NAMES and getattr(config, "is_decoder", None) is False:
        why = "an encoder that attends both ways"
    elif kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not remote:
        why = "an architecture without a causal-LM head"
    else:
        return
    raise TaskDistillError(f"model {ref!r} is a {kind} model ({named}), {why}, not a causal language model; "
                           "give a decoder-only LM (e.g. Llama, Qwen, Gemma, SmolLM2)")


def check_model(ref: str, *, trust_remote_code: bool = False) -> None:
    """What can be checked of a local model without loading its weights: the reference, the checkpoint
    files' integrity and a causal-LM architecture (built-ins are checksum-verified; hub ids load later)."""
    from taskdistill.models import builtin

    if ref in builtin.BUILTINS:
        return
    if not Path(ref).expanduser().exists():
        resolve(ref)  # a clear error for what is neither a path nor a hub id
        return
    path, kwargs = resolve(ref)
    check_files(path, kwargs)
    _causal_config(path, kwargs, ref, trust_remote_code)


def _causal_config(path: str, kwargs: dict, ref: str, trust_remote_code: bool):
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)
    except (OSError, ValueError) as exc:
        raise TaskDistillError(f"could not read the config of model {ref!r}: {_first_line(exc)}") from exc
    check_causal(config, ref)
    return config


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load_model(ref: str, *, dtype=None, trust_remote_code: bool = False, runtime=None):
    """Return ``(model, tokenizer)`` in eval mode; the tokenizer always has a pad token.

    A local checkpoint is checked first (:func:`check_files`), and an architecture that is not a causal LM
    is refused by name, so neither ends in a traceback from deep inside ``from_pretrained``.
    ``runtime`` (models/runtime.py): weights in its dtype (unless ``dtype`` is given) on its device; a
    model larger than one GPU is spread over the visible GPUs (and the host) by accelerate's device map.
    Without it: float32 on the CPU."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, kwargs = resolve(ref)
    check_files(path, kwargs)
    config = _causal_config(path, kwargs, ref, trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)
        where = _placement(path, kwargs, runtime, dtype, trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, config=config, dtype=dtype or (runtime.dtype if runtime is not None else torch.float32),
            trust_remote_code=trust_remote_code, **kwargs, **where,
        )
        if runtime is not None and not where and runtime.device.type != "cpu":
            model.to(runtime.device)
    except (OSError, ValueError, SafetensorError) as exc:
        raise TaskDistillError(f"could not load model {ref!r}: {_first_line(exc)}") from exc
    drop_quantization(model)
    prepare_tokenizer(tokenizer)
    model.eval()
    if Path(path).is_dir():
        _remember_fingerprint(model, Path(path), kwargs)
    return model, tokenizer


def _placement(path: str, kwargs: dict, runtime, dtype, trust_remote_code: bool) -> dict:
    """``device_map`` arguments for a GPU runtime (models/runtime.py: placement); none otherwise."""
    if runtime is None or not runtime.is_gpu:
        return {}
    from dataclasses import replace

    from transformers import AutoConfig

    from taskdistill.models.runtime import placement

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)
    return placement(config, replace(runtime, dtype=dtype) if dtype is not None else runtime)


def save_model(model, tokenizer, out: str | Path) -> Path:
    """Save a plain HF folder (safetensors + config + tokenizer) atomically."""
    out = Path(out)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out


_FINGERPRINT = "_taskdistill_fingerprint"


def model_fingerprint(model) -> str:
    """Content hash of a model's weights and config: equal weights give equal fingerprints.

    A model loaded from a folder carries the fingerprint of its checkpoint files, computed once per
    file set (remembered under the cache home by the files' identities); it stays valid while no
    parameter has been changed in place (torch's per-tensor version counters), else it is recomputed.
    """
    known = getattr(model, _FINGERPRINT, None)
    if known is not None and known[1] == _versions(model):
        return known[0]
    return _hash_tensors(model)


def cast_copy(model, dtype):
    """A copy of ``model`` with weights in ``dtype`` (for inference), fingerprinted as derived from the source."""
    import copy

    source = model_fingerprint(model)
    out = copy.deepcopy(model).to(dtype)
    out.eval()
    setattr(out, _FINGERPRINT, (f"{source}:{str(dtype).removeprefix('torch.')}", _versions(out)))
    return out


def forget_fingerprint(model) -> None:
    """Drop a remembered fingerprint (before changing weights in ways version counters do not see)."""
    if hasattr(model, _FINGERPRINT):
        delattr(model, _FINGERPRINT)


def _versions(model) -> tuple[int, ...]:
    return tuple(p._version for p in model.parameters())


def _remember_fingerprint(model, folder: Path, kwargs: dict) -> None:
    from taskdistill import settings
    from taskdistill.cache import atomic_write_text, content_hash, file_identity

    files = sorted(p for p in folder.iterdir() if p.is_file())
    key = content_hash([[file_identity(f) for f in files], str(next(model.parameters()).dtype), sorted(kwargs)], 32)
    memo = settings.cache_dir("fingerprints") / f"{key}.txt"
    if memo.is_file():
        fingerprint = memo.read_text().strip()
    else:
        fingerprint = _hash_tensors(model)
        atomic_write_text(memo, fingerprint)
    setattr(model, _FINGERPRINT, (fingerprint, _versions(model)))


def _hash_tensors(model) -> str:
    import torch

    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(model).__name__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
