"""What each step needs: peak memory (per GPU and on the host), GPUs, and an estimated time — without weights.

Everything comes from the teacher's config (``models/configs.py``), the pruned shapes the shape planner
gives for each κ (``prune.shape.plan_shape``), the runtime and the spec's batch sizes and lengths:

* **weights**: parameters × bytes of the runtime's dtype (bf16 on a GPU, fp32 on the CPU).
* **inference** (evaluate, traces, the KL teacher's top-k cache, importance): weights + the MLP's transient
  activations in one layer (batch × tokens × (2·hidden + 3·intermediate): the residual, its norm, gate, up
  and their product) + the logits kept (rows × vocab, fp32, with a log-softmax copy) + the KV cache
  (2 · layers · KV heads · head_dim per token; the scorer repeats the shared prompt's cache for every row).
* **training** (recover, correct): full fine-tuning keeps fp32 master weights, their gradients and AdamW's two
  moments (16 bytes per parameter); LoRA keeps the frozen base in the runtime's dtype and 16 bytes per adapter
  weight. Activations saved for backward per token and layer: 4·hidden (the two norms' inputs and outputs) +
  3·(query width) + 2·(KV width) (attention's q, k, v, output and o_proj's input) + 4·intermediate (gate, up,
  the activation and the product) at the autocast width, plus one layer's worth in flight during backward;
  with gradient checkpointing only each layer's input is kept, and one layer's set at a time.
  The LM head runs on ``logit_chunk`` rows at a time. The KL teacher is *not* in memory while the student
  trains: its top-k cache is built first, so a recovery's peak is the larger of the two phases.
* **prune**: the parent, the kept slices (the new model) and the calibration forward.

Over several GPUs: inference is split by layers (accelerate's device map: weights / n per GPU); training
under DDP replicates the state and splits the batch, under FSDP2 shards the state (/ n) and gathers one
layer at a time. Each step gets the fewest GPUs (1 … ``runtime.gpus``) whose per-GPU peak fits 90 % of
``runtime.gpu_memory`` less 1.5 GiB for the CUDA context; a step that fits on none is refused in one line
naming it and the knobs.

Times are order-of-magnitude: FLOPs (2 · non-embedding parameters per token forward, 3× for training, one
more forward with gradient checkpointing, plus the logits) at ``runtime.gpu_tflops`` × a utilisation of
35 % (training) / 30 % (prefill); decoding is bandwidth-bound (weights read once per generated token and
batch; bandwidth from the TFLOP/s: 2 TB/s at 312, √-scaled); checkpoints are read at 2 GB/s and written at
1 GB/s. The memory formulas are checked against measured peaks on small CPU models
(``tests/test_study_resources.py``); the times are not measured here (no GPU).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from taskdistill.errors import TaskDistillError

GiB = 2**30
PROMPT_TOKENS = 224  # a classification prompt with a 35-label list (docs/distillation.md: ~220 tokens)
ANSWER_TOKENS = 8  # [[Label]]
GK_TOKENS = 256  # one general-knowledge question with its choices
BENCHMARK_ITEMS = {"mmlu": 14042, "mmlu_pro": 12032, "mmlu_cloze": 14042, "arc_easy": 2376, "arc_challenge": 1172,
                   "piqa": 1838, "hellaswag": 10042, "triviaqa": 3000, "probe": 331}
CONTEXT_BYTES = int(1.5 * GiB)  # CUDA context and allocator slack per GPU
HEADROOM = 0.9
TRAIN_MFU, PREFILL_MFU = 0.35, 0.30
READ_BPS, WRITE_BPS = 2e9, 1e9
CALIB_TOKENS = 128  # importance truncates calibration texts to this length


@dataclass(frozen=True)
class Shape:
    """A decoder's sizes and parameter counts (from a config, or the shape planned for a κ)."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    params: int
    non_embedding: int

    @classmethod
    def of(cls, config, target=None) -> Shape:
        from taskdistill.prune.params import config_parameters, head_dim

        if target is None:
            total, non_emb = config_parameters(config)
            return cls(config.num_hidden_layers, config.hidden_size, config.intermediate_size,
                       config.num_attention_heads, config.num_key_value_heads, head_dim(config), config.vocab_size,
                       total, non_emb)
        total, non_emb = target.parameters(config)
        return cls(target.num_hidden_layers, target.hidden_size, target.intermediate_size, target.num_attention_heads,
                   target.num_key_value_heads, target.head_dim, config.vocab_size, total, non_emb)

    @property
    def layer_params(self) -> int:
        return (self.non_embedding - self.hidden) // max(self.layers, 1)


