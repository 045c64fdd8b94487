"""The study spec: one YAML file naming the teacher, the task data, the benchmarks and the grid.

Validated with pydantic; every error becomes one ``TaskDistillError`` line that names the field
(dotted path) and the fix, with "did you mean" suggestions for unknown keys and axis values.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from taskdistill.cache import content_hash
from taskdistill.distill import supervision as formats
from taskdistill.distill.config import METHODS
from taskdistill.errors import TaskDistillError, did_you_mean
from taskdistill.models.prompts import PromptFormat
from taskdistill.prune.shape import AXES as PRUNE_AXES

SCHEDULES = ("iterative", "oneshot")
# Fields the study sets per run itself; they may not appear under `training`.
PER_RUN_FIELDS = ("method", "supervision", "seed", "dataset_size")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _choices(values: list[str], known: tuple[str, ...], what: str) -> list[str]:
    if not values:
        raise ValueError(f"the {what} axis is empty; list at least one of: {', '.join(known)}")
    for value in values:
        if value not in known:
            raise ValueError(str(did_you_mean(value, known, what)))
    if len(set(values)) != len(values):
        raise ValueError(f"the {what} axis lists a value twice; list each value once")
    return values


class TaskSpec(_Strict):
    """Where the task data comes from and how it is split."""

    source: str = Field(description="synthetic[:n=…,seed=…], hf:owner/name, or a csv/jsonl/parquet path")
    text_col: str | None = None
    label_col: str | None = None
    id_col: str | None = None
    cot_col: str | None = None
    no_id_col: bool = Field(False, description="ignore any id column and number the rows")
    drop_duplicates: bool = Field(False, description="drop exact duplicate rows (same text and label)")
    test_size: int = Field(1000, ge=1, description="held-out test examples (stratified, fixed)")
    split_seed: int = 0
    calibration_size: int = Field(64, ge=1, description="training-pool headlines used to rank what to prune")

    @model_validator(mode="after")
    def _one_id_source(self) -> TaskSpec:
        if self.no_id_col and self.id_col is not None:
            raise ValueError("give id_col or no_id_col: true, not both")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_switches(self, handler):
        # the two switches appear only when on, so specs that do not use them keep their hash and step keys
        out = handler(self)
        for name in ("no_id_col", "drop_duplicates"):
            if not out.get(name):
                out.pop(name, None)
        return out


class KnowledgeSpec(_Strict):
    """General-knowledge benchmarks evaluated after every step."""

    benchmarks: list[str] | str = Field("default", description="names, or `default`: the offline probe, or "
                                        "real benchmark files when a benchmark folder is configured")
    limit: int | None = Field(100, ge=1, description="items per benchmark (None: all)")
    seed: int = 0

    @field_validator("benchmarks")
    @classmethod
    def _benchmarks(cls, value: list[str] | str) -> list[str]:
        from taskdistill.evaluate.knowledge import tasks

        if value == "default":  # resolved now, so the spec copy and its hash record what was evaluated
            return tasks.default_benchmarks()
        if isinstance(value, str) or not value:
            raise ValueError("give a list of benchmarks, e.g. [probe, arc_easy], or `default`")
        known = tasks.known_names()
        for name in value:
            if name not in known and not name.startswith("jsonl:"):
                raise ValueError(str(did_you_mean(name, known, "benchmark")))
        if len(set(value)) != len(value):
            raise ValueError("a benchmark is listed twice; list each once")
        return value


class Axes(_Strict):
    """The grid: every combination is one branch of the study."""

    dataset_sizes: list[int]
    keep_fractions: list[float] | str = Field(description="κ values, or a named schedule such as `paper`")
    schedules: list[str] = Field(default_factory=lambda: ["iterative"])
    supervision: list[str] = Field(default_factory=lambda: ["label"])
    method: list[str] = Field(default_factory=lambda: ["logit"])
    seeds: list[int] = Field(default_factory=lambda: [0])

    @field_validator("dataset_sizes")
    @classmethod
    def _sizes(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("the dataset_sizes axis is empty; list at least one training-set size")
        if min(value) < 1:
            raise ValueError("dataset sizes must be ≥ 1 example")
        if len(set(value)) != len(value):
            raise ValueError("the dataset_sizes axis lists a size twice; list each once")
        return sorted(value)

    @field_validator("keep_fractions")
    @classmethod
    def _kappas(cls, value):
        if isinstance(value, str):
            from taskdistill.prune.schedule import parse_schedule

            try:
                value = list(parse_schedule(value))
            except TaskDistillError as exc:
                raise ValueError(str(exc)) from None
        if not value:
            raise ValueError("the keep_fractions axis is empty; list κ values in (0, 1), e.g. [0.79, 0.58]")
        for kappa in value:
            if not 0.0 < kappa < 1.0:
                raise ValueError(f"keep fraction {kappa} is outside (0, 1); κ is the share of teacher parameters kept")
        if len(set(value)) != len(value):
            raise ValueError("the keep_fractions axis lists a κ twice; list each once")
        return sorted(value, reverse=True)

    @field_validator("schedules")
    @classmethod
    def _schedules(cls, value: list[str]) -> list[str]:
        return _choices(value, SCHEDULES, "schedule")

    @field_validator("supervision")
    @classmethod
    def _supervision(cls, value: list[str]) -> list[str]:
        return _choices(value, formats.names(), "supervision")

    @field_validator("method")
    @classmethod
    def _method(cls, value: list[str]) -> list[str]:
        return _choices(value, METHODS, "method")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("the seeds axis is empty; list at least one seed, e.g. [0]")
        if len(set(value)) != len(value):
            raise ValueError("the seeds axis lists a seed twice; list each once")
        return value


class PromptSpec(PromptFormat):
    """The task prompt every stage builds (models/prompts.py): instruction, label list, hints, system."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CorrectionSpec(_Strict):
    """Teacher correction: a short distillation of the teacher on the task before pruning."""

    enabled: bool = False
    dataset_size: int = Field(500, ge=1)
    rationales: int = Field(0, ge=0, description="the first N correction examples also train the chain-of-thought "
                            "format, with rationales the uncorrected teacher writes to explain their gold labels, "
                            "so that the corrected teacher can still write its own traces")
    training: dict[str, Any] = Field(default_factory=dict, description="DistillConfig fields")

    @model_validator(mode="after")
    def _rationales(self) -> CorrectionSpec:
        if self.rationales > self.dataset_size:
            raise TaskDistillError(f"rationales={self.rationales} is more than dataset_size={self.dataset_size}; "
                                   "lower correction.rationales")
        return self


