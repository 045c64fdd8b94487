"""Fitted-law curves for the report: one law per (metric, supervision · method · schedule) along κ.

Fitting, bootstrap and κ50 are the laws stage's (`laws.fit.fit_points`, `laws.bootstrap.bootstrap`,
`laws.derived.kappa50`); this module only chooses the slices (each group at the dataset size with
the most κ levels) and evaluates the law and its 95 % percentile band on a κ grid. A slice the laws
stage refuses (too few points, not identifiable) becomes a plain note in the report.
"""

from __future__ import annotations

import numpy as np

from taskdistill.errors import TaskDistillError
from taskdistill.report.data import GROUP_KEYS, group_label, is_teacher

KAPPA_GRID = np.geomspace(0.05, 1.0, 60)


def slice_dataset_size(rows: list[dict]) -> float | None:
    """The dataset size with the most κ levels (ties → the largest); the κ curves are drawn at it."""
    levels: dict[float, set] = {}
    for r in rows:
        levels.setdefault(r["dataset_size"], set()).add(r["keep_fraction"])
    if not levels:
        return None
    return max(levels, key=lambda d: (len(levels[d]), d))


def fit_curves(observations: list[dict], metrics: list[str], form: str = "a1", bootstrap: int = 40,
               seed: int = 0) -> list[dict]:
    """One entry per (metric, group): the law on ``KAPPA_GRID`` with a 95 % band, κ50, or a note."""
    from taskdistill.laws.bootstrap import bootstrap as run_bootstrap
    from taskdistill.laws.derived import kappa50
    from taskdistill.laws.fit import fit_points
    from taskdistill.laws.observations import points

    students = [r for r in observations if not is_teacher(r)]
    out = []
    for metric in metrics:
        rows = [r for r in students if r["metric"] == metric]
        groups = sorted({tuple(r.get(k) for k in GROUP_KEYS) for r in rows}, key=str)
        for group in groups:
            where = dict(zip(GROUP_KEYS, group))
            sel = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
            D = slice_dataset_size(sel)
            entry = {"metric": metric, "group": where, "label": group_label(where), "dataset_size": D,
                     "form": form, "kappa": KAPPA_GRID.tolist()}
            try:
                pts = points(sel, metric, dataset_size=D)
                fit = fit_points(pts, form)
            except TaskDistillError as exc:
                entry["note"] = str(exc)
                out.append(entry)
                continue
            entry.update(q=np.clip(fit.predict_q(KAPPA_GRID), 0.0, 1.0).tolist(), params=fit.params,
                         converged=fit.converged, aicc=fit.aicc, n_points=fit.n_points,
                         starts_reached=f"{fit.starts_reached}/{fit.starts_polished}",
                         chance=float(np.mean(pts.chance)), reference=float(np.mean(pts.reference)),
                         kappa50=float(kappa50(fit)), q_lo=None, q_hi=None, kappa50_interval=None, bootstrap=0)
            if bootstrap >= 2:
                boot = run_bootstrap(pts, fit, B=bootstrap, seed=seed)
                if len(boot.ok) >= 2:
                    lo, hi = boot.interval(lambda f: np.clip(f.predict_q(KAPPA_GRID), 0.0, 1.0))
                    k_lo, k_hi = boot.interval(lambda f: kappa50(f))
                    entry.update(q_lo=lo.tolist(), q_hi=hi.tolist(), kappa50_interval=[k_lo, k_hi],
                                 bootstrap=len(boot.ok), bootstrap_kind=boot.kind)
            out.append(entry)
    return out


def collapse_gaps(curves: list[dict], in_domain: str = "task_macro_f1", gk: str = "gk_aggregate") -> list[dict]:
    """Per group: κ50 of the in-domain metric and of general knowledge, and their gap (GK − in-domain)."""
    by = {(c["metric"], c["label"]): c for c in curves}
    out = []
    for label in sorted({c["label"] for c in curves}):
        a, b = by.get((in_domain, label)), by.get((gk, label))
        if a is None or b is None:
            continue
        ka, kb = a.get("kappa50"), b.get("kappa50")
        out.append({"label": label, "in_domain": in_domain, "gk": gk, "kappa50_in_domain": ka, "kappa50_gk": kb,
                    "gap": kb - ka if ka is not None and kb is not None else None})
    return out
