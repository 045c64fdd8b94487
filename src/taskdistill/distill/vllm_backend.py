"""vLLM back-end for the two teacher signals (optional extra: ``pip install 'taskdistill[vllm]'``).

* ``generate``: greedy CoT traces (stop strings, a token limit) from token-id prompts.
* ``topk_rows``: the teacher's top-k log-probabilities at the supervised positions of given token
  sequences (vLLM's prompt log-probs), as the same ``(idx, logp)`` rows with the explicit rest bucket
  that ``teacher_cache.build_cache`` stores (``losses.topk_buckets``).

``choose`` picks the back-end: ``auto`` takes vLLM only when it imports, a CUDA device is visible and
the case is one vLLM computes exactly, else HF; ``hf`` always HF; ``vllm`` fails with one line naming
the fix when it cannot be used. The choice is logged (logger ``taskdistill.distill.vllm_backend``) and
recorded with the traces and in the cache's ``meta.json``.

vLLM loads the teacher from its files: a hub id (passed through as given) or a local checkpoint
folder, either the one the in-memory teacher was loaded from or an explicit ``source``. It runs in the
in-memory teacher's dtype unless told otherwise, with ``tensor_parallel_size`` GPUs (default: as many
visible GPUs as split the model evenly). Prompts go in as token ids, so vLLM reads exactly the tokens
the HF path reads, and generated token ids are decoded with the caller's tokenizer.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from taskdistill.errors import TaskDistillError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "hf", "vllm")
CHUNK = 256  # sequences per vLLM call: bounds the Python objects of its per-position log-prob lists
REST_FLOOR = 1e-30  # smallest rest mass kept when the top-k probabilities sum to ~1 in float32
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# model types whose vLLM class computes head_dim as hidden_size / num_attention_heads, ignoring the config
DERIVED_HEAD_DIM = ("qwen2",)


@dataclass(frozen=True)
class Backend:
    """A resolved back-end: ``hf`` or ``vllm``, why, and what vLLM loads and how."""

    name: str
    reason: str
    source: str | None = None
    tensor_parallel_size: int | None = None
    dtype: str | None = None
    engine: dict = field(default_factory=dict)  # further vLLM engine arguments (model_impl for pruned Qwen2)

    def record(self) -> dict:
        """What the traces report and the cache's meta.json keep."""
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


