"""What a student costs to run: parameters, analytic FLOPs, measured throughput, latency and memory.

Definitions (also in docs/report.md):

* **Parameters** — ``params_total`` counts every distinct tensor once (tied embeddings once);
  ``params_non_embedding`` leaves out the input embedding and an untied ``lm_head``.
* **FLOPs per token** (forward, one token attending to ``context_length`` earlier tokens)::

      2·N_matmul + 2·V·d + 4·L·n_ctx·d_attn

  ``N_matmul`` = weights of the linear layers in the transformer blocks (non-embedding matrices;
  norms and biases are not multiply-adds), ``2·V·d`` = the logits (vocabulary × hidden),
  ``4·L·n_ctx·d_attn`` = scores Q·Kᵀ and the weighted sum A·V in L layers with
  d_attn = query heads × head_dim (grouped KV heads still cost full dot products).
  This is the count ``torch.utils.flop_counter.FlopCounterMode`` reports for an eager forward
  (tested). ``context_length`` is the mean prompt length of the measured prompts.
* **Throughput** at each batch size B, median of ``repeats`` timed runs after one warm-up:
  ``t1`` = ``generate`` of 1 token (prefill of the B padded prompts), ``tN`` = ``generate`` of
  1 + ``new_tokens`` tokens. Prefill tokens/s = real (non-pad) prompt tokens / t1; decode
  tokens/s = B·new_tokens / (tN − t1) (greedy, KV cache, EOS suppressed so every row decodes).
* **Latency per headline** (classification latency) = tN / B: prefill of the classification
  prompt plus ``new_tokens`` greedy answer tokens (room for a ``[[Label]]`` answer), per headline,
  at batch 1 and at the largest batch size.
* **Peak memory** — Linux only: the kernel's resident-set high-water mark (VmHWM) is reset through
  ``/proc/self/clear_refs`` before the measurement and read after it; ``peak_rss_mb`` is that mark
  and ``peak_rss_delta_mb`` its rise over the resident set just before (activations and KV cache;
  memory the allocator already holds from earlier work is reused and not counted again).
  ``weights_mb`` is the exact byte size of parameters and buffers.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field

from taskdistill.errors import TaskDistillError
from taskdistill.models.params import count_parameters

# Default measurement inputs: real-looking headlines and the 13-category taxonomy of PAPER.md.
HEADLINES = [
    "Acme Corp beats quarterly earnings estimates as revenue rises 12%",
    "Globex cuts full-year guidance on weak demand in Europe",
    "Initech announces $2 billion share buyback program",
    "Analyst upgrades Umbrella to buy, raises price target to $45",
    "Hooli to acquire Pied Piper in $1.2 billion all-cash deal",
    "Moody's downgrades Wayne Enterprises to Baa3, outlook negative",
    "FDA approves Stark Pharma's migraine drug after priority review",
    "Dock workers at Vandelay Industries vote to strike over pay",
]
LABELS = [
    "Analyst Rating", "Price Targets", "Earnings", "Labour Issues", "Mergers and Acquisitions",
    "Dividends", "Regulatory", "Stock price movement", "Credit Ratings", "Products-Services",
    "Product Approval", "Guidance", "OTHER",
]


@dataclass
class Cost:
    params_total: int
    params_non_embedding: int
    params_matmul: int
    flops_per_token: float
    context_length: float
    prefill_tokens_per_s: dict[int, float]
    decode_tokens_per_s: dict[int, float]
    latency_ms: dict[int, float]
    weights_mb: float
    peak_rss_mb: float | None
    peak_rss_delta_mb: float | None
    new_tokens: int
    repeats: int
    torch_threads: int
    machine: dict = field(default_factory=dict)
    peak_device_mb: float | None = None  # CUDA: torch's peak allocated memory on the model's first GPU

    @property
    def latency_ms_batch1(self) -> float | None:
        return self.latency_ms.get(1)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("prefill_tokens_per_s", "decode_tokens_per_s", "latency_ms"):
            out[key] = {str(b): v for b, v in out[key].items()}
        out["latency_ms_batch1"] = self.latency_ms.get(1)
        big = max(self.latency_ms) if self.latency_ms else None
        out["latency_ms_batched"] = self.latency_ms.get(big) if big is not None else None
        out["batch_size_batched"] = big
        return out


def matmul_parameters(model) -> int:
    """Weights of the linear layers outside the embedding and the output head."""
    skip = {id(model.get_input_embeddings().weight)}
    head = model.get_output_embeddings()
    if head is not None:
        skip.add(id(head.weight))
    return sum(p.numel() for p in model.parameters() if p.dim() >= 2 and id(p) not in skip)


def flops_per_token(model, context_length: float) -> float:
    """Analytic forward FLOPs of one token at ``context_length`` (formula in the module docstring)."""
    cfg = model.config
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    vocab, hidden = model.get_input_embeddings().weight.shape
    attention = 4 * text.num_hidden_layers * context_length * heads * head_dim
    return float(2 * matmul_parameters(model) + 2 * vocab * hidden + attention)


def default_prompts(tokenizer, n: int = 8) -> list[str]:
    """Classification prompts for the built-in headlines (the toolkit's prompt format)."""
    from taskdistill.models.prompts import build_prompt

    return [build_prompt(tokenizer, HEADLINES[i % len(HEADLINES)], LABELS) for i in range(n)]


def _rss_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRSS:
    """Context manager: the resident-set high-water mark inside the block (Linux ``/proc``).

    Resets VmHWM through ``/proc/self/clear_refs`` (Linux ≥ 4.0) on entry; ``peak_mb`` and
    ``delta_mb`` (rise over the resident set at entry) are None where that is not possible.
    """

    def __enter__(self) -> PeakRSS:
        self.peak_mb = self.delta_mb = None
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self._before = _rss_kb("VmRSS")
        except OSError:
            self._before = None
        return self

    def __exit__(self, *exc) -> None:
        peak = _rss_kb("VmHWM") if self._before is not None else None
        if peak is not None:
            self.peak_mb = peak / 1024
            self.delta_mb = (peak - self._before) / 1024


def machine_info() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _synchronize(device) -> None:
    """Wait for queued GPU work, so a timer measures it (a no-op on the CPU)."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.synchronize(device)


def _median_time(fn, repeats: int, device=None) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _median_time_with_setup(setup, fn, repeats: int, device=None) -> float:
    """Median time of ``fn`` over ``repeats`` runs (after one warm-up), each after an untimed ``setup``."""
    times = []
    for i in range(repeats + 1):
        setup()
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _prefill(model, batch):
    import torch

    positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        return model(**batch, position_ids=positions, use_cache=True, logits_to_keep=1)


def _decode(model, batch, out, new_tokens: int) -> None:
    """Greedy decoding of ``new_tokens`` tokens from a prefilled KV cache (one forward per token)."""
    import torch

    key = "cache" if "cache" in out else "past_key_values"  # transformers ≥ 5.24 renamed it
    mask, cache = batch["attention_mask"], out[key]
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    position = mask.sum(-1, keepdim=True) - 1
    with torch.inference_mode():
        for _ in range(new_tokens):
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
            position = position + 1
            step = model(input_ids=nxt, attention_mask=mask, position_ids=position, use_cache=True, **{key: cache})
            cache, nxt = step[key], step.logits[:, -1].argmax(-1, keepdim=True)


def _generate(model, batch, new_tokens: int, pad_id: int) -> None:
    import torch

    with torch.inference_mode():
        model.generate(
            **batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1,
            pad_token_id=pad_id, use_cache=True,
        )


def _measure_batch(model, batch, new_tokens: int, repeats: int, pad_id: int) -> tuple[float, float, float]:
    """(prefill tokens/s, decode tokens/s, latency ms per row) of one padded batch."""
    rows, real_tokens = batch["input_ids"].shape[0], int(batch["attention_mask"].sum())
    device = batch["input_ids"].device
    t_prefill = _median_time(lambda: _prefill(model, batch), repeats, device)
    prefilled = []  # the KV cache grows in place, so every decode run starts from a fresh prefill
    t_decode = _median_time_with_setup(
        lambda: prefilled.append(_prefill(model, batch)),
        lambda: _decode(model, batch, prefilled.pop(), new_tokens),
        repeats, device,
    )
    t_generate = _median_time(lambda: _generate(model, batch, new_tokens, pad_id), repeats, device)
    return real_tokens / t_prefill, rows * new_tokens / t_decode, 1000.0 * t_generate / rows


def measure_cost(
    model,
    tokenizer,
    prompts: list[str] | None = None,
    batch_sizes: tuple[int, ...] = (1, 8),
    new_tokens: int = 16,
    repeats: int = 3,
) -> Cost:
    """Measure the cost of running ``model`` on this machine (definitions in the module docstring)."""
    import torch

    if new_tokens < 1 or repeats < 1 or not batch_sizes or min(batch_sizes) < 1:
        raise TaskDistillError("measure_cost needs new_tokens ≥ 1, repeats ≥ 1 and batch sizes ≥ 1")
    prompts = list(prompts) if prompts is not None else default_prompts(tokenizer, max(batch_sizes))
    if not prompts or not all(p.strip() for p in prompts):
        raise TaskDistillError("measure_cost got an empty prompt list or an empty prompt; pass classification prompts")
    if tokenizer.pad_token_id is None:
        raise TaskDistillError("the tokenizer has no pad token; load the model with taskdistill.models.load.load_model")
    add_special = not getattr(tokenizer, "chat_template", None)
    lengths = [len(tokenizer(p, add_special_tokens=add_special)["input_ids"]) for p in prompts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only generation pads on the left
    was_training = model.training
    model.eval()
    prefill, decode, latency = {}, {}, {}
    try:
        device = model.get_input_embeddings().weight.device  # the first device of a device map

        def encode(rows):
            return tokenizer(rows, return_tensors="pt", padding=True, add_special_tokens=add_special).to(device)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with PeakRSS() as memory:
            warm = encode(prompts[: max(batch_sizes)])
            _generate(model, warm, 2, tokenizer.pad_token_id)  # first calls pay one-off thread-pool setup
            for b in sorted(set(batch_sizes)):
                batch = encode([prompts[i % len(prompts)] for i in range(b)])
                prefill[b], decode[b], latency[b] = _measure_batch(model, batch, new_tokens, repeats, tokenizer.pad_token_id)
                _synchronize(device)
        peak_device = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    weights = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    total, non_embedding = count_parameters(model)
    context = statistics.fmean(lengths)
    return Cost(
        params_total=int(total),
        params_non_embedding=int(non_embedding),
        params_matmul=matmul_parameters(model),
        flops_per_token=flops_per_token(model, context),
        context_length=context,
        prefill_tokens_per_s=prefill,
        decode_tokens_per_s=decode,
        latency_ms=latency,
        weights_mb=weights / 2**20,
        peak_rss_mb=memory.peak_mb,
        peak_rss_delta_mb=memory.delta_mb,
        peak_device_mb=peak_device,
        new_tokens=new_tokens,
        repeats=repeats,
        torch_threads=torch.get_num_threads(),
        machine=machine_info(),
    )
