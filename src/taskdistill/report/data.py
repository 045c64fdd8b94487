"""Plain study rows → the tables the report shows: per-setting means, retention, Pareto frontier, pick.

Everything here takes the study store's plain rows (``Store.observations`` / ``Store.runs``), so it
is tested with synthetic rows and needs no model.
"""

from __future__ import annotations

import math
from collections import defaultdict

from taskdistill.retention import retention

IN_DOMAIN = ("task_macro_f1", "task_accuracy")
GK_AGGREGATE = "gk_aggregate"
GROUP_KEYS = ("supervision", "method", "schedule")
SETTING_KEYS = ("supervision", "method", "schedule", "keep_fraction", "dataset_size", "stage")


def is_teacher(row: dict) -> bool:
    return row.get("supervision") is None and row.get("method") is None and float(row["keep_fraction"]) == 1.0


def group_label(row: dict) -> str:
    """'cot · logit · iterative' — the curve a row belongs to."""
    return " · ".join(str(row.get(k)) for k in GROUP_KEYS)


def metrics_of(observations: list[dict]) -> dict[str, list[str]]:
    """The study's metric names: in-domain first, then the general-knowledge benchmarks, then the aggregate."""
    names = {r["metric"] for r in observations}
    gk = sorted(n for n in names if n.startswith("gk_") and n != GK_AGGREGATE)
    return {
        "in_domain": [m for m in IN_DOMAIN if m in names],
        "gk": gk,
        "gk_aggregate": [GK_AGGREGATE] if GK_AGGREGATE in names else [],
    }


def _mean(xs):
    xs = [float(x) for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else None


def _sd(xs):
    xs = [float(x) for x in xs if x is not None]
    if len(xs) < 2:
        return None
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def settings_table(observations: list[dict]) -> list[dict]:
    """One row per (metric, supervision, method, schedule, κ, D): seed mean, seed sd, retention, count."""
    bins: dict[tuple, list[dict]] = defaultdict(list)
    for r in observations:
        bins[(r["metric"], *(r.get(k) for k in SETTING_KEYS))].append(r)
    out = []
    for (metric, *setting), rows in bins.items():
        value = _mean(r["value"] for r in rows)
        chance, reference = rows[0].get("chance"), rows[0].get("reference")
        out.append({
            "metric": metric, **dict(zip(SETTING_KEYS, setting)), "teacher": is_teacher(rows[0]),
            "value": value, "value_sd": _sd(r["value"] for r in rows), "seeds": len(rows),
            "values": [r["value"] for r in rows], "chance": chance, "reference": reference,
            "retention": retention(value, chance, reference),
            "retentions": [retention(r["value"], r.get("chance"), r.get("reference")) for r in rows],
            "params": _mean(r.get("params") for r in rows), "latency_ms": _mean(r.get("latency_ms") for r in rows),
        })
    out.sort(key=lambda s: (s["metric"], not s["teacher"], group_label(s), s["dataset_size"] or 0,
                            -float(s["keep_fraction"])))
    return out


def students(observations: list[dict]) -> list[dict]:
    """One row per student setting (seeds averaged) with macro-F1, accuracy, GK retention, params, latency."""
    rows: dict[tuple, dict] = {}
    for s in settings_table(observations):
        key = tuple(s[k] for k in SETTING_KEYS)
        row = rows.setdefault(key, {**{k: s[k] for k in SETTING_KEYS}, "teacher": s["teacher"],
                                    "params": s["params"], "latency_ms": s["latency_ms"], "seeds": s["seeds"]})
        row[s["metric"]] = s["value"]
        if s["metric"].startswith("gk_"):
            row[f"{s['metric']}_retention"] = s["retention"]
    out = list(rows.values())
    for row in out:
        row["gk_retention"] = row.get(f"{GK_AGGREGATE}_retention")
        if row["gk_retention"] is None:  # no aggregate row: mean retention over the benchmarks
            row["gk_retention"] = _mean(v for k, v in row.items() if k.startswith("gk_") and k.endswith("_retention"))
    return out


def pareto_front(rows: list[dict], cost: str = "params", quality=("task_macro_f1", "gk_retention")) -> list[dict]:
    """Non-dominated rows: no other row is at most as costly and at least as good on every quality,
    and strictly better somewhere. Rows missing a coordinate are left out."""
    pts = [r for r in rows if r.get(cost) is not None and all(r.get(q) is not None for q in quality)]

    def dominates(a, b):
        no_worse = a[cost] <= b[cost] and all(a[q] >= b[q] for q in quality)
        better = a[cost] < b[cost] or any(a[q] > b[q] for q in quality)
        return no_worse and better

    return [p for p in pts if not any(dominates(o, p) for o in pts if o is not p)]


def pick_observed(rows: list[dict], min_macro_f1: float | None, min_gk_retention: float | None,
                  max_params: float | None = None, max_latency_ms: float | None = None) -> dict:
    """The cheapest observed student (fewest parameters, then highest macro-F1) meeting every constraint.

    Returns ``{"choice": row | None, "meets": [...], "closest": row | None, "constraints": {...}}``;
    ``closest`` (when nothing meets them) is the student with the smallest total shortfall, each
    constraint's shortfall measured relative to its threshold.
    """
    constraints = {"min_macro_f1": min_macro_f1, "min_gk_retention": min_gk_retention,
                   "max_params": max_params, "max_latency_ms": max_latency_ms}
    cands = [r for r in rows if not r["teacher"]]

    def shortfall(r) -> float | None:
        gaps = []
        for key, field, sign in (("min_macro_f1", "task_macro_f1", 1), ("min_gk_retention", "gk_retention", 1),
                                 ("max_params", "params", -1), ("max_latency_ms", "latency_ms", -1)):
            limit = constraints[key]
            if limit is None:
                continue
            if r.get(field) is None:
                return None
            gaps.append(max(0.0, sign * (limit - r[field]) / max(abs(limit), 1e-12)))
        return sum(gaps)

    scored = [(shortfall(r), r) for r in cands]
    meets = [r for s, r in scored if s == 0.0]
    meets.sort(key=lambda r: (r.get("params") or math.inf, -(r.get("task_macro_f1") or 0)))
    known = [(s, r) for s, r in scored if s is not None]
    closest = min(known, key=lambda t: t[0])[1] if known and not meets else None
    return {"choice": meets[0] if meets else None, "meets": meets, "closest": closest, "constraints": constraints}


def teacher_values(observations: list[dict], view: str = "answer") -> dict[str, float]:
    """The teacher's own value per metric (the κ = 1 rows without supervision or method), in ``view``."""
    rows = [r for r in observations if is_teacher(r)]
    out = {r["metric"]: r["value"] for r in rows}
    out.update({r["metric"]: r["value"] for r in rows if r.get("view", view) == view})
    return out