def cuda_devices() -> int:
    """Visible CUDA devices (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _import_problem() -> str | None:
    try:
        import vllm  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "vllm":
            raise
        return "vllm is not installed (pip install 'taskdistill[vllm]')"
    except (ImportError, OSError, RuntimeError) as exc:  # a CUDA build whose libraries do not load here
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"vllm does not import ({first})"
    return None


def vllm_source(model, source: str | None = None) -> tuple[str | None, str]:
    """``(what vLLM loads, "")`` or ``(None, why not)``: ``source`` if given (a hub id, a checkpoint
    folder or a built-in name), else the hub id or folder the teacher was loaded from."""
    from taskdistill.models.load import _FINGERPRINT, _versions, resolve

    if source is not None:
        path, kwargs = resolve(source)
        if kwargs:
            return None, f"{source} is a GGUF file; give vLLM a checkpoint folder or a hub id"
        return path, ""
    found = str(getattr(model.config, "_name_or_path", "") or "")
    folder = Path(found).is_dir() and (Path(found) / "config.json").is_file()
    if not folder and not (HUB_ID.match(found) and not Path(found).exists()):
        return None, "the teacher was not loaded from a checkpoint folder or a hub id (pass its reference as source)"
    remembered = getattr(model, _FINGERPRINT, None)
    if remembered is not None and remembered[1] != _versions(model):
        return None, (f"the teacher's weights changed in memory since they were loaded from {found}, and vLLM "
                      "reads the files (save the model and pass that folder as source)")
    return found, ""


def _text_config(config) -> dict:
    values = config if isinstance(config, dict) else config.to_dict()
    return values.get("text_config") or values


def vllm_config_problems(config, tensor_parallel_size: int = 1) -> list[str]:
    """What keeps vLLM from loading a checkpoint of this config (a ``PretrainedConfig`` or the dict of
    its config.json) with ``tensor_parallel_size`` GPUs; empty when it loads.

    vLLM picks its model class from ``architectures``; takes ``head_dim`` from the config, or
    hidden_size / heads without it; needs query heads in whole KV groups and one ``layer_types`` entry
    per layer; and splits query heads, KV heads (or replicates them) and the MLP width over the GPUs.
    """
    c = _text_config(config)
    heads, layers, hidden = c["num_attention_heads"], c["num_hidden_layers"], c["hidden_size"]
    kv = c.get("num_key_value_heads") or heads
    problems = []
    outer = config if isinstance(config, dict) else config.to_dict()
    if not outer.get("architectures"):
        problems.append("the config names no architectures (save the model with save_pretrained)")
    if heads % kv:
        problems.append(f"{heads} query heads do not fill {kv} KV groups evenly")
    if not c.get("head_dim") and hidden % heads:
        problems.append(f"no head_dim and hidden_size {hidden} is not a multiple of {heads} heads")
    types = c.get("layer_types")
    if isinstance(types, list) and len(types) != layers:
        problems.append(f"layer_types has {len(types)} entries for {layers} layers")
    return problems + _split_problems(c, tensor_parallel_size)


def _split_problems(c: dict, n: int) -> list[str]:
    """Why the weights do not split over ``n`` GPUs (query heads, KV heads or their replicas, MLP width)."""
    heads = c["num_attention_heads"]
    kv = c.get("num_key_value_heads") or heads
    problems = []
    if n > 1:
        if heads % n:
            problems.append(f"{heads} query heads do not split over {n} GPUs")
        if (kv % n) if kv >= n else (n % kv):
            problems.append(f"{kv} KV heads neither split over nor replicate onto {n} GPUs")
        if c.get("intermediate_size") and c["intermediate_size"] % n:
            problems.append(f"intermediate_size {c['intermediate_size']} does not split over {n} GPUs")
    return problems


def engine_overrides(config) -> dict:
    """Engine arguments a checkpoint needs beyond the defaults: a pruned Qwen2 whose hidden size is no
    longer heads × head_dim runs through vLLM's Transformers back-end (vLLM's own Qwen2 class would
    derive a wrong head_dim from hidden_size / heads)."""
    c = _text_config(config)
    head_dim = c.get("head_dim")
    if (c.get("model_type") in DERIVED_HEAD_DIM and head_dim
            and c["hidden_size"] != c["num_attention_heads"] * head_dim):
        return {"model_impl": "transformers"}
    return {}


def default_tensor_parallel(config, gpus: int) -> int:
    """The most of ``gpus`` (at least 1) that split the model evenly."""
    c = _text_config(config)
    return next((n for n in range(max(gpus, 1), 1, -1) if not _split_problems(c, n)), 1)


def choose(backend: str, model, *, purpose: str, source: str | None = None,
           tensor_parallel_size: int | None = None, dtype: str | None = None,
           unsupported: str | None = None) -> Backend:
    """Resolve ``auto | hf | vllm`` for one job (``purpose`` names it in the log line).

    ``unsupported``: why this job cannot run on vLLM (HF under ``auto``, an error under ``vllm``).
    """
    if backend not in BACKENDS:
        raise TaskDistillError(f"unknown back-end {backend!r}; use auto, hf or vllm")
    if backend == "hf":
        log.info("%s: HF back-end (asked for)", purpose)
        return Backend("hf", "asked for")
    gpus = cuda_devices()
    missing = _import_problem() or (None if gpus else "no CUDA device is visible")
    why, found, tp = missing or unsupported, None, None
    if why is None:
        found, why = vllm_source(model, source)
    if not why:
        tp = tensor_parallel_size or default_tensor_parallel(model.config, gpus)
        if tp > gpus:
            why = f"tensor_parallel_size {tp} asks for more GPUs than the {gpus} visible"
        elif problems := vllm_config_problems(model.config, tp):
            why = f"vLLM cannot load {found}: " + "; ".join(problems)
    if why:
        if backend == "vllm":
            raise TaskDistillError(f"back-end 'vllm' for {purpose} cannot run: {why}; or use back-end 'hf'")
        level = logging.INFO if missing else logging.WARNING  # installed, on a GPU, yet not usable: say it louder
        log.log(level, "%s: HF back-end (vLLM not used: %s)", purpose, why)
        return Backend("hf", f"vLLM not used: {why}")
    dtype = dtype or str(next(model.parameters()).dtype).removeprefix("torch.")
    chosen = Backend("vllm", "auto: vLLM imports and CUDA is visible" if backend == "auto" else "asked for",
                     found, tp, dtype, engine_overrides(model.config))
    log.info("%s: vLLM back-end, %s in %s with tensor_parallel_size=%d%s", purpose, found, dtype, tp,
             f" ({chosen.engine})" if chosen.engine else "")
    return chosen


def _memory_share(gpus: int) -> float | None:
    """A ``gpu_memory_utilization`` that fits next to what is already on the GPUs (e.g. an HF teacher)."""
    import torch

    if not torch.cuda.is_available():
        return None
    free = min(f / t for f, t in (torch.cuda.mem_get_info(i) for i in range(gpus)))
    return round(max(0.05, min(0.9, 0.9 * free)), 2)


def _engine(backend: Backend, **extra):
    from vllm import LLM

    kwargs = {"model": backend.source, "tensor_parallel_size": backend.tensor_parallel_size,
              "dtype": backend.dtype, **backend.engine, **extra}
    share = _memory_share(backend.tensor_parallel_size)
    if share is not None:
        kwargs["gpu_memory_utilization"] = share
    return LLM(**kwargs)


def _free_gpu() -> None:
    """After the last reference to an engine is gone: collect it and return its cached GPU memory."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _supports(params_cls, name: str) -> bool:
    """Whether this vLLM's SamplingParams has the field ``name`` (newer options are used when there)."""
    fields = getattr(params_cls, "__struct_fields__", None)
    if fields is not None:
        return name in fields
    import inspect

    return name in inspect.signature(params_cls).parameters