def pruned_shape(config, keep_fraction: float, axes: str) -> Shape:
    """The shape the planner gives a κ student of ``config`` (κ of the teacher's parameters)."""
    from taskdistill.prune.shape import plan_shape

    if keep_fraction >= 1.0:
        return Shape.of(config)
    return Shape.of(config, plan_shape(config, keep_fraction, axes))


# -- memory (bytes) --------------------------------------------------------------------------------------
def inference_bytes(shape: Shape, *, weight_bytes: int, batch: int, tokens: int, logit_rows: int,
                    kv_tokens: int = 0, act_bytes: int | None = None) -> dict:
    """Peak of a forward (or a generation) over ``batch`` × ``tokens``: weights, one layer's activations,
    the kept logits and a KV cache of ``kv_tokens`` tokens in all."""
    act_bytes = act_bytes or weight_bytes
    return {"weights": shape.params * weight_bytes,
            "activations": batch * tokens * (2 * shape.hidden + 3 * shape.intermediate) * act_bytes,
            "logits": logit_rows * shape.vocab * 4 * 2,
            "kv_cache": 2 * shape.layers * shape.kv_heads * shape.head_dim * kv_tokens * weight_bytes}


def scoring_bytes(shape: Shape, *, weight_bytes: int, batch: int, context: int, block: int) -> dict:
    """Constrained label scoring (evaluate/scoring.py): ``batch`` rows of context + the labels' prefix tree, the
    shared prompt's KV cache repeated for every row, logits kept at the tree's positions."""
    tokens = context + block
    return inference_bytes(shape, weight_bytes=weight_bytes, batch=batch, tokens=tokens,
                           logit_rows=batch * (block + 1), kv_tokens=batch * tokens)


def training_bytes(shape: Shape, *, method: str, frozen_bytes: int, act_bytes: int, batch: int, tokens: int,
                   supervised: int, logit_chunk: int, lora_params: int = 0, checkpointing: bool = False) -> dict:
    """Peak of a training step (see the module docstring): state + saved activations + the chunked head."""
    if method == "logit":
        state = 16 * shape.params
    else:
        state = frozen_bytes * shape.params + 16 * lora_params
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    per_token_layer = 4 * shape.hidden + 3 * q + 2 * kv + 4 * shape.intermediate
    one_layer = batch * tokens * per_token_layer * act_bytes
    saved = (shape.layers * batch * tokens * shape.hidden * act_bytes + one_layer) if checkpointing \
        else shape.layers * one_layer
    rows = min(supervised, logit_chunk)
    return {"state": state, "activations": saved + one_layer,  # + the backward's gradients of one layer
            "head": rows * shape.vocab * 4 * 3 + batch * tokens * shape.hidden * 4}


def lora_parameters(shape: Shape, rank: int, targets) -> int:
    q, kv, h, i = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim, shape.hidden, shape.intermediate
    dims = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h), "gate_proj": (h, i),
            "up_proj": (h, i), "down_proj": (i, h)}
    return shape.layers * sum(rank * (a + b) for name, (a, b) in dims.items() if name in targets)