class TracesSpec(_Strict):
    """Chain-of-thought traces for CoT supervision (distill/traces.py)."""

    max_new_tokens: int = Field(64, ge=8)
    batch_size: int = Field(8, ge=1)
    explain_gold: bool = Field(False, description="tell the writer the gold label (rationalisation); default: its own "
                               "reasoning, kept where its answer is the gold label")
    writer: str = Field("root", description="root: the corrected teacher (the teacher when correction is off); "
                        "teacher: the uncorrected teacher")
    kl_targets: str = Field("writer", description="whose log-probs KL formats over traces learn: writer (the model "
                            "that wrote the traces) or root")

    @field_validator("writer")
    @classmethod
    def _writer(cls, value: str) -> str:
        if value not in ("root", "teacher"):
            raise ValueError(str(did_you_mean(value, ("root", "teacher"), "trace writer")))
        return value

    @field_validator("kl_targets")
    @classmethod
    def _kl_targets(cls, value: str) -> str:
        if value not in ("writer", "root"):
            raise ValueError(str(did_you_mean(value, ("writer", "root"), "KL target model")))
        return value


class PruneSpec(_Strict):
    axes: str = "mixed"

    @field_validator("axes")
    @classmethod
    def _axes(cls, value: str) -> str:
        if value not in PRUNE_AXES:
            raise ValueError(str(did_you_mean(value, PRUNE_AXES, "pruning axes")))
        return value


class EvaluationSpec(_Strict):
    """How every student (and the teacher) is evaluated: each in the format it was trained in."""

    views: str = Field("trained", description="trained: each student in its supervision's view (answer, or its own "
                       "rationale then the answer); both: also the other view, stored beside it")
    after_prune: bool = Field(True, description="also evaluate every pruned model before its recovery")
    test_limit: int | None = Field(None, ge=1, description="score only the first N test examples")
    batch_size: int = Field(8, ge=1)
    cot_max_new_tokens: int = Field(48, ge=4, description="longest rationale a student may write in the CoT view")
    precision: str = Field("auto", description="weights every evaluation runs in: float32, bfloat16, or auto "
                           "(bfloat16 where the processor computes it natively; measured within tolerance of "
                           "float32 in benchmarks/RESULTS.md)")
    cost: bool = True
    cost_repeats: int = Field(2, ge=1)
    cost_batch_sizes: list[int] = Field(default_factory=lambda: [1, 8], description="batch sizes timed by cost")

    @field_validator("precision")
    @classmethod
    def _precision(cls, value: str) -> str:
        if value not in ("auto", "float32", "bfloat16"):
            raise ValueError(str(did_you_mean(value, ("auto", "float32", "bfloat16"), "evaluation precision")))
        return value

    @field_validator("views")
    @classmethod
    def _views(cls, value: str) -> str:
        if value not in ("trained", "both"):
            raise ValueError(str(did_you_mean(value, ("trained", "both"), "evaluation views")))
        return value


