"""Expand a study spec into a DAG of steps, each keyed by a content hash of its inputs.

Two steps with equal inputs (kind, settings, the keys of the steps they read) get the same key, so
identical work runs once across the study: the teacher correction, the CoT traces, the pruning of
the teacher to the first κ (shared by every branch), and the intermediate pruned-and-recovered
students of an iterative schedule (a one-shot κ₁ student *is* the iterative κ₁ student). Keys come
from content, not places: the teacher's and the data's fingerprints, never their paths (a step's
``where`` inputs — paths, references — are carried but not hashed).

Step kinds: ``data`` (load, split, nested subsets, calibration set), ``teacher`` (resolve, parameter
count), ``traces`` (CoT traces: the rationales a teacher correction trains on, and the traces CoT
students learn from), ``correct`` (teacher correction), ``prune``, ``recover`` (distillation),
``evaluate`` (in-domain in one view + general knowledge + cost). Every step names its inputs
(``deps``: role → step key), so a step reads ``deps["parent"]``, never a position.

A *branch* is one chain of students (schedule, D, supervision, method, seed): along an iterative
schedule each student is pruned from the previous one, so its runs are dependent; the laws
bootstrap resamples branches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from taskdistill.cache import content_hash
from taskdistill.distill import supervision as formats
from taskdistill.study.spec import StudySpec

STEP_VERSION = 2  # bump when a step function changes what it computes
MODEL_KINDS = ("teacher", "correct", "prune", "recover")


@dataclass(frozen=True)
class Step:
    key: str
    kind: str
    inputs: dict
    deps: dict  # role → key of the step it reads
    label: str
    gate: str | None = None  # evaluate step whose GK retention must reach the early-stop threshold

    def waits_for(self, teacher_eval: str) -> tuple[str, ...]:
        """Steps that must be finished first: the inputs, plus the gate and the reference when gated."""
        return tuple(self.deps.values()) + ((self.gate, teacher_eval) if self.gate else ())


@dataclass(frozen=True)
class Run:
    """One evaluation of one model at one grid coordinate (several coordinates may share a model).

    ``stage``: teacher, pruned (right after a prune, before recovery) or recovered. ``view``: the
    format its in-domain metrics were scored in; ``primary`` runs are in the format the model was
    trained in (others exist when ``evaluation.views: both``).
    """

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
    view: str = "answer"
    branch: str | None = None
    stage: str = "recovered"
    primary: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Plan:
    study: str
    spec_hash: str
    steps: dict[str, Step] = field(default_factory=dict)  # insertion order is a topological order
    runs: list[Run] = field(default_factory=list)
    teacher_eval: str = ""  # the teacher's evaluation in the answer view (the early-stop reference)
    warnings: list[str] = field(default_factory=list)

    def add(self, kind: str, inputs: dict, deps: dict, label: str, gate: str | None = None,
            where: dict | None = None) -> str:
        """Add a step (once: equal inputs give the same key). ``where`` is carried, not hashed."""
        deps = {k: v for k, v in deps.items() if v is not None}
        key = content_hash({"kind": kind, "v": STEP_VERSION, "inputs": inputs, "deps": deps})
        if key not in self.steps:
            self.steps[key] = Step(key, kind, {**inputs, "where": where or {}}, deps, label, gate)
        return key

    def descendants(self, key: str) -> set[str]:
        """Every step that (transitively) depends on ``key``."""
        children: dict[str, list[str]] = {}
        for step in self.steps.values():
            for dep in step.deps.values():
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


def plan(spec: StudySpec, fingerprints: dict | None = None) -> Plan:
    """The DAG of a study (no work is done here). ``fingerprints``: the teacher's and the data
    source's content fingerprints ({"teacher": …, "data": …}), which key the steps."""
    fingerprints = fingerprints or {}
    p = Plan(study=spec.name, spec_hash=spec.spec_hash())
    axes, prompt = spec.axes, spec.prompt.model_dump(mode="json")
    task = spec.task.model_dump(mode="json")
    keyed_task = {**task, "source": fingerprints.get("data", task["source"])}
    data = p.add("data", {"task": keyed_task, "dataset_sizes": spec.subset_sizes()}, {}, "data",
                 where={"source": task["source"]})
    teacher = p.add("teacher", {"fingerprint": fingerprints.get("teacher", spec.teacher)}, {},
                    f"teacher {spec.teacher}", where={"ref": spec.teacher})
    traces_cfg = spec.traces.model_dump(mode="json")
    decoding = {k: traces_cfg[k] for k in ("max_new_tokens", "batch_size")}
    root = teacher
    if spec.correction.enabled:
        c = spec.correction
        rationales = None
        if c.rationales:
            rationales = p.add("traces", {"dataset_size": c.dataset_size, "limit": c.rationales, "explain_gold": True,
                                          "prompt": prompt, **decoding}, {"writer": teacher, "data": data},
                               f"rationales for the correction ({c.rationales} examples)")
        fields = dict(c.training, dataset_size=c.dataset_size, supervision="label_cot" if c.rationales else "label")
        root = p.add("correct", {"training": fields, "prompt": prompt}, {"teacher": teacher, "data": data,
                                                                          "rationales": rationales},
                     "teacher correction")
    base = {"evaluation": spec.evaluation.model_dump(mode="json"), "knowledge": spec.knowledge.model_dump(mode="json"),
            "prompt": prompt}

    def evaluate(model: str, view: str, label: str, cost: bool) -> str:
        return p.add("evaluate", {**base, "view": view, "cost": cost and spec.evaluation.cost},
                     {"model": model, "data": data}, f"{label} [{view}]")

    for view in spec.views():
        ev = evaluate(root, view, "evaluate teacher", cost=view == "answer")
        p.teacher_eval = p.teacher_eval or ev
        p.runs.append(Run(content_hash(["teacher", ev]), ev, root, None, None, None, None, 1.0, 0, None, 0,
                          is_teacher=True, view=view, stage="teacher"))
    writer = root if spec.traces.writer == "root" else teacher
    traces = None
    if any(formats.get(s).traces for s in axes.supervision):
        traces = p.add("traces", {"dataset_size": max(axes.dataset_sizes), "limit": None,
                                  "explain_gold": spec.traces.explain_gold, "prompt": prompt, **decoding},
                       {"writer": writer, "data": data}, "CoT traces")
    gate_on = spec.early_stop.min_gk_retention is not None
    for schedule in axes.schedules:
        for size in axes.dataset_sizes:
            for supervision in axes.supervision:
                record = formats.get(supervision)
                views = [record.view] + [v for v in spec.views() if v != record.view and spec.evaluation.views == "both"]
                for method in axes.method:
                    for seed in axes.seeds:
                        config = spec.run_config(method, supervision, seed, size)
                        kl = None
                        if record.needs_teacher(spec.distill_config(method, supervision, seed, size)):
                            kl = writer if record.traces and spec.traces.kl_targets == "writer" else root
                        chain = content_hash([schedule, size, supervision, method, seed])
                        parent, gate = root, None
                        for index, kappa in enumerate(axes.keep_fractions, start=1):
                            src = root if schedule == "oneshot" else parent
                            branch = chain if schedule == "iterative" else content_hash([chain, kappa])
                            step_index = index if schedule == "iterative" else 1
                            pruned = p.add("prune", {"keep_fraction": kappa, "axes": spec.prune.axes},
                                           {"parent": src, "data": data, "reference": teacher},
                                           f"prune κ={kappa:g}", gate=gate)
                            where = f"κ={kappa:g} D={size} {supervision}/{method} seed={seed}"
                            coords = dict(supervision=supervision, method=method, schedule=schedule,
                                          keep_fraction=kappa, seed=seed, step_index=step_index, branch=branch)
                            if spec.evaluation.after_prune:
                                for view in views:
                                    ev = evaluate(pruned, view, f"evaluate pruned κ={kappa:g}", cost=False)
                                    p.runs.append(Run(content_hash([schedule, size, supervision, method, seed,
                                                                    kappa, "pruned", view]), ev, pruned, src,
                                                      dataset_size=0, view=view, stage="pruned",
                                                      primary=view == record.view, **coords))
                            model = p.add("recover", {"training": config, "prompt": prompt},
                                          {"pruned": pruned, "data": data, "traces": traces if record.traces else None,
                                           "kl_teacher": kl}, f"recover {where}")
                            for view in views:
                                ev = evaluate(model, view, f"evaluate {where}", cost=view == record.view)
                                key = [schedule, size, supervision, method, seed, kappa] + ([view] if
                                                                                             view != record.view else [])
                                p.runs.append(Run(content_hash(key), ev, model, src, dataset_size=size, view=view,
                                                  primary=view == record.view, **coords))
                                if view == record.view:
                                    gate = ev if gate_on and schedule == "iterative" else None
                            parent = model
    p.warnings = design_warnings(spec)
    return p


