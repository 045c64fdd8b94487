"""Bootstrap intervals: refit every replicate with the full start grid, then take percentiles.

Kinds (docs/laws.md, "Intervals"):

- ``branches``: resample branches — the study's independent units, one iterative chain each
  (schedule, nominal D, supervision, method, seed) — with replacement; every run and every metric of
  a drawn branch comes along, so the dependence along a chain (each student is pruned from the
  previous one) and across metrics (the in-domain vs general-knowledge collapse gap, P(meet every
  constraint)) is kept. Rows without a ``branch`` are their own branch (one run each).
- ``runs``: resample single runs, ignoring chains (kept for comparison; too narrow when a chain's
  runs are correlated).
- ``parametric``: redraw each point from the fitted law — binomial counts (beta-binomial with the
  fitted ρ), or for metrics measured with a standard error a normal value with that variance —
  evaluation noise only, for few branches.
- ``auto``: case resampling when there are at least :data:`MIN_UNITS_FOR_CASES` distinct branches,
  else ``parametric``; the case kind is reported as ``runs`` when every branch is a single run.

**Teacher error.** Retention divides by the teacher's value, measured on as few items as each
student. When rows carry ``reference_n`` or ``reference_stderr``, every replicate (any kind) also
redraws the reference from its sampling distribution — binomial at ``reference_n`` items, or normal
with ``reference_stderr`` — once per metric, shared by every row of that metric (it is one teacher
measurement). Without them the reference is treated as exact, and ``Bootstrap.reference`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from taskdistill.errors import TaskDistillError
from taskdistill.laws.fit import Fit, fit_points, single_thread
from taskdistill.laws.observations import Points

KINDS = ("auto", "branches", "runs", "parametric")
# Fewer independent units than this and case resampling under-covers (a percentile bootstrap over
# G clusters under-states the variance by about (G − 1)/G and misses tails): auto goes parametric.
MIN_UNITS_FOR_CASES = 40
MIN_RUNS_FOR_CASES = MIN_UNITS_FOR_CASES  # the name of the threshold when runs were the only unit
BOOTSTRAP_POLISH = 3  # every replicate evaluates the full start grid and polishes its best 3
EXACT_REFERENCE = "exact (the rows give no reference_n or reference_stderr)"


@dataclass
class Bootstrap:
    """Bootstrap replicates of one fit; ``samples[i]`` is None where replicate i could not be fitted."""

    fit: Fit
    samples: list
    kind: str
    reasons: dict = field(default_factory=dict)  # failure message → count
    reference: str = EXACT_REFERENCE  # how the teacher's sampling error was carried
    units: int = 0  # independent units resampled (branches or runs); 0 for parametric

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

    def summary(self) -> dict:
        return {"kind": self.kind, "replicates": len(self.samples), "failed": self.n_failed,
                "failures": self.reasons, "units": self.units, "reference": self.reference}


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


def choose_kind(kind: str, units, unit: str = "runs") -> str:
    """The bootstrap kind for ``kind`` given the independent ``units`` (their case kind: ``unit``)."""
    if kind not in KINDS:
        raise TaskDistillError(f"unknown bootstrap kind {kind!r}; use one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return unit if len(set(units)) >= MIN_UNITS_FOR_CASES else "parametric"


def bootstrap(points: Points, fit: Fit, B: int = 200, kind: str = "auto", seed: int = 0,
              n_polish: int = BOOTSTRAP_POLISH) -> Bootstrap:
    """Bootstrap one fit (see :func:`bootstrap_joint` for several metrics sharing branches)."""
    return bootstrap_joint({"fit": (points, fit)}, B=B, kind=kind, seed=seed, n_polish=n_polish)["fit"]


def bootstrap_joint(problems: dict, B: int = 200, kind: str = "auto", seed: int = 0,
                    n_polish: int = BOOTSTRAP_POLISH) -> dict:
    """Bootstrap several fits {name: (points, fit)} together: replicate i draws the same branches (or
    runs) for all, and one reference per metric."""
    if B < 1:
        raise TaskDistillError("the bootstrap needs at least 1 replicate (--bootstrap ≥ 1)")
    rng = np.random.default_rng(seed)
    branches = sorted({b for pts, _ in problems.values() for b in pts.branch}, key=str)
    runs = sorted({r for pts, _ in problems.values() for r in pts.runs}, key=str)
    kind = choose_kind(kind, branches, "branches" if len(branches) < len(runs) else "runs")
    units = branches if kind == "branches" else runs
    rows_of = {name: _rows_by(pts.branch if kind == "branches" else pts.runs) for name, (pts, _) in problems.items()}
    samplers = {}
    for pts, _ in problems.values():
        samplers.setdefault(pts.metric, _reference_sampler(pts))
    out = {name: Bootstrap(fit, [], kind, reference=_describe(samplers[pts.metric]),
                           units=len(units) if kind != "parametric" else 0)
           for name, (pts, fit) in problems.items()}
    with single_thread():
        for _ in range(B):
            drawn = rng.integers(0, len(units), len(units)) if kind != "parametric" else None
            shift = {metric: (s[0](rng) if s else 0.0) for metric, s in samplers.items()}
            for name, (pts, fit) in problems.items():
                if drawn is not None:
                    index = np.concatenate([rows_of[name].get(units[j], np.zeros(0, int)) for j in drawn])
                    sample = pts.take(index.astype(int))
                else:
                    sample = pts.with_correct(_simulate(pts, fit, rng))
                if shift[pts.metric]:
                    sample = sample.replace(reference=sample.reference + shift[pts.metric])
                out[name].samples.append(_refit(sample, fit, n_polish, out[name].reasons))
    return out


def _rows_by(keys) -> dict:
    rows: dict = {}
    for i, k in enumerate(keys):
        rows.setdefault(k, []).append(i)
    return {k: np.array(v) for k, v in rows.items()}


def _reference_sampler(pts: Points):
    """(draw(rng) → shift of the reference, description), or None when the reference is exact."""
    err = pts.reference_error
    if err is None:
        return None
    ref = float(np.median(pts.reference))
    how, size = err
    if how == "binomial" and float(size).is_integer():
        items = int(size)
        return (lambda rng: rng.binomial(items, min(max(ref, 0.0), 1.0)) / items - ref,
                f"redrawn each replicate: binomial at the teacher's {items} items")
    se = size if how == "stderr" else float(np.sqrt(ref * (1 - ref) / size))
    return (lambda rng: float(rng.normal(0.0, se)),
            f"redrawn each replicate: normal with the teacher's standard error {se:.3g}")


def _describe(sampler) -> str:
    return sampler[1] if sampler else EXACT_REFERENCE


def _simulate(pts: Points, fit: Fit, rng) -> np.ndarray:
    """New correct counts from the fitted law: binomial (beta-binomial with ρ) where n counts items,
    normal with the quasi-binomial variance p(1 − p)/n·(1 + (n − 1)ρ) where n is an effective n."""
    p = np.clip(fit.predict_points(pts), 0.0, 1.0)
    counts = (pts.likelihood != "stderr") & np.isclose(pts.n, np.round(pts.n))
    out = np.empty(len(pts))
    n = np.round(pts.n[counts]).astype(int)
    pc = p[counts]
    if fit.rho > 0:
        phi = 1 / fit.rho - 1
        pc = rng.beta(np.maximum(pc * phi, 1e-9), np.maximum((1 - pc) * phi, 1e-9))
    out[counts] = rng.binomial(n, pc)
    if (~counts).any():
        ne, pn = pts.n[~counts], p[~counts]
        sd = np.sqrt(pn * (1 - pn) / ne * (1 + (ne - 1) * fit.rho))
        out[~counts] = np.clip(rng.normal(pn, sd), 0.0, 1.0) * ne
    return out.astype(np.float64)


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
