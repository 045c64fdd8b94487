"""Expand a study spec into a DAG of steps, each keyed by a content hash of its inputs.

Two steps with equal inputs (kind, settings, the keys of the steps they read) get the same key, so
identical work runs once across the study: the teacher correction, the CoT traces, the pruning of
the teacher to the first κ (shared by every branch), and the intermediate pruned-and-recovered
students of an iterative schedule (a one-shot κ₁ student *is* the iterative κ₁ student).

Step kinds: ``data`` (load, split, nested subsets, calibration set), ``teacher`` (resolve + fingerprint),
``correct`` (teacher correction), ``traces`` (CoT traces for the largest dataset size, by the uncorrected teacher), ``prune``,
``recover`` (distillation), ``evaluate`` (in-domain + general knowledge + cost).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from taskdistill.cache import content_hash
from taskdistill.study.spec import StudySpec

STEP_VERSION = 1  # bump when a step function changes what it computes
MODEL_KINDS = ("teacher", "correct", "recover")
TRACE_SUPERVISIONS = ("cot", "cot_kl", "blended")


@dataclass(frozen=True)
class Step:
    key: str
    kind: str
    inputs: dict
    deps: tuple[str, ...]
    label: str
    gate: str | None = None  # evaluate step whose GK retention must reach the early-stop threshold

    def waits_for(self, teacher_eval: str) -> tuple[str, ...]:
        """Steps that must be finished first: the inputs, plus the gate and the reference when gated."""
        return self.deps + ((self.gate, teacher_eval) if self.gate else ())


@dataclass(frozen=True)
class Run:
    """One evaluated student at one grid coordinate (several coordinates may share a student)."""

    key: str
    eval_key: str
    model_key: str
    parent_key: str | None
    supervision: str | None
    method: str | None
    schedule: str | None
    keep_fraction: float
    dataset_size: int
    seed: int | None
    step_index: int
    is_teacher: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Plan:
    study: str
    spec_hash: str
    steps: dict[str, Step] = field(default_factory=dict)  # insertion order is a topological order
    runs: list[Run] = field(default_factory=list)
    teacher_eval: str = ""

    def add(self, kind: str, inputs: dict, deps: tuple[str, ...], label: str, gate: str | None = None) -> str:
        key = content_hash({"kind": kind, "v": STEP_VERSION, "inputs": inputs, "deps": list(deps)})
        if key not in self.steps:
            self.steps[key] = Step(key, kind, inputs, tuple(deps), label, gate)
        return key

    def descendants(self, key: str) -> set[str]:
        """Every step that (transitively) depends on ``key``."""
        children: dict[str, list[str]] = {}
        for step in self.steps.values():
            for dep in step.deps:
                children.setdefault(dep, []).append(step.key)
        out, stack = set(), [key]
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in out:
                    out.add(child)
                    stack.append(child)
        return out

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for step in self.steps.values():
            out[step.kind] = out.get(step.kind, 0) + 1
        return out


def plan(spec: StudySpec) -> Plan:
    """The DAG of a study (no work is done here)."""
    p = Plan(study=spec.name, spec_hash=spec.spec_hash())
    axes = spec.axes
    data = p.add("data", {"task": spec.task.model_dump(mode="json"), "dataset_sizes": spec.subset_sizes()}, (),
                 "data")
    teacher = p.add("teacher", {"ref": spec.teacher}, (), f"teacher {spec.teacher}")
    root = teacher
    if spec.correction.enabled:
        fields = dict(spec.correction.training, dataset_size=spec.correction.dataset_size)
        root = p.add("correct", {"training": fields}, (teacher, data), "teacher correction")
    evaluation = {"evaluation": spec.evaluation.model_dump(mode="json"),
                  "knowledge": spec.knowledge.model_dump(mode="json")}
    p.teacher_eval = p.add("evaluate", evaluation, (root, data), "evaluate teacher")
    p.runs.append(Run(content_hash(["teacher", p.teacher_eval]), p.teacher_eval, root, None, None, None, None,
                      1.0, 0, None, 0, is_teacher=True))
    traces = None
    if any(s in TRACE_SUPERVISIONS for s in axes.supervision):
        # written by the uncorrected instruction-tuned teacher: a label-format correction teaches it to answer
        # [[Label]] at once, without the rationale a trace needs (docs/distillation.md, "Teacher signals")
        traces = p.add("traces", {"dataset_size": max(axes.dataset_sizes), **spec.traces.model_dump(mode="json")},
                       (teacher, data), "CoT traces")
    gate_on = spec.early_stop.min_gk_retention is not None
    for schedule in axes.schedules:
        for size in axes.dataset_sizes:
            for supervision in axes.supervision:
                for method in axes.method:
                    for seed in axes.seeds:
                        config = spec.run_config(method, supervision, seed, size)
                        parent, gate = root, None
                        for index, kappa in enumerate(axes.keep_fractions, start=1):
                            src = root if schedule == "oneshot" else parent
                            pruned = p.add("prune", {"keep_fraction": kappa, "axes": spec.prune.axes}, (src, data),
                                           f"prune κ={kappa:g}", gate=gate)
                            deps = (pruned, data, root) + ((traces,) if supervision in TRACE_SUPERVISIONS else ())
                            model = p.add("recover", {"training": config}, deps,
                                          f"recover κ={kappa:g} D={size} {supervision}/{method} seed={seed}")
                            ev = p.add("evaluate", evaluation, (model, data), f"evaluate κ={kappa:g} D={size} "
                                       f"{supervision}/{method} seed={seed}")
                            coords = [schedule, size, supervision, method, seed, kappa]
                            p.runs.append(Run(content_hash(coords), ev, model, src, supervision, method, schedule,
                                              kappa, size, seed, index if schedule == "iterative" else 1))
                            parent = model
                            gate = ev if gate_on and schedule == "iterative" else None
    return p


def work_units(step: Step, spec: StudySpec, kappa_of: dict[str, float]) -> float:
    """Rough compute of a step in teacher example-passes (forward = 1, training step = 3, × κ).

    A relative size for `study plan`, not a time: times come from steps already measured.
    """
    kappa = kappa_of.get(step.key, 1.0)
    if step.kind == "evaluate":
        n_test = spec.evaluation.test_limit or spec.task.test_size
        gk = (spec.knowledge.limit or 0) * len(spec.knowledge.benchmarks)  # all items (no limit): not counted
        return kappa * (n_test + gk)
    if step.kind in ("recover", "correct"):
        cfg = step.inputs["training"]
        size = cfg.get("dataset_size") or spec.correction.dataset_size
        if cfg.get("max_steps"):
            seen = cfg["max_steps"] * cfg.get("batch_size", 8) * cfg.get("grad_accum", 1)
        else:
            seen = (cfg.get("epochs") or 1.0) * size
        teacher = 1.0 if cfg.get("supervision") in ("kl", "cot_kl", "blended") else 0.0
        return seen * (3 * kappa + teacher)
    if step.kind == "prune":
        return spec.task.calibration_size * kappa
    if step.kind == "traces":  # prompt pass + generation, counted as 2 passes per example
        return step.inputs["dataset_size"] * 2.0
    return 0.0


def kappas(p: Plan) -> dict[str, float]:
    """κ of every model-producing and evaluating step (teacher = 1)."""
    out: dict[str, float] = {}
    for step in p.steps.values():
        if step.kind == "prune":
            out[step.key] = step.inputs["keep_fraction"]
        elif step.kind in ("recover", "evaluate") and step.deps:
            out[step.key] = out.get(step.deps[0], 1.0)
    return out
