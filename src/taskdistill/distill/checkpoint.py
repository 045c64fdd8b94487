"""Training checkpoints without pickle: trainable weights, optimizer, scheduler and RNG states.

``<out>/checkpoint/``: ``weights.safetensors`` (trainable parameters by name), ``optimizer.safetensors``
+ ``optimizer.json`` (tensor / non-tensor parts of the optimizer state), ``state.json`` (step,
scheduler, python / numpy RNG, config hash) and ``rng.safetensors`` (torch RNG). Written with
``atomic_dir``, so a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from taskdistill.cache import atomic_dir, atomic_write_json
from taskdistill.errors import TaskDistillError


def trainable(model) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _split_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, rest = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, entry in state["state"].items():
        rest["state"][str(pid)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value.contiguous()
            else:
                rest["state"][str(pid)][key] = value
    return tensors, rest


def _join_optimizer(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    state = {int(pid): dict(entry) for pid, entry in rest["state"].items()}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def save(path: Path, model, optimizer, scheduler, state: dict) -> None:
    """Write a complete checkpoint to ``path`` (replacing an older one only once complete)."""
    opt_tensors, opt_rest = _split_optimizer(optimizer.state_dict())
    np_state = np.random.get_state()
    full = dict(state)
    full.update(
        scheduler=scheduler.state_dict(),
        python_rng=_jsonable(random.getstate()),
        numpy_rng=[np_state[0], np_state[1].tolist(), *np_state[2:]],
    )
    with atomic_dir(path) as tmp:
        save_file({k: v.detach().contiguous() for k, v in trainable(model).items()}, tmp / "weights.safetensors")
        save_file(opt_tensors, tmp / "optimizer.safetensors")
        atomic_write_json(tmp / "optimizer.json", opt_rest)
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():  # dropout on a GPU draws from its own generator
            rng.update({f"cuda:{i}": t for i, t in enumerate(torch.cuda.get_rng_state_all())})
        save_file(rng, tmp / "rng.safetensors")
        atomic_write_json(tmp / "state.json", full)


def save_state_only(path: Path, scheduler, state: dict) -> None:
    """``state.json`` alone (step, scheduler, config hash): the weights and optimizer of an FSDP2 run are
    sharded over its ranks and written beside it by accelerate (``<path>.sharded``)."""
    atomic_write_json(Path(path) / "state.json", dict(state, scheduler=scheduler.state_dict(), sharded=True))


def load_state_only(path: Path, scheduler, config_hash: str) -> dict:
    state = read_state(path)
    _check_hash(path, state, config_hash)
    scheduler.load_state_dict(state["scheduler"])
    return state


def _check_hash(path: Path, state: dict, config_hash: str) -> None:
    if state["config_hash"] != config_hash:
        raise TaskDistillError(
            f"checkpoint {path} was written by a different distillation config or data "
            f"({state['config_hash']} != {config_hash}); use a new --out folder or the original settings"
        )


def read_state(path: Path) -> dict | None:
    file = path / "state.json"
    return json.loads(file.read_text()) if file.is_file() else None


def load(path: Path, model, optimizer, scheduler, config_hash: str) -> dict:
    """Restore everything saved by ``save``; a checkpoint of another config is a user error."""
    state = read_state(path)
    _check_hash(path, state, config_hash)
    if state.get("sharded"):
        raise TaskDistillError(f"checkpoint {path} holds FSDP2 shards; resume it with the same number of GPUs under "
                               "FSDP2 (parallel: fsdp2)")
    weights = load_file(path / "weights.safetensors")
    params = trainable(model)
    if set(weights) != set(params):
        raise TaskDistillError(f"checkpoint {path} does not match the student's trainable parameters")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value.to(params[name].device))
    opt_rest = json.loads((path / "optimizer.json").read_text())
    optimizer.load_state_dict(_join_optimizer(load_file(path / "optimizer.safetensors"), opt_rest))
    scheduler.load_state_dict(state["scheduler"])
    random.setstate(_tuplify(state["python_rng"]))
    np_rng = state["numpy_rng"]
    np.random.set_state((np_rng[0], np.array(np_rng[1], dtype=np.uint32), *np_rng[2:]))
    rng = load_file(path / "rng.safetensors")
    torch.set_rng_state(rng["cpu"])
    cuda = [rng[f"cuda:{i}"] for i in range(torch.cuda.device_count()) if f"cuda:{i}" in rng]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return state


def _jsonable(value):
    return [_jsonable(v) for v in value] if isinstance(value, tuple | list) else value


def _tuplify(value):
    return tuple(_tuplify(v) for v in value) if isinstance(value, list) else value
