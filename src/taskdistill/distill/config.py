"""``DistillConfig``: every knob of one distillation run (method, supervision, loss, budget, schedule)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from taskdistill.cache import content_hash
from taskdistill.distill import supervision as formats
from taskdistill.errors import TaskDistillError, did_you_mean

METHODS = ("logit", "lora")
KL_KINDS = ("forward", "reverse", "jsd")
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Fields that change how a run is logged or stored, not what it computes (ignored by resume checks).
NON_TRAINING_FIELDS = frozenset({"checkpoint_every", "max_bad_steps", "logit_chunk", "online_teacher"})


class DistillConfig(BaseModel):
    """One distillation run. Names follow the paper: method, supervision, dataset_size, λ, τ."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field("logit", description="logit (every weight) | lora (PEFT adapters, merged on save)")
    supervision: str = Field("label", description="supervision format (distill/supervision.py): "
                             "label | kl | cot | cot_kl | blended | label_cot")
    dataset_size: int | None = Field(None, ge=1, description="use the first N training examples")
    lam: float = Field(0.5, ge=0.0, le=1.0, description="λ: weight of the KL term in `blended`",
                       json_schema_extra={"cli": "--lambda"})
    temperature: float = Field(1.0, gt=0.0, description="τ: softmax temperature of KL terms (scaled by τ²)")
    kl: str = Field("forward", description="KL kind: forward | reverse | jsd")
    jsd_beta: float = Field(0.5, gt=0.0, lt=1.0, description="β of the generalized JSD")
    trace_ce: float = Field(0.0, ge=0.0, description="weight of an extra CE term on trace tokens in `blended`")
    top_k: int | None = Field(64, ge=1, description="teacher log-probs kept per position (0 on the command line: "
                              "the full vocabulary)", json_schema_extra={"cli_none": 0})
    online_teacher: bool = Field(False, description="compute teacher log-probs per batch instead of caching them")
    lr: float = Field(1e-4, gt=0.0, lt=3.4e38, description="peak AdamW learning rate")  # lt: float32's largest
    max_steps: int | None = Field(None, ge=1, description="optimizer steps (default: epochs)")
    epochs: float | None = Field(None, gt=0.0, description="passes over the data (default 1)")
    batch_size: int = Field(8, ge=1, description="sequences per micro-batch")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0, description="share of the steps spent warming up")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay of matrices")
    max_grad_norm: float = Field(1.0, gt=0.0, description="gradient clipping norm")
    max_length: int = Field(512, ge=8, description="longer sequences are skipped (counted)")
    lora_rank: int = Field(16, ge=1, description="LoRA rank r")
    lora_alpha: float = Field(32.0, gt=0.0, description="LoRA alpha")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="LoRA dropout")
    lora_targets: tuple[str, ...] = Field(DEFAULT_LORA_TARGETS, description="linear layers that get adapters "
                                          "(comma-separated on the command line)")
    seed: int = Field(0, description="seed of initialisation noise and data order")
    bf16: Literal["auto"] | bool = Field("auto", description="bf16 autocast: auto (where measured faster) | "
                                         "true | false")
    checkpoint_every: int | None = Field(None, ge=1, description="checkpoint every N steps (resumed automatically)")
    max_bad_steps: int = Field(10, ge=1, description="stop after this many non-finite (skipped) steps")
    logit_chunk: int = Field(1024, ge=1, description="supervised positions per lm_head chunk")

    @field_validator("method", "supervision", "kl")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        choices, what = {
            "method": (METHODS, "method"),
            "supervision": (formats.names(), "supervision"),
            "kl": (KL_KINDS, "KL kind"),
        }[info.field_name]
        if value not in choices:
            raise did_you_mean(value, choices, what)
        return value

    @model_validator(mode="after")
    def _budget(self) -> DistillConfig:
        if self.max_steps is None and self.epochs is None:
            self.epochs = 1.0
        return self

    # -- derived properties -------------------------------------------------------------
    @property
    def format(self) -> formats.Supervision:
        """The supervision format's record (distill/supervision.py)."""
        return formats.get(self.supervision)

    @property
    def uses_teacher(self) -> bool:
        """Whether the loss needs teacher log-probs (any KL term)."""
        return self.format.needs_teacher(self)

    @property
    def uses_traces(self) -> bool:
        """Whether the training sequences are chain-of-thought completions."""
        return self.format.traces

    def training_hash(self) -> str:
        """Hash of the fields that change what is computed (checkpoints of another hash cannot resume)."""
        return content_hash(self.model_dump(exclude=set(NON_TRAINING_FIELDS)))


def make_config(**kwargs) -> DistillConfig:
    """Build a config, turning pydantic validation errors into one-line ``TaskDistillError``."""
    from pydantic import ValidationError

    try:
        return DistillConfig(**kwargs)
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, TaskDistillError):
            raise cause from None
        where = ".".join(str(p) for p in err["loc"]) or "config"
        raise TaskDistillError(f"invalid distillation setting {where}: {err['msg']}") from None
