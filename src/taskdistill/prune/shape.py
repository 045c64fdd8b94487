"""Shape planning: keep fraction κ of the reference parameters → a target depth and (uniform) width.

Hand-written: no library plans Minitron-style target shapes. Width keeps one shrink factor s for the
hidden size and (as near as divisibility allows) the query heads; head_dim is never changed, so RoPE
stays intact. It solves the MLP
intermediate size to land on the parameter budget; among the candidates within ±1 % it picks the one
whose MLP and head shrinks are closest to s (balanced width). Depth drops whole layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from taskdistill.errors import TaskDistillError
from taskdistill.prune.params import (
    check_supported,
    config_parameters,
    head_dim,
    layer_parameters,
)

AXES = ("width", "depth", "mixed")
TOLERANCE = 0.01
HIDDEN_MULTIPLE = 8  # hidden sizes on a grid of 8 (and divisible by the query heads)


@dataclass(frozen=True)
class TargetShape:
    num_hidden_layers: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, config) -> TargetShape:
        return cls(config.num_hidden_layers, config.hidden_size, config.intermediate_size,
                   config.num_attention_heads, config.num_key_value_heads, head_dim(config))

    def parameters(self, config) -> tuple[int, int]:
        """``(total, non_embedding)`` of ``config``'s architecture at this shape."""
        return config_parameters(config, layers=self.num_hidden_layers, hidden=self.hidden_size,
                                 intermediate=self.intermediate_size, heads=self.num_attention_heads,
                                 kv_heads=self.num_key_value_heads)


def multiple_for(size: int) -> int:
    """Granularity of a pruned MLP width: hardware-friendly multiples, finer for small models."""
    return 64 if size >= 1024 else 32 if size >= 256 else 8


def head_counts(config, shrink: float, hidden: int) -> tuple[int, int] | None:
    """(query heads, kv heads) closest to ``shrink`` × the query heads, among layouts that keep GQA
    valid (query heads pruned evenly within KV groups, each group keeping ≥ 1, then whole groups) and
    divide ``hidden`` (transformers' Llama config requires it); None if no layout fits."""
    nq, nkv = config.num_attention_heads, config.num_key_value_heads
    want = nq * shrink
    options = [(per_group * kv, kv) for kv in range(1, nkv + 1) for per_group in range(1, nq // nkv + 1)
               if hidden % (per_group * kv) == 0]
    # closest count; then the most KV groups (a KV group is dropped only after its query heads)
    return min(options, key=lambda o: (abs(o[0] - want), -o[1]), default=None)


def check_keep_fraction(keep_fraction: float) -> None:
    if not (isinstance(keep_fraction, (int, float)) and 0 < keep_fraction <= 1):
        raise TaskDistillError(f"keep fraction {keep_fraction!r} is outside (0, 1]; pass e.g. --keep 0.58")


def plan_shape(config, keep_fraction: float, axes: str = "width", depth_share: float = 0.5,
               reference_params: int | None = None) -> TargetShape:
    """Target shape with ``keep_fraction`` × reference total parameters (±1 % of that budget); reference defaults to
    ``config`` itself. ``depth_share`` (mixed only) is the share of the compression taken by depth:
    layers kept = round(L · κ_rel^depth_share), where κ_rel is κ relative to the current model."""
    check_supported(config)
    check_keep_fraction(keep_fraction)
    if axes not in AXES:
        raise TaskDistillError(f"unknown pruning axes {axes!r}; use one of {', '.join(AXES)}")
    if not 0 <= depth_share <= 1:
        raise TaskDistillError(f"depth share {depth_share} is outside [0, 1]")
    current = TargetShape.of(config)
    now_total = config_parameters(config)[0]
    reference = reference_params or now_total
    budget = keep_fraction * reference
    if budget > now_total * (1 + TOLERANCE):
        raise TaskDistillError(
            f"keep fraction {keep_fraction} asks for {budget:,.0f} parameters but the model has only "
            f"{now_total:,}; keep fractions must decrease along a schedule")
    if abs(budget - now_total) <= TOLERANCE * budget:
        return current
    if axes == "depth":
        best = _depth_only(config, current, budget)
    else:
        layers = config.num_hidden_layers
        if axes == "mixed":
            layers = max(1, min(layers, round(layers * (budget / now_total) ** depth_share)))
        best = _width(config, current, layers, budget)
    if best is None or abs(best.parameters(config)[0] - budget) > TOLERANCE * budget:
        raise TaskDistillError(_infeasible(config, keep_fraction, axes, reference, best))
    return best


def _depth_only(config, current: TargetShape, budget: float) -> TargetShape | None:
    per_layer = layer_parameters(config)
    fixed = config_parameters(config, layers=0)[0]
    layers = round((budget - fixed) / per_layer)
    if layers < 1:
        return None
    return TargetShape(min(layers, current.num_hidden_layers), *list(current.as_dict().values())[1:])


def _width(config, current: TargetShape, layers: int, budget: float) -> TargetShape | None:
    h0, i0 = current.hidden_size, current.intermediate_size
    mi = multiple_for(i0)
    candidates = []
    for hidden in sorted({h0, *range(HIDDEN_MULTIPLE, h0 + 1, HIDDEN_MULTIPLE)}):
        shrink = hidden / h0
        heads = head_counts(config, shrink, hidden)
        if heads is None:
            continue
        nq, nkv = heads
        fixed = config_parameters(config, layers=layers, hidden=hidden, intermediate=1, heads=nq, kv_heads=nkv)[0]
        per_neuron = config_parameters(config, layers=layers, hidden=hidden, intermediate=2, heads=nq,
                                       kv_heads=nkv)[0] - fixed
        raw = 1 + (budget - fixed) / per_neuron
        for inter in {min(i0, max(mi, mi * round(raw / mi))), min(i0, max(1, round(raw)))}:
            shape = TargetShape(layers, hidden, inter, nq, nkv, current.head_dim)
            error = abs(shape.parameters(config)[0] - budget) / budget
            on_grid = inter % mi == 0 or inter == i0
            balance = max(abs(inter / i0 - shrink), abs(nq / current.num_attention_heads - shrink))
            candidates.append((error > TOLERANCE, not on_grid, round(balance, 6), error, shape))
    return min(candidates, key=lambda c: c[:4])[-1] if candidates else None


def _infeasible(config, keep_fraction, axes, reference, best) -> str:
    floor = config_parameters(config, layers=1 if axes == "depth" else 0)[0] / reference
    hint = f"the smallest reachable keep fraction here is about {floor:.2f}" if axes == "depth" else ""
    got = f" (closest shape keeps {best.parameters(config)[0] / reference:.3f})" if best else ""
    extra = "; try --axes width or mixed" if axes == "depth" else ""
    return f"keep fraction {keep_fraction} is infeasible with axes={axes} within ±1 %{got}{extra}" + (
        f"; {hint}" if hint and not best else "")