_UNITS = {"": 1, "b": 1} | {f"{p}{s}": 2 ** (10 * i) for i, p in enumerate("kmgt", 1) for s in ("", "b", "ib")}


def parse_bytes(value: str | int | None) -> int | None:
    """``80GB``, ``80GiB`` or ``80G`` (all 80 × 2³⁰: a GPU sold as "80 GB" holds 80 GiB), ``512MB``, or bytes."""
    if value is None or isinstance(value, int):
        return value
    import re

    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"{value!r} is not a memory size; write e.g. 80GB, 80GiB or 640G")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


class RuntimeSpec(_Strict):
    """Where the steps run and on what hardware the plan must fit (models/runtime.py, study/resources.py).

    Only ``dtype`` changes results, so only a non-default dtype is part of the spec hash: a study folder can
    be resumed on another device (or more GPUs) as the same study. ``auto`` resolves per machine (bf16
    weights on a GPU, fp32 on the CPU), like ``training.bf16: auto``; pin it for results comparable across
    machines. The resolved device and dtype are recorded in the provenance."""

    device: str = Field("auto", description="auto | cpu | cuda | cuda:N | mps")
    dtype: str = Field("auto", description="auto | float32 | bfloat16 | float16 (weights of inference stages; "
                       "training keeps float32 masters under this mixed precision)")
    gpus: int = Field(0, ge=0, description="GPUs the study may use (for Ray: the cluster's); 0: none declared")
    gpu_memory: str | int | None = Field(None, description="memory of each GPU, e.g. 80GB (needed with gpus)")
    cpu_memory: str | int | None = Field(None, description="host memory one step may use, e.g. 512GB (default: "
                                         "not checked)")
    gpu_tflops: float = Field(312.0, gt=0, description="dense bf16 TFLOP/s of one GPU, for time estimates "
                              "(A100 312, H100 989)")
    gradient_checkpointing: str | bool = Field("auto", description="recompute decoder activations in backward: "
                                               "auto (on GPUs) | true | false")
    parallel: str = Field("auto", description="training over several GPUs: auto (DDP while the replicated state "
                          "fits, else FSDP2) | ddp | fsdp2")

    @field_validator("device", "dtype", "parallel")
    @classmethod
    def _names(cls, value: str, info: ValidationInfo) -> str:
        from taskdistill.distill.parallel import check_strategy
        from taskdistill.models.runtime import check_device_name, check_dtype_name

        return {"device": check_device_name, "dtype": check_dtype_name, "parallel": check_strategy}[info.field_name](
            value)

    @field_validator("gpu_memory", "cpu_memory")
    @classmethod
    def _memory(cls, value):
        parse_bytes(value)
        return value

    @field_validator("gradient_checkpointing")
    @classmethod
    def _checkpointing(cls, value):
        if value not in ("auto", True, False):
            raise ValueError("use auto, true or false")
        return value

    @model_validator(mode="after")
    def _hardware(self) -> RuntimeSpec:
        if self.gpus and self.gpu_memory is None:
            raise TaskDistillError(f"gpus={self.gpus} needs gpu_memory (e.g. 80GB) to size the plan; add "
                                   "runtime.gpu_memory")
        if self.gpus and self.device in ("cpu", "mps"):
            raise TaskDistillError(f"gpus={self.gpus} with device {self.device!r}; set runtime.device to auto or "
                                   "cuda, or gpus to 0")
        return self

    def request(self) -> dict:
        """What ``resolve_runtime`` takes in the process that runs a step."""
        return {"device": self.device, "dtype": self.dtype, "gradient_checkpointing": self.gradient_checkpointing}

    @property
    def gpu_bytes(self) -> int | None:
        return parse_bytes(self.gpu_memory)

    @property
    def cpu_bytes(self) -> int | None:
        return parse_bytes(self.cpu_memory)


class EarlyStop(_Strict):
    """Stop a branch when general-knowledge retention of its latest student falls below a threshold."""

    min_gk_retention: float | None = Field(None, description="e.g. 0.2; None never stops")


