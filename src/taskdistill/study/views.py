"""What the CLI shows and writes: the plan with cached state and cost, the status table, exports."""

from __future__ import annotations

import json
from pathlib import Path

from taskdistill.errors import TaskDistillError
from taskdistill.study.plan import Plan, kappas, work_units
from taskdistill.study.spec import StudySpec
from taskdistill.study.store import STATUSES, Store, has_store, open_store

KINDS = ("data", "teacher", "correct", "traces", "prune", "recover", "evaluate")


def _stored(folder: Path) -> dict[str, dict]:
    if not has_store(folder):
        return {}
    store = open_store(folder)
    try:
        st = store.study()
        return store.steps(st["name"]) if st else {}
    finally:
        store.close()


def estimate(p: Plan, spec: StudySpec, stored: dict[str, dict]) -> dict[str, dict]:
    """Per kind: steps, cached, work units left, and seconds per unit measured on finished steps."""
    kap = kappas(p)
    out: dict[str, dict] = {}
    for step in p.steps.values():
        row = out.setdefault(step.kind, {"steps": 0, "cached": 0, "units_left": 0.0, "units_done": 0.0,
                                         "seconds_done": 0.0})
        units = work_units(step, spec, kap)
        row["steps"] += 1
        done = stored.get(step.key, {}).get("status") == "done"
        if done:
            row["cached"] += 1
            row["units_done"] += units
            row["seconds_done"] += stored[step.key].get("seconds") or 0.0
        else:
            row["units_left"] += units
    for row in out.values():
        rate = row["seconds_done"] / row["units_done"] if row["units_done"] else None
        row["eta_s"] = rate * row["units_left"] if rate is not None else None
    return out


def plan_tables(p: Plan, spec: StudySpec, folder: Path, all_steps: bool = False) -> list:
    from rich.table import Table

    stored = _stored(folder)
    est = estimate(p, spec, stored)
    students = sum(1 for r in p.runs if r.stage == "recovered" and r.primary)
    fixed = sum(1 for s in p.steps.values() if s.kind in ("data", "teacher", "correct", "traces"))
    fixed += sum(1 for r in p.runs if r.is_teacher)
    # if nothing were shared: prune + recover + evaluate per recovered run, one evaluation per pruned run
    naive = fixed + sum(3 if r.stage == "recovered" else 1 for r in p.runs if not r.is_teacher)
    summary = Table(title=f"study {p.study}: {len(p.steps)} steps for {students} students "
                          f"({naive - len(p.steps)} prune/recover/evaluate steps saved by sharing identical work)")
    for col in ("kind", "steps", "cached", "work left (units)", "estimated time left"):
        summary.add_column(col, justify="left" if col == "kind" else "right")
    for kind in KINDS:
        if kind in est:
            r = est[kind]
            eta = "unknown (none measured yet)" if r["eta_s"] is None and r["units_left"] else \
                f"{(r['eta_s'] or 0) / 60:.1f} min"
            summary.add_row(kind, str(r["steps"]), str(r["cached"]), f"{r['units_left']:,.0f}", eta)
    summary.caption = ("1 unit = one teacher forward pass over one example (training 3, CoT generation 2), scaled by "
                       "κ; benchmarks without a limit are not counted; times extrapolate the seconds per unit "
                       "measured on this study's finished steps")
    tables = [summary]
    if all_steps:
        kap = kappas(p)
        steps = Table(title="steps (plan order)")
        for col in ("#", "kind", "step", "key", "state", "units"):
            steps.add_column(col)
        for i, step in enumerate(p.steps.values(), 1):
            state = stored.get(step.key, {}).get("status", "new")
            steps.add_row(str(i), step.kind, step.label, step.key[:10], state,
                          f"{work_units(step, spec, kap):,.0f}")
        tables.append(steps)
    return tables


