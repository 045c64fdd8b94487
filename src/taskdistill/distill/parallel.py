"""How a distillation run is spread over processes: one process, DDP, or FSDP2, all through accelerate.

One optimizer step always covers the same ``grad_accum`` micro-batches of ``batch_size`` sequences,
whatever the number of processes: each micro-batch is split by rows across the processes (rank r takes
rows r, r + W, …), every rank's loss uses the token counts of the *whole* micro-batch and is scaled by
W, and DDP / FSDP2 average the gradients over the W ranks — so the step's gradient is the one-process
gradient of the whole micro-batch (exact for losses linear in the summed terms, which every built-in
supervision format is; tested with 2 CPU processes over gloo). A rank whose share of a short final
micro-batch is empty runs one row with weight 0, so every rank takes part in every collective.

Strategy ``auto``: DDP while the training state (weights, gradients, AdamW states) fits one device with
room for activations, else FSDP2 (parameters, gradients and optimizer states sharded over the ranks).
FSDP2 needs CUDA GPUs (accelerate shards only on accelerator devices); on the CPU it is refused.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from taskdistill.errors import TaskDistillError

STRATEGIES = ("auto", "ddp", "fsdp2")
ADAMW_BYTES = 4 + 4 + 4 + 4  # fp32 master weight, its gradient, and AdamW's two moments, per trainable parameter


def world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the launcher's environment (1 process when unset)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0"))


def training_state_bytes(params: int, trainable: int) -> int:
    """Bytes of a training run's state: fp32 master copies of every weight, plus a gradient and two AdamW
    moments for each trainable one (LoRA: only the adapters)."""
    return 4 * params + (ADAMW_BYTES - 4) * trainable


def check_strategy(strategy: str) -> str:
    """A known strategy name, else one line with the closest ones."""
    if strategy not in STRATEGIES:
        from taskdistill.errors import did_you_mean

        raise did_you_mean(strategy, STRATEGIES, "parallel strategy")
    return strategy


def choose_strategy(strategy: str, state_bytes: int, device_bytes: int | None, size: int) -> str:
    """``single`` for one process; else ``ddp`` or ``fsdp2`` (``auto``: FSDP2 when the replicated state
    would take more than 60 % of one device, leaving the rest for activations)."""
    check_strategy(strategy)
    if size == 1:
        return "single"
    if strategy != "auto":
        return strategy
    return "fsdp2" if device_bytes is not None and state_bytes > 0.6 * device_bytes else "ddp"


def fsdp2_plugin(model, precision: str, gradient_checkpointing: bool):
    """accelerate's FSDP2 plugin: every decoder layer sharded on its own (``_no_split_modules``), fp32
    masters with compute in ``precision``, full state dicts gathered on save, and only the first rank holding
    the whole model on its host (the others start on empty weights and receive their shards)."""
    import torch
    from accelerate import FullyShardedDataParallelPlugin
    from torch.distributed.fsdp import MixedPrecisionPolicy

    compute = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    policy = MixedPrecisionPolicy(param_dtype=compute, reduce_dtype=torch.float32) if compute else None
    layers = sorted(getattr(model, "_no_split_modules", None) or [])
    if not layers:
        raise TaskDistillError(f"{type(model).__name__} names no decoder layer class (_no_split_modules); FSDP2 "
                               "cannot shard it layer by layer — use parallel: ddp")
    return FullyShardedDataParallelPlugin(
        fsdp_version=2, auto_wrap_policy="transformer_based_wrap", transformer_cls_names_to_wrap=layers,
        reshard_after_forward=True, mixed_precision_policy=policy, activation_checkpointing=gradient_checkpointing,
        state_dict_type="FULL_STATE_DICT", cpu_ram_efficient_loading=True,  # rank 0's weights, broadcast as shards
    )


@dataclass
class Parallel:
    """The accelerator of one run and where this process stands in it."""

    accelerator: object
    strategy: str  # single | ddp | fsdp2
    rank: int
    size: int
    device: object

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, rows: list[int]) -> tuple[list[int], float]:
        """This rank's rows of a micro-batch and their weight (0 for a stand-in row when it has none)."""
        mine = rows[self.rank :: self.size]
        return (mine, 1.0) if mine else (rows[:1], 0.0)

    def no_sync(self, module, last: bool):
        """Skip the gradient all-reduce on every micro-batch of a step but its last."""
        if self.strategy == "ddp" and not last:
            return module.no_sync()
        return contextlib.nullcontext()

    def sum(self, tensor):
        """Sum of ``tensor`` over the ranks (itself for one process)."""
        if self.size == 1:
            return tensor
        import torch.distributed as dist

        out = tensor.clone()
        dist.all_reduce(out)
        return out

    def barrier(self) -> None:
        if self.size > 1:
            self.accelerator.wait_for_everyone()


def setup(runtime, model, precision: str, strategy: str = "auto", state_bytes: int = 0) -> Parallel:
    """The accelerator for this process: one process on ``runtime.device``, or this rank of a launched group
    (``distill/launch.py`` sets WORLD_SIZE / RANK / LOCAL_RANK)."""
    from accelerate import Accelerator

    rank, size, local = world()
    cpu = runtime.device.type == "cpu"
    device_bytes = None
    if runtime.is_gpu:
        import torch

        device_bytes = torch.cuda.get_device_properties(local if size > 1 else runtime.device).total_memory
    chosen = choose_strategy(strategy, state_bytes, device_bytes, size)
    if chosen == "fsdp2" and not runtime.is_gpu:
        raise TaskDistillError("parallel strategy fsdp2 needs CUDA GPUs (accelerate shards only on accelerator "
                               "devices); on the CPU use ddp, or one process")
    kwargs = {"fsdp_plugin": fsdp2_plugin(model, precision, runtime.gradient_checkpointing)} if chosen == "fsdp2" else {}
    # Autocast is applied by the loop itself (runtime.autocast), the same for every strategy, so the shared
    # accelerate state never changes its mixed-precision setting between runs of one process.
    try:
        accelerator = Accelerator(cpu=cpu, device_placement=size > 1, **kwargs)
    except ValueError:
        if size > 1:
            raise
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)  # an earlier run of this process used other devices
        accelerator = Accelerator(cpu=cpu, device_placement=False, **kwargs)
    device = accelerator.device if size > 1 else runtime.device
    return Parallel(accelerator, chosen, rank, size, device)