def prune_bytes(parent: Shape, child: Shape, *, weight_bytes: int, batch: int = 8, tokens: int = CALIB_TOKENS) -> dict:
    forward = inference_bytes(parent, weight_bytes=weight_bytes, batch=batch, tokens=tokens, logit_rows=0)
    return {"weights": parent.params * weight_bytes, "kept": child.params * weight_bytes,
            "activations": forward["activations"]}


# -- per step ---------------------------------------------------------------------------------------------
@dataclass
class Need:
    """One step's estimate: ``bytes`` of its peak (on one device), split by part, and its FLOPs / decode work."""

    parts: dict
    flops: float = 0.0
    decode_tokens: float = 0.0  # generated tokens (bandwidth-bound), in batches of ``decode_batch``
    decode_batch: int = 1
    io_bytes: float = 0.0  # checkpoints read + written
    training: bool = False
    lora: bool = False  # LoRA students train under DDP (their frozen base is replicated)
    state_bytes: int = 0  # what FSDP2 shards (training) / what a device map splits (inference: the weights)

    @property
    def bytes(self) -> int:
        return int(sum(self.parts.values()))


@dataclass
class StepEstimate:
    key: str
    kind: str
    label: str
    peak_bytes: int  # per GPU on a GPU runtime, else in host memory
    gpus: int
    seconds: float | None
    strategy: str = ""  # training over several GPUs: ddp | fsdp2; inference: device map
    parts: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _gk_items(spec) -> int:
    n = 0
    for name in spec.knowledge.benchmarks:
        size = BENCHMARK_ITEMS.get(name, 1000)
        n += min(size, spec.knowledge.limit) if spec.knowledge.limit else size
    return n


