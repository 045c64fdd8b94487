"""Bootstrap intervals: refit every replicate with the full start grid, then take percentiles.

``runs``: resample runs (trained students) with replacement; all metrics of a drawn run come along,
so intervals of cross-metric quantities (the in-domain vs general-knowledge collapse gap, P(meet every
constraint)) keep the metrics' dependence. ``parametric``: redraw each point's correct count from the
fitted law (binomial, or beta-binomial with the fitted ρ): evaluation noise only, for few runs.
``auto``: ``runs`` with at least :data:`MIN_RUNS_FOR_CASES` distinct runs, else ``parametric``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from taskdistill.errors import TaskDistillError
from taskdistill.laws.fit import Fit, fit_points, single_thread
from taskdistill.laws.observations import Points

KINDS = ("auto", "runs", "parametric")
MIN_RUNS_FOR_CASES = 40
BOOTSTRAP_POLISH = 3  # every replicate evaluates the full start grid and polishes its best 3


@dataclass
class Bootstrap:
    """Bootstrap replicates of one fit; ``samples[i]`` is None where replicate i could not be fitted."""

    fit: Fit
    samples: list
    kind: str
    reasons: dict = field(default_factory=dict)  # failure message → count

    @property
    def ok(self) -> list[Fit]:
        return [s for s in self.samples if s is not None]

    @property
    def n_failed(self) -> int:
        return sum(s is None for s in self.samples)

    def draws(self, fn) -> np.ndarray:
        """fn(fit) for every replicate (NaN where the replicate failed); shape (B, ...)."""
        first = np.asarray(fn(self.fit), dtype=np.float64)
        out = np.full((len(self.samples),) + first.shape, np.nan)
        for i, s in enumerate(self.samples):
            if s is not None:
                out[i] = fn(s)
        return out

    def interval(self, fn, level: float = 0.95):
        """Percentile interval of fn(fit) over the successful replicates."""
        return percentile_interval(self.draws(fn), level)

    def param_intervals(self, level: float = 0.95) -> dict:
        return {name: percentile_interval(self.draws(lambda f, k=name: f.params.get(k, np.nan)), level)
                for name in self.fit.params}


def percentile_interval(draws, level: float = 0.95):
    """(lo, hi) percentiles of draws along axis 0, ignoring failed (NaN) replicates."""
    draws = np.asarray(draws, dtype=np.float64)
    if draws.shape[0] == 0:  # no replicates (--bootstrap 0): no interval
        nan = np.full(draws.shape[1:], np.nan)
        return (float(nan), float(nan)) if nan.ndim == 0 else (nan, nan.copy())
    tail = 50 * (1 - level)
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanpercentile(draws, [tail, 100 - tail], axis=0)
    return (float(lo), float(hi)) if np.ndim(lo) == 0 else (lo, hi)


def choose_kind(kind: str, runs) -> str:
    if kind not in KINDS:
        raise TaskDistillError(f"unknown bootstrap kind {kind!r}; use one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "runs" if len(set(runs)) >= MIN_RUNS_FOR_CASES else "parametric"


def bootstrap(points: Points, fit: Fit, B: int = 200, kind: str = "auto", seed: int = 0,
              n_polish: int = BOOTSTRAP_POLISH) -> Bootstrap:
    """Bootstrap one fit (see :func:`bootstrap_joint` for several metrics sharing runs)."""
    return bootstrap_joint({"fit": (points, fit)}, B=B, kind=kind, seed=seed, n_polish=n_polish)["fit"]


def bootstrap_joint(problems: dict, B: int = 200, kind: str = "auto", seed: int = 0,
                    n_polish: int = BOOTSTRAP_POLISH) -> dict:
    """Bootstrap several fits {name: (points, fit)} together: replicate i draws the same runs for all."""
    if B < 1:
        raise TaskDistillError("the bootstrap needs at least 1 replicate (--bootstrap ≥ 1)")
    rng = np.random.default_rng(seed)
    all_runs = sorted({r for pts, _ in problems.values() for r in pts.runs}, key=str)
    kind = choose_kind(kind, all_runs)
    rows_of = {name: _rows_by_run(pts) for name, (pts, _) in problems.items()}
    out = {name: Bootstrap(fit, [], kind) for name, (_, fit) in problems.items()}
    with single_thread():
        for _ in range(B):
            drawn = rng.integers(0, len(all_runs), len(all_runs)) if kind == "runs" else None
            for name, (pts, fit) in problems.items():
                if kind == "runs":
                    index = np.concatenate([rows_of[name].get(all_runs[j], np.zeros(0, int)) for j in drawn])
                    sample = pts.take(index.astype(int))
                else:
                    sample = pts.with_correct(_simulate(pts, fit, rng))
                out[name].samples.append(_refit(sample, fit, n_polish, out[name].reasons))
    return out


def _rows_by_run(pts: Points) -> dict:
    rows: dict = {}
    for i, r in enumerate(pts.runs):
        rows.setdefault(r, []).append(i)
    return {k: np.array(v) for k, v in rows.items()}


def _simulate(pts: Points, fit: Fit, rng) -> np.ndarray:
    p = np.clip(fit.predict_points(pts), 0.0, 1.0)
    n = pts.n.astype(int)
    if fit.rho > 0:
        phi = 1 / fit.rho - 1
        p = rng.beta(np.maximum(p * phi, 1e-9), np.maximum((1 - p) * phi, 1e-9))
    return rng.binomial(n, p).astype(np.float64)


def _refit(sample: Points, fit: Fit, n_polish: int, reasons: dict):
    if len(sample) == 0:
        reasons["no rows drawn"] = reasons.get("no rows drawn", 0) + 1
        return None
    try:
        return fit_points(sample, fit.form, loss=fit.loss, rho=fit.rho, n_polish=n_polish, check=False)
    except TaskDistillError as exc:  # a degenerate resample: counted, reported, left out of the percentiles
        key = str(exc).split(";")[0]
        reasons[key] = reasons.get(key, 0) + 1
        return None
