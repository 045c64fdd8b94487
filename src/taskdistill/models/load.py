"""Load and save models: a hub id, a local HF folder, a ``.gguf`` file, or a built-in name."""

from __future__ import annotations

import hashlib
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


def load_model(ref: str, *, dtype=None, trust_remote_code: bool = False, runtime=None):
    """Return ``(model, tokenizer)`` in eval mode; the tokenizer always has a pad token.

    ``runtime`` (models/runtime.py): weights in its dtype (unless ``dtype`` is given) on its device; a
    model larger than one GPU is spread over the visible GPUs (and the host) by accelerate's device map.
    Without it: float32 on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, kwargs = resolve(ref)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)
        where = _placement(path, kwargs, runtime, dtype, trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype or (runtime.dtype if runtime is not None else torch.float32),
            trust_remote_code=trust_remote_code, **kwargs, **where,
        )
        if runtime is not None and not where and runtime.device.type != "cpu":
            model.to(runtime.device)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TaskDistillError(f"could not load model {ref!r}: {first}") from exc
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