class Estimator:
    """Estimates of a plan's steps on the spec's runtime (``gpus`` > 0: per GPU, else host memory)."""

    def __init__(self, spec, config, gpus: int | None = None, gpu_memory: int | None = None):
        self.spec, self.config = spec, config
        rt = spec.runtime
        self.gpus = rt.gpus if gpus is None else gpus
        self.gpu_memory = rt.gpu_bytes if gpu_memory is None else gpu_memory
        on_gpu = self.gpus > 0
        dtype = rt.dtype if rt.dtype != "auto" else ("bfloat16" if on_gpu else "float32")
        self.weight_bytes = 4 if dtype == "float32" else 2
        self.act_bytes = self.weight_bytes  # training autocast: the dtype's width (fp32 masters either way)
        self.checkpointing = on_gpu if rt.gradient_checkpointing == "auto" else bool(rt.gradient_checkpointing)
        self.teacher = Shape.of(config)
        self.tflops = rt.gpu_tflops
        self.bandwidth = 2.0e12 * math.sqrt(rt.gpu_tflops / 312.0)
        self._shapes: dict[float, Shape] = {}

    def shape(self, kappa: float) -> Shape:
        if kappa not in self._shapes:
            self._shapes[kappa] = pruned_shape(self.config, kappa, self.spec.prune.axes)
        return self._shapes[kappa]

    # ---- needs of one step -------------------------------------------------------------------------------
    def need(self, step, kappa: float) -> Need:
        kind = step.kind
        if kind in ("data", "teacher"):
            return Need({"host": 0})
        if kind == "evaluate":
            return self._evaluate(step, self.shape(kappa))
        if kind == "traces":
            return self._traces(step)
        if kind == "prune":
            return self._prune(step, kappa)
        return self._train(step, kappa)

    def _evaluate(self, step, shape: Shape) -> Need:
        ev = self.spec.evaluation
        n = ev.test_limit or self.spec.task.test_size
        labels = 35
        block = labels * ANSWER_TOKENS // 2  # the labels' prefix tree
        score = scoring_bytes(shape, weight_bytes=self.weight_bytes, batch=ev.batch_size, context=PROMPT_TOKENS,
                              block=block)
        gk = inference_bytes(shape, weight_bytes=self.weight_bytes, batch=16, tokens=GK_TOKENS, logit_rows=64)
        cot = step.inputs.get("view") == "cot"
        new = ev.cot_max_new_tokens if cot else ANSWER_TOKENS
        gen = inference_bytes(shape, weight_bytes=self.weight_bytes, batch=max(ev.batch_size, 8), tokens=PROMPT_TOKENS,
                              logit_rows=max(ev.batch_size, 8), kv_tokens=max(ev.batch_size, 8) * (PROMPT_TOKENS + new))
        parts = max((score, gk, gen), key=lambda d: sum(d.values()))
        tokens = n * (PROMPT_TOKENS + block) + _gk_items(self.spec) * GK_TOKENS
        flops = 2 * shape.non_embedding * tokens + 2 * shape.vocab * shape.hidden * n * (block + 1)
        return Need(parts, flops=flops, decode_tokens=n * new if cot else 0.0, decode_batch=ev.batch_size,
                    io_bytes=shape.params * self.weight_bytes, state_bytes=parts["weights"])

    def _traces(self, step) -> Need:
        t = self.spec.traces
        n = step.inputs["limit"] or step.inputs["dataset_size"]
        parts = inference_bytes(self.teacher, weight_bytes=self.weight_bytes, batch=t.batch_size, tokens=PROMPT_TOKENS,
                                logit_rows=t.batch_size, kv_tokens=t.batch_size * (PROMPT_TOKENS + t.max_new_tokens))
        flops = 2 * self.teacher.non_embedding * n * PROMPT_TOKENS
        return Need(parts, flops=flops, decode_tokens=n * t.max_new_tokens, decode_batch=t.batch_size,
                    io_bytes=self.teacher.params * self.weight_bytes, state_bytes=parts["weights"])

    def _prune(self, step, kappa: float) -> Need:
        parent_kappa = step.inputs.get("parent_kappa", 1.0)
        parent, child = self.shape(parent_kappa), self.shape(kappa)
        parts = prune_bytes(parent, child, weight_bytes=self.weight_bytes)
        calib = self.spec.task.calibration_size * CALIB_TOKENS
        return Need(parts, flops=2 * parent.non_embedding * calib,
                    io_bytes=(parent.params + child.params) * self.weight_bytes, state_bytes=parts["weights"])

    def _train(self, step, kappa: float) -> Need:
        from taskdistill.distill.config import make_config

        cfg = make_config(**step.inputs["training"])
        shape = self.shape(kappa)
        tokens = min(cfg.max_length, PROMPT_TOKENS + ANSWER_TOKENS + (self.spec.traces.max_new_tokens
                                                                      if cfg.uses_traces else 0))
        supervised = cfg.batch_size * (tokens - PROMPT_TOKENS)
        lora = lora_parameters(shape, cfg.lora_rank, cfg.lora_targets) if cfg.method == "lora" else 0
        parts = training_bytes(shape, method=cfg.method, frozen_bytes=self.weight_bytes, act_bytes=self.act_bytes,
                               batch=cfg.batch_size, tokens=tokens, supervised=supervised,
                               logit_chunk=cfg.logit_chunk, lora_params=lora, checkpointing=self.checkpointing)
        size = cfg.dataset_size or self.spec.correction.dataset_size
        seen = (cfg.max_steps * cfg.batch_size * cfg.grad_accum) if cfg.max_steps else (cfg.epochs or 1.0) * size
        passes = 6 + (2 if self.checkpointing else 0)
        flops = passes * shape.non_embedding * seen * tokens + 6 * shape.vocab * shape.hidden * seen * (tokens -
                                                                                                        PROMPT_TOKENS)
        teacher_bytes = 0
        if "kl_teacher" in step.deps and not cfg.online_teacher:  # the top-k cache, built first (then freed)
            teacher = inference_bytes(self.teacher, weight_bytes=self.weight_bytes, batch=cfg.batch_size,
                                      tokens=tokens, logit_rows=min(supervised, cfg.logit_chunk))
            teacher_bytes = sum(teacher.values())
            flops += 2 * self.teacher.non_embedding * seen / max(cfg.epochs or 1.0, 1.0) * tokens
        elif "kl_teacher" in step.deps:  # online: held beside the student
            parts["teacher"] = self.teacher.params * self.weight_bytes
        state = parts["state"]
        if teacher_bytes > sum(parts.values()):
            parts = {"teacher_phase": teacher_bytes}
        return Need(parts, flops=flops, io_bytes=shape.params * (self.weight_bytes + 4), training=True,
                    lora=cfg.method == "lora", state_bytes=state)

    # ---- on n GPUs ---------------------------------------------------------------------------------------
    def per_gpu(self, need: Need, n: int) -> tuple[int, str]:
        """Peak per GPU on ``n`` GPUs and how the step spreads (ddp / fsdp2 / device map)."""
        total = need.bytes
        if n == 1:
            return total, ""
        rest = total - need.state_bytes
        if need.training:
            from taskdistill.distill.parallel import choose_strategy

            strategy = "ddp" if need.lora and self.spec.runtime.parallel == "auto" else \
                choose_strategy(self.spec.runtime.parallel, need.state_bytes, self.gpu_memory, n)
            if strategy == "ddp":
                return need.state_bytes + rest // n, "ddp"
            layer = 2 * self.teacher.layer_params * 4  # one layer gathered (and its gradient), fp32
            return need.state_bytes // n + rest // n + layer, "fsdp2"
        return need.state_bytes // n + rest, "device map"

    def seconds(self, need: Need, n: int) -> float:
        """Training runs on all ``n`` GPUs at once; a device map runs its layers one GPU after the other."""
        gpus = n if need.training else 1
        compute = need.flops / (gpus * self.tflops * 1e12 * (TRAIN_MFU if need.training else PREFILL_MFU))
        decode = need.decode_tokens / max(need.decode_batch, 1) * need.state_bytes / self.bandwidth
        return compute + (decode if not need.training else 0.0) + need.io_bytes / READ_BPS

    def estimate(self, step, kappa: float) -> StepEstimate:
        need = self.need(step, kappa)
        if not self.gpus:
            return StepEstimate(step.key, step.kind, step.label, need.bytes, 0, None, "", need.parts)
        budget = int(self.gpu_memory * HEADROOM) - CONTEXT_BYTES
        for n in range(1, self.gpus + 1):
            peak, how = self.per_gpu(need, n)
            if peak <= budget or need.bytes == 0:
                return StepEstimate(step.key, step.kind, step.label, peak, n if need.bytes else 0,
                                    self.seconds(need, n), how, need.parts)
        peak, how = self.per_gpu(need, self.gpus)
        raise TaskDistillError(
            f"step '{step.label}' needs about {peak / GiB:.0f} GiB per GPU on {self.gpus} × "
            f"{self.gpu_memory / GiB:.0f} GiB GPUs ({how or 'one GPU'}; {budget / GiB:.0f} GiB usable each): "
            f"{_fix(step)}")