class StudySpec(_Strict):
    """A whole study: one YAML file."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    teacher: str = Field(description="built-in name, local Hugging Face folder, or hub id")
    task: TaskSpec
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    knowledge: KnowledgeSpec = Field(default_factory=KnowledgeSpec)
    axes: Axes
    correction: CorrectionSpec = Field(default_factory=CorrectionSpec)
    traces: TracesSpec = Field(default_factory=TracesSpec)
    prune: PruneSpec = Field(default_factory=PruneSpec)
    training: dict[str, Any] = Field(default_factory=dict, description="DistillConfig fields shared by all runs")
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    early_stop: EarlyStop = Field(default_factory=EarlyStop)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    report: bool = Field(True, description="fit laws and write report.html at the end")

    @model_validator(mode="after")
    def _cross(self) -> StudySpec:
        for where, extra in (("training", self.training), ("correction.training", self.correction.training)):
            fixed = [k for k in extra if k in PER_RUN_FIELDS]
            if fixed:
                raise TaskDistillError(f"{where}.{fixed[0]} is set by the study axes; remove it from {where}")
            distill_config(extra, where=where)
        return self

    def views(self) -> list[str]:
        """Evaluation views the study uses: its formats' views (both when asked), answer first."""
        used = {formats.get(s).view for s in self.axes.supervision} | {"answer"}
        return [v for v in formats.VIEWS if v in used or self.evaluation.views == "both"]

    def prompt_format(self) -> PromptFormat:
        return PromptFormat(**self.prompt.model_dump())

    def subset_sizes(self) -> list[int]:
        """Every nested training subset the study reads: the dataset sizes and the correction set."""
        extra = [self.correction.dataset_size] if self.correction.enabled else []
        return sorted(set(self.axes.dataset_sizes) | set(extra))

    def spec_hash(self) -> str:
        """Hash of everything that changes results: the runtime only through a non-default dtype (where the
        steps run, and on how many GPUs, does not change what they compute)."""
        data = self.model_dump(mode="json")
        runtime = data.pop("runtime")
        if runtime["dtype"] != "auto":
            data["runtime"] = {"dtype": runtime["dtype"]}
        return content_hash(data)

    def with_runtime(self, **overrides) -> StudySpec:
        """This spec with runtime fields replaced (the CLI's --device / --dtype / --gpus …; None: keep)."""
        fields = {k: v for k, v in overrides.items() if v is not None}
        if not fields:
            return self
        data = self.model_dump(mode="json")
        data["runtime"] = {**data["runtime"], **fields}
        return parse_spec(data, origin="--device/--dtype/--gpus")

    def run_config(self, method: str, supervision: str, seed: int, dataset_size: int) -> dict:
        """The full DistillConfig fields of one recovery run (validated)."""
        return self.distill_config(method, supervision, seed, dataset_size).model_dump(mode="json")

    def distill_config(self, method: str, supervision: str, seed: int, dataset_size: int):
        """The DistillConfig of one recovery run."""
        fields = dict(self.training, method=method, supervision=supervision, seed=seed, dataset_size=dataset_size)
        return distill_config(fields, where="training")


def distill_config(fields: dict, where: str):
    """Validate DistillConfig fields, naming the spec field on error."""
    from taskdistill.distill.config import DistillConfig

    unknown = [k for k in fields if k not in DistillConfig.model_fields]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(DistillConfig.model_fields), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise TaskDistillError(f"{where}.{unknown[0]}: unknown distillation setting.{hint}")
    try:
        return DistillConfig(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = err.get("ctx", {}).get("error")
        msg = str(cause) if isinstance(cause, TaskDistillError) else err["msg"]
        loc = ".".join(str(p) for p in err["loc"])
        raise TaskDistillError(f"{where}.{loc}: {msg}") from None


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names of the sub-model a validation error location points into."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        ann = field.annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return list(model.model_fields)


def _message(err: dict) -> str:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "spec"
    cause = err.get("ctx", {}).get("error")
    if err["type"] == "extra_forbidden":
        known = _fields_at(StudySpec, loc[:-1]) or []
        close = difflib.get_close_matches(str(loc[-1]), known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"{where}: unknown key.{hint} Known keys here: {', '.join(known)}."
    if err["type"] == "missing":
        return f"{where}: required field missing; add it to the spec"
    if isinstance(cause, TaskDistillError):
        return f"{where}: {cause}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}"


def parse_spec(data: Any, origin: str = "spec") -> StudySpec:
    """Validate a spec mapping; raise one clear TaskDistillError on the first problem."""
    if not isinstance(data, dict):
        raise TaskDistillError(f"{origin}: a study spec must be a YAML mapping (name:, teacher:, task:, axes:, …)")
    try:
        return StudySpec(**data)
    except ValidationError as exc:
        raise TaskDistillError(f"{origin}: {_message(exc.errors()[0])}") from None
    except TaskDistillError as exc:
        raise TaskDistillError(f"{origin}: {exc}") from None


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a YAML study spec."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise TaskDistillError(f"{path}: no such study spec; give a YAML file such as configs/quickstart.yaml")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise TaskDistillError(f"{path}: not valid YAML{where}; fix the syntax") from None
    return parse_spec(data, origin=str(path))


def dump_spec(spec: StudySpec) -> str:
    import yaml

    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
