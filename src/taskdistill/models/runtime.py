"""Where models run and in what precision: one ``Runtime``, resolved once, read by every stage.

``resolve_runtime(device, dtype)`` turns what the user asked for (``--device`` / ``--dtype``, or a
study's ``runtime:`` block) into a torch device and the dtype of inference weights, and refuses in one
line what this machine cannot do (a GPU that is not there, a dtype the device cannot run).

Policy of ``auto`` (the default):

* device: the first CUDA GPU when one is visible, else Apple's ``mps``, else the CPU.
* weights of inference stages (scoring, general knowledge, traces, teacher logits, importance, cost):
  bfloat16 on a CUDA GPU with bf16 (float16 on older ones), float32 on the CPU and on ``mps``.
* training: float32 master weights always; mixed precision (autocast) bf16 on a CUDA GPU with bf16,
  fp16 on older ones, and on a CPU with native bf16 dot products (AVX512-BF16 / AMX), where our KD
  step was measured 1.68x faster than fp32 (benchmarks/RESULTS.md); other CPUs stay fp32. The stage
  verbs keep CPU inference in fp32 (bf16 moved benchmark scores by an item, so it is opt-in there:
  ``--dtype bfloat16``); a study's evaluations follow ``evaluation.precision`` instead, whose ``auto``
  casts a bf16 copy where the CPU computes bf16 natively (measured 2x faster scoring with accuracy
  within one item of 210, benchmarks/RESULTS.md) and the dtype used is stored with every evaluation's result.

An explicit dtype applies to every stage: ``float32`` (no autocast anywhere, bit-reproducible),
``bfloat16`` / ``float16`` (inference weights in that dtype; training with float32 masters under that
autocast). Models larger than one device are placed by accelerate's ``infer_auto_device_map`` over the
visible GPUs (and CPU memory for what does not fit): ``device_map_for``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from taskdistill.errors import TaskDistillError, did_you_mean

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")
PRECISIONS = {"float32": "no", "bfloat16": "bf16", "float16": "fp16"}  # dtype → accelerate mixed_precision
KNOBS = "(--device / runtime.device)"


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 dot products (AVX512-BF16 or AMX), from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_device_name(name: str) -> str:
    """A syntactically valid device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``), else one line."""
    if name.startswith("cuda:"):
        index = name.split(":", 1)[1]
        if not index.isdigit():
            raise TaskDistillError(f"device {name!r}: the GPU index must be a number, e.g. cuda:0")
        return name
    if name not in DEVICES:
        raise did_you_mean(name, [*DEVICES, "cuda:N"], "device")
    return name


def check_dtype_name(name: str) -> str:
    if name not in DTYPES:
        raise did_you_mean(name, DTYPES, "dtype")
    return name


def resolve_device(name: str = "auto"):
    """The torch device ``name`` means on this machine; a device that is not there is one line."""
    import torch

    name = check_device_name(name)
    if name == "auto":
        if _cuda_count():
            return torch.device("cuda", 0)
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise TaskDistillError(f"device 'mps': Apple's Metal backend is not available here; use cpu or auto {KNOBS}")
        return torch.device("mps")
    count = _cuda_count()
    if not count:
        build = " (this torch build is CPU-only)" if getattr(torch.version, "cuda", None) is None else ""
        raise TaskDistillError(f"device {name!r}: no CUDA GPU is visible to this process{build}; use cpu or auto "
                               f"{KNOBS}, or check CUDA_VISIBLE_DEVICES and the driver")
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= count:
        raise TaskDistillError(f"device {name!r}: only {count} CUDA GPU(s) are visible (cuda:0 … cuda:{count - 1}); "
                               f"pick one of them or use cuda {KNOBS}")
    return torch.device("cuda", index)


def _bf16_ok(device) -> bool:
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return True  # CPU: native or emulated; mps: checked when used


def resolve_dtype(name: str, device):
    """The dtype of inference weights for ``name`` on ``device`` (see the module docstring)."""
    import torch

    name = check_dtype_name(name)
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if _bf16_ok(device) else torch.float16
        return torch.float32
    if name == "float16" and device.type == "cpu":
        raise TaskDistillError("dtype 'float16' on the CPU: many float16 kernels are missing or emulated there; use "
                               "bfloat16 or float32 (--dtype / runtime.dtype)")
    if name == "bfloat16" and not _bf16_ok(device):
        gpu = torch.cuda.get_device_name(device)
        raise TaskDistillError(f"dtype 'bfloat16': {device} ({gpu}) has no bfloat16 support (compute capability < 8.0); "
                               "use float16 or float32 (--dtype / runtime.dtype)")
    return getattr(torch, name)


@dataclass(frozen=True)
class Runtime:
    """A resolved runtime: ``device`` (torch.device), ``dtype`` (inference weights), what was asked,
    and whether the decoder recomputes activations in backward (gradient checkpointing)."""

    device: object
    dtype: object
    asked_device: str = "auto"
    asked_dtype: str = "auto"
    gradient_checkpointing: bool = False

    @property
    def is_gpu(self) -> bool:
        return self.device.type == "cuda"

    def visible_gpus(self) -> int:
        """CUDA GPUs this process sees (``CUDA_VISIBLE_DEVICES``; Ray sets it per task); 0 off CUDA."""
        return _cuda_count() if self.is_gpu else 0

    def training_precision(self, setting="auto") -> str:
        """accelerate's ``mixed_precision`` of a training run: ``no``, ``bf16`` or ``fp16``.

        ``setting`` is ``DistillConfig.bf16``: True / False force bf16 autocast on / off; ``auto`` follows
        the runtime (module docstring)."""
        if setting is True:
            if not _bf16_ok(self.device):
                raise TaskDistillError(f"training.bf16 is true but {self.device} has no bfloat16 support; set it to "
                                       "auto or false")
            return "bf16"
        if setting is False:
            return "no"
        if self.asked_dtype != "auto":
            return PRECISIONS[self.asked_dtype]
        if self.is_gpu:
            return "bf16" if _bf16_ok(self.device) else "fp16"
        if self.device.type == "cpu":
            return "bf16" if cpu_has_bf16() else "no"
        return "no"

    def autocast(self, precision: str):
        """The autocast context of ``precision`` (``no``: none)."""
        import torch

        if precision == "no":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def describe(self) -> dict:
        """What ran where, for step results and provenance (JSON)."""
        out = {"device": str(self.device), "dtype": str(self.dtype).removeprefix("torch."),
               "asked": {"device": self.asked_device, "dtype": self.asked_dtype},
               "gradient_checkpointing": self.gradient_checkpointing}
        if self.is_gpu:
            import torch

            out["gpus"] = [torch.cuda.get_device_name(i) for i in range(self.visible_gpus())]
        return out

    def request(self) -> dict:
        """What was asked (plain strings): rebuilt by ``resolve_runtime(**request)`` in another process."""
        return {"device": self.asked_device, "dtype": self.asked_dtype,
                "gradient_checkpointing": self.gradient_checkpointing}


def resolve_runtime(device: str = "auto", dtype: str = "auto", gradient_checkpointing="auto") -> Runtime:
    """Resolve (and check) a device and dtype request on this machine."""
    dev = resolve_device(device)
    weights = resolve_dtype(dtype, dev)
    if gradient_checkpointing == "auto":
        gradient_checkpointing = dev.type == "cuda"  # GPU memory binds there; on the CPU it only costs time
    return Runtime(dev, weights, device, dtype, bool(gradient_checkpointing))


def as_runtime(runtime) -> Runtime:
    """A ``Runtime`` from None (the CPU default: auto), a request dict, or a Runtime."""
    if runtime is None:
        return resolve_runtime()
    if isinstance(runtime, dict):
        return resolve_runtime(**runtime)
    return runtime


def model_device(model):
    """Where a model's inputs go: its input embedding's device (the first device of a device map)."""
    return model.get_input_embeddings().weight.device


# -- models larger than one device ---------------------------------------------------------------------
def empty_model(config, dtype):
    """The model of ``config`` on the meta device (no memory), ties applied."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        empty = AutoModelForCausalLM.from_config(config, dtype=dtype)
    empty.tie_weights()
    return empty