def _fix(step) -> str:
    if step.kind in ("recover", "correct"):
        return ("raise runtime.gpus or runtime.gpu_memory, lower training.batch_size or training.max_length, "
                "or use method lora")
    if step.kind == "evaluate":
        return "raise runtime.gpus or runtime.gpu_memory, or lower evaluation.batch_size"
    if step.kind == "traces":
        return "raise runtime.gpus or runtime.gpu_memory, or lower traces.batch_size or traces.max_new_tokens"
    return "raise runtime.gpus or runtime.gpu_memory"


def teacher_config(spec):
    """The teacher's config for planning, offline; a clear line when it cannot be read."""
    from taskdistill.models.configs import offline_config

    config = offline_config(spec.teacher)
    if config is None:
        raise TaskDistillError(
            f"cannot size the plan: the config of teacher {spec.teacher!r} is not available offline; download it "
            f"(huggingface-cli download {spec.teacher} config.json), pull the built-in, or give a local folder")
    return config


def estimate_plan(p, spec, config=None, gpus: int | None = None, gpu_memory: int | None = None) -> dict:
    """``{step key: StepEstimate}`` for every step of plan ``p`` (refuses, in one line, a step that fits no GPU
    count); ``config``: the teacher's (default: read offline)."""
    from taskdistill.study.plan import kappas

    est = Estimator(spec, config if config is not None else teacher_config(spec), gpus, gpu_memory)
    kap = kappas(p)
    parent_kappa = {}
    for step in p.steps.values():  # a prune step's parent: the teacher or an earlier recovery
        if step.kind == "prune":
            parent_kappa[step.key] = kap.get(step.deps["parent"], 1.0)
    out = {}
    for step in p.steps.values():
        if step.kind == "prune":
            step = _with(step, parent_kappa=parent_kappa[step.key])
        out[step.key] = est.estimate(step, kap.get(step.key, 1.0))
    cap = spec.runtime.cpu_bytes
    if cap and not est.gpus:
        worst = max(out.values(), key=lambda e: e.peak_bytes)
        if worst.peak_bytes > cap:
            raise TaskDistillError(f"step '{worst.label}' needs about {worst.peak_bytes / GiB:.1f} GiB of host memory, "
                                   f"more than runtime.cpu_memory ({cap / GiB:.1f} GiB): {_fix(worst)}")
    return out