def design_warnings(spec: StudySpec) -> list[str]:
    """One line per measurement this plan leaves out or cannot make (it is planned anyway), naming the knob.
    (What the grid's size can detect is the laws' power analysis, printed beside it by the CLI.)"""
    out = []
    cot = [s for s in spec.axes.supervision if formats.get(s).traces]
    if cot and spec.traces.writer == "root" and spec.correction.enabled and not spec.correction.rationales \
            and not spec.traces.explain_gold:
        out.append("the traces are written by the corrected teacher, and a teacher corrected on labels only answers "
                   "at once without a rationale: set correction.rationales (e.g. 128), traces.writer: teacher, or "
                   "traces.explain_gold: true")
    if not spec.evaluation.after_prune:
        out.append("no evaluation between pruning and recovery: what pruning alone costs stays unmeasured — set "
                   "evaluation.after_prune: true")
    return out


def work_units(step: Step, spec: StudySpec, kappa_of: dict[str, float]) -> float:
    """Rough compute of a step in teacher example-passes (forward = 1, training step = 3, × κ).

    A relative size for `study plan`, not a time: times come from steps already measured.
    """
    kappa = kappa_of.get(step.key, 1.0)
    if step.kind == "evaluate":
        n_test = spec.evaluation.test_limit or spec.task.test_size
        gk = (spec.knowledge.limit or 0) * len(spec.knowledge.benchmarks)  # all items (no limit): not counted
        task = n_test * (3.0 if step.inputs["view"] == "cot" else 1.0)  # rationale generation, then scoring
        return kappa * (task + gk)
    if step.kind in ("recover", "correct"):
        cfg = step.inputs["training"]
        size = cfg.get("dataset_size") or spec.correction.dataset_size
        if cfg.get("max_steps"):
            seen = cfg["max_steps"] * cfg.get("batch_size", 8) * cfg.get("grad_accum", 1)
        else:
            seen = (cfg.get("epochs") or 1.0) * size
        teacher = 1.0 if "kl_teacher" in step.deps else 0.0
        return seen * (3 * kappa + teacher)
    if step.kind == "prune":
        return spec.task.calibration_size * kappa
    if step.kind == "traces":  # prompt pass + generation, counted as 2 passes per example
        return (step.inputs["limit"] or step.inputs["dataset_size"]) * 2.0
    return 0.0


def kappas(p: Plan) -> dict[str, float]:
    """κ of every model-producing and evaluating step (teacher = 1)."""
    out: dict[str, float] = {}
    for step in p.steps.values():
        if step.kind == "prune":
            out[step.key] = step.inputs["keep_fraction"]
        elif step.kind in ("recover", "evaluate"):
            source = step.deps.get("pruned") or step.deps.get("model")
            out[step.key] = out.get(source, 1.0)
    return out
