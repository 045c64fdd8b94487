"""How far a newly trained student lands from the law's mean: between-seed spread plus test noise.

A new student's measured value is Y = μ(setting) + seed effect + test noise, with

- **test noise** p(1 − p)/n at the metric's evaluation size n (test items for counts; the effective
  n = v(1 − v)/stderr² for metrics measured with a standard error, so it reproduces that stderr);
- **between-seed variance** σ²_seed, estimated (docs/laws.md, "Recommend") from settings run with
  several seeds — the pooled within-setting variance of the values minus their mean test
  variance — or, when no setting is replicated, from the fit's residuals: (Σ residual² − Σ test
  variance)/(N − k). Either is clipped at 0. The residual estimate also absorbs any misfit of the
  law, so it errs on the wide side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Spread:
    seed_var: float
    source: str  # "seeds" (replicated settings), "residuals" (no replicated setting), "none"
    n_test: float  # median evaluation size (items, or effective n)
    dof: int  # degrees of freedom behind seed_var

    def test_var(self, p):
        p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
        return p * (1 - p) / self.n_test

    def sd(self, p):
        """Standard deviation of a new student's measured value around a mean value p."""
        return np.sqrt(self.seed_var + self.test_var(p))

    def to_dict(self) -> dict:
        return {"seed_sd": float(np.sqrt(self.seed_var)), "source": self.source, "n_test": self.n_test,
                "dof": self.dof}


def _point_test_var(pts) -> np.ndarray:
    v = np.clip(pts.value, 0.5 / pts.n, 1 - 0.5 / pts.n)
    return v * (1 - v) / pts.n


def settings_of(pts) -> list[tuple]:
    """Each row's setting: its run key without the seed (RUN_KEYS order puts the seed last)."""
    return [r[:-1] for r in pts.runs]


def estimate_spread(pts, fit=None) -> Spread:
    """Between-seed variance and test size of one metric's points (see the module docstring)."""
    if fit is not None and fit.form.positive_D:
        pts = pts.take(pts.D > 0)
    n_test = float(np.median(pts.n))
    v, tv = pts.value, _point_test_var(pts)
    groups: dict = {}
    for i, s in enumerate(settings_of(pts)):
        groups.setdefault(s, []).append(i)
    reps = [np.array(g) for g in groups.values() if len(g) >= 2]
    if reps:
        ss = sum(float(np.sum((v[g] - v[g].mean()) ** 2)) for g in reps)
        dof = sum(len(g) - 1 for g in reps)
        noise = float(np.mean(np.concatenate([tv[g] for g in reps])))
        return Spread(max(0.0, ss / dof - noise), "seeds", n_test, dof)
    if fit is not None:
        resid = v - fit.predict_points(pts)
        dof = max(len(pts) - fit.n_params, 1)
        return Spread(max(0.0, float(np.sum(resid**2 - tv)) / dof), "residuals", n_test, dof)
    return Spread(0.0, "none", n_test, 0)


def residual_correlation(pts_a, fit_a, spread_a, pts_b, fit_b, spread_b, min_pairs: int = 5) -> float:
    """Correlation of two metrics' standardised residuals on the same runs (0 with under ``min_pairs``)."""
    def standardised(pts, fit, spread):
        if fit.form.positive_D:
            pts = pts.take(pts.D > 0)
        resid = pts.value - fit.predict_points(pts)
        return dict(zip(pts.runs, resid / np.sqrt(spread.seed_var + _point_test_var(pts))))

    ra, rb = standardised(pts_a, fit_a, spread_a), standardised(pts_b, fit_b, spread_b)
    common = [k for k in ra if k in rb]
    if len(common) < min_pairs:
        return 0.0
    x, y = np.array([ra[k] for k in common]), np.array([rb[k] for k in common])
    if np.std(x) == 0 or np.std(y) == 0:
        return 0.0
    return float(np.clip(np.corrcoef(x, y)[0, 1], -0.95, 0.95))