def _with(step, **extra):
    from dataclasses import replace

    return replace(step, inputs={**step.inputs, **extra})


def wall_seconds(estimates: dict, p, gpus: int) -> float | None:
    """The study's wall time on ``gpus`` GPUs: total GPU-seconds / gpus, at least its longest chain of steps."""
    if not gpus or any(e.seconds is None for e in estimates.values() if e.gpus):
        return None
    gpu_seconds = sum((e.seconds or 0.0) * max(e.gpus, 1) for e in estimates.values())
    longest: dict[str, float] = {}
    for step in p.steps.values():  # insertion order is topological
        before = max((longest[d] for d in step.deps.values()), default=0.0)
        longest[step.key] = before + (estimates[step.key].seconds or 0.0)
    return max(gpu_seconds / gpus, max(longest.values(), default=0.0))


STAGING_BYTES = 8 * GiB  # a GPU step's host memory: checkpoints stream to the GPU shard by shard
PROCESS_BYTES = GiB  # python, torch and the tokenizer of one step's process


def host_bytes(e: StepEstimate, on_gpu: bool) -> int:
    """Host memory one step holds: everything on a CPU runtime; on a GPU, what loading stages on the host."""
    if not e.peak_bytes:
        return 0
    if not on_gpu:
        return e.peak_bytes + PROCESS_BYTES
    weights = (e.parts or {}).get("weights") or (e.parts or {}).get("state") or e.peak_bytes
    return min(int(weights), STAGING_BYTES) + PROCESS_BYTES


def ray_needs(p, spec) -> dict:
    """Step key → {"gpus", "host_bytes"} for the Ray executor. With ``runtime.gpus`` a step that cannot fit is
    refused (one line); without, steps get no GPU and host memory from the estimate when the teacher's config
    is at hand (else nothing is declared)."""
    if spec.runtime.gpus:
        estimates = estimate_plan(p, spec)
    else:
        from taskdistill.models.configs import offline_config

        config = offline_config(spec.teacher)
        if config is None:
            return {}
        try:
            estimates = estimate_plan(p, spec, config)
        except TaskDistillError:
            if spec.runtime.cpu_memory:
                raise
            return {}
    on_gpu = bool(spec.runtime.gpus)
    return {k: {"gpus": e.gpus, "host_bytes": host_bytes(e, on_gpu)} for k, e in estimates.items()}