def generate(backend: Backend, tokenizer, prompt_ids: list[list[int]], max_new_tokens: int,
             stop: list[str] | None = None) -> list[str]:
    """Greedy continuations of token-id prompts, decoded by ``tokenizer`` without special tokens."""
    from vllm import SamplingParams

    if not prompt_ids:
        return []
    llm = _engine(backend, max_model_len=max(len(p) for p in prompt_ids) + max_new_tokens)
    try:
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop=list(stop) if stop else None,
                                include_stop_str_in_output=True)
        outputs = llm.generate([{"prompt_token_ids": list(p)} for p in prompt_ids], params, use_tqdm=False)
        token_ids = [list(o.outputs[0].token_ids) for o in outputs]
    finally:
        del llm
        _free_gpu()
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in token_ids]


def rows_from_prompt_logprobs(prompt_logprobs, target_pos, k: int, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """``(idx (P, k) int32, logp (P, k+1) float32)`` at ``target_pos`` from vLLM's prompt log-probs.

    Entry t of ``prompt_logprobs`` is ``{token_id: Logprob}`` for the prediction of token t: the top-k
    (ranks 1…k) plus the actual token, which is dropped when its rank is above k. The last column is
    log(1 − Σ top-k), floored at log(REST_FLOOR); −inf when k covers the vocabulary (as losses.py).
    """
    idx = np.zeros((len(target_pos), k), dtype=np.int32)
    logp = np.zeros((len(target_pos), k + 1), dtype=np.float32)
    for row, t in enumerate(target_pos):
        entries = prompt_logprobs[t].items()
        if all(lp.rank is not None for _, lp in entries):
            top = sorted((lp.rank, tid, lp.logprob) for tid, lp in entries if lp.rank <= k)
        else:  # no ranks: the k largest
            top = sorted(((0, tid, lp.logprob) for tid, lp in entries), key=lambda e: -e[2])[:k]
        if len(top) != k:
            raise RuntimeError(f"vLLM returned {len(top)} prompt log-probs at position {t}, expected {k}")
        idx[row] = [tid for _, tid, _ in top]
        values = np.array([value for _, _, value in top], dtype=np.float64)
        logp[row, :k] = values
        rest = 1.0 - np.exp(values).sum()
        logp[row, k] = -np.inf if k >= vocab else math.log(max(rest, REST_FLOOR))
    return idx, logp


def topk_rows(backend: Backend, sequences, k: int, vocab: int):
    """Yield ``(idx, logp)`` for each sequence (``batches.Sequence``), in order, at its ``target_pos``."""
    from vllm import SamplingParams

    llm = _engine(backend, max_model_len=max(len(s.input_ids) for s in sequences) + 1, max_logprobs=k,
                  skip_tokenizer_init=True)
    extra = {name: True for name in ("flat_logprobs",) if _supports(SamplingParams, name)}
    start_field = _supports(SamplingParams, "prompt_logprob_start")
    try:
        for start in range(0, len(sequences), CHUNK):
            part = sequences[start : start + CHUNK]
            params = [SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=k, detokenize=False, **extra,
                                     **({"prompt_logprob_start": min(s.target_pos) - 1} if start_field else {}))
                      for s in part]
            outputs = llm.generate([{"prompt_token_ids": list(s.input_ids)} for s in part], params, use_tqdm=False)
            for seq, out in zip(part, outputs, strict=True):
                yield rows_from_prompt_logprobs(out.prompt_logprobs, seq.target_pos, k, vocab)
    finally:
        del llm
        _free_gpu()