def status_table(store: Store, folder: Path):
    from rich.table import Table

    st = store.study()
    if st is None:
        raise TaskDistillError(f"{folder} holds an empty store; start the study with `study run`")
    rows = store.steps(st["name"])
    counts: dict[str, dict[str, int]] = {}
    for row in rows.values():
        counts.setdefault(row["kind"], dict.fromkeys(STATUSES, 0))[row["status"]] += 1
    total = len(rows)
    done = sum(1 for r in rows.values() if r["status"] in ("done", "skipped"))
    table = Table(title=f"study {st['name']} in {folder}: {done}/{total} steps finished ({100 * done / total:.0f} %)")
    table.add_column("kind")
    for status in STATUSES:
        table.add_column(status, justify="right")
    table.add_column("progress")
    for kind in KINDS:
        if kind in counts:
            c = counts[kind]
            n = sum(c.values())
            finished = c["done"] + c["skipped"]
            bar = "█" * round(20 * finished / n) + "░" * (20 - round(20 * finished / n))
            table.add_row(kind, *(str(c[s]) for s in STATUSES), bar)
    running = [r["label"] for r in rows.values() if r["status"] == "running"]
    failed = [f"{r['label']}: {r['error']}" for r in rows.values() if r["status"] == "failed"]
    table.caption = "; ".join(filter(None, ["running: " + ", ".join(running) if running else "",
                                            "failed: " + " | ".join(failed) if failed else ""]))
    return table


def export(store: Store, out: Path, fmt: str) -> list[Path]:
    """Write observations.<fmt> and runs.<fmt> (nested fields as JSON text in csv/parquet)."""
    import pandas as pd

    from taskdistill.cache import atomic_write_bytes, atomic_write_text

    if fmt not in ("csv", "parquet", "json"):
        raise TaskDistillError(f"unknown export format {fmt!r}; use csv, parquet or json")
    if store.study() is None:
        raise TaskDistillError(f"{store.path} holds no study yet; run it first")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in (("observations", store.observations()), ("runs", store.runs())):
        path = out / f"{name}.{fmt}"
        if fmt == "json":
            atomic_write_text(path, json.dumps(rows, indent=1, default=str))
        else:
            flat = [{k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()} for r in rows]
            frame = pd.DataFrame(flat)
            if fmt == "csv":
                atomic_write_text(path, frame.to_csv(index=False))
            else:
                import io

                buf = io.BytesIO()
                frame.to_parquet(buf, index=False)
                atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def resources_tables(p: Plan, spec: StudySpec, estimates: dict, all_steps: bool = False) -> list:
    """Per kind (and with ``all_steps`` per step): estimated peak memory, GPUs, how a step spreads, and time."""
    from rich.table import Table

    from taskdistill.study.resources import wall_seconds

    gpus = spec.runtime.gpus
    where = f"per GPU ({gpus} × {_size(spec.runtime.gpu_bytes)})" if gpus else "host memory"
    table = Table(title=f"resources: peak {where}, GPUs per step and estimated time (study/resources.py)")
    for col in ("kind", "steps", "peak", "GPUs", "spread", "time (GPU-hours)" if gpus else "time"):
        table.add_column(col, justify="left" if col in ("kind", "spread") else "right")
    for kind in KINDS:
        rows = [e for e in estimates.values() if e.kind == kind]
        if not rows:
            continue
        peak = max(e.peak_bytes for e in rows)
        spread = ", ".join(sorted({e.strategy for e in rows if e.strategy})) or \
            ("one GPU" if gpus and any(e.gpus for e in rows) else "—")
        gpu_h = sum((e.seconds or 0.0) * max(e.gpus, 1) for e in rows) if gpus else None
        table.add_row(kind, str(len(rows)), _size(peak) if peak else "—",
                      str(max(e.gpus for e in rows)) if gpus else "0", spread, _hours(gpu_h))
    wall = wall_seconds(estimates, p, gpus)
    table.caption = (f"estimated wall time on {gpus} GPU(s): {_hours(wall)} (GPU-hours / GPUs, at least the longest "
                     "chain); order-of-magnitude: FLOPs at runtime.gpu_tflops, memory checked against measured peaks "
                     "on small CPU models" if gpus else
                     "no GPUs declared (runtime.gpus / --gpus): peaks are host memory; times: the table above")
    tables = [table]
    if all_steps:
        steps = Table(title="resources per step")
        for col in ("#", "step", "peak", "GPUs", "spread", "time"):
            steps.add_column(col)
        for i, step in enumerate(p.steps.values(), 1):
            e = estimates[step.key]
            steps.add_row(str(i), step.label, _size(e.peak_bytes) if e.peak_bytes else "—", str(e.gpus),
                          e.strategy, _hours(e.seconds))
        tables.append(steps)
    return tables