def device_map_for(config, dtype, max_memory: dict) -> dict:
    """accelerate's device map of a model of ``config`` over ``max_memory`` ({gpu index: bytes, "cpu": bytes}):
    whole decoder layers per device, in order, the rest offloaded to the CPU. Built on empty weights."""
    from accelerate import infer_auto_device_map

    empty = empty_model(config, dtype)
    return dict(infer_auto_device_map(empty, max_memory=max_memory, dtype=dtype,
                                      no_split_module_classes=list(empty._no_split_modules or [])))


def max_memory(runtime: Runtime, headroom: float = 0.9) -> dict:
    """Per visible GPU: ``headroom`` × its free memory; plus the host's available memory for offload."""
    import psutil
    import torch

    out = {i: int(torch.cuda.mem_get_info(i)[0] * headroom) for i in range(runtime.visible_gpus())}
    out["cpu"] = int(psutil.virtual_memory().available * headroom)
    return out


def placement(config, runtime: Runtime) -> dict:
    """``from_pretrained`` placement arguments: none on the CPU or ``mps`` (the model is moved after
    loading); the runtime's GPU when the weights fit its free memory; else a device map over every
    visible GPU and the host (accelerate)."""
    if not runtime.is_gpu:
        return {}
    budget = max_memory(runtime)
    index = runtime.device.index or 0
    need = sum(p.numel() * p.element_size() for p in empty_model(config, runtime.dtype).parameters())
    if need <= budget.get(index, 0):
        return {"device_map": {"": index}}
    return {"device_map": device_map_for(config, runtime.dtype, budget)}
