"""LoRA students through PEFT: adapters on attention and MLP projections, merged into a plain HF model."""

from __future__ import annotations

from taskdistill.distill.config import DistillConfig
from taskdistill.errors import TaskDistillError


def linear_names(model) -> set[str]:
    """Last name component of every ``nn.Linear`` in the model (what PEFT's target_modules match)."""
    import torch

    return {name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)}


def apply_lora(model, config: DistillConfig):
    """Wrap ``model`` with LoRA adapters (rank, alpha, dropout, targets from ``config``); base weights frozen."""
    from peft import LoraConfig, get_peft_model

    present = linear_names(model)
    missing = [t for t in config.lora_targets if t not in present]
    if missing:
        raise TaskDistillError(
            f"LoRA target(s) {', '.join(missing)} match no linear layer of the student; "
            f"choose from: {', '.join(sorted(present))}"
        )
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def merge(model):
    """Fold the adapters into the base weights and return the plain transformers model."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model
