"""Benchmark the laws fitter: robustness against a plain single-start least-squares fit, and the
cost of BLAS threads on tiny problems.

    python benchmarks/bench_laws.py [--datasets 40]

1. Joint law c1 on noisy synthetic studies (8 κ × 3 D, binomial noise): our fitter (binomial
   likelihood, variable-projection multi-start) vs scipy.optimize.curve_fit from one generic start
   (least squares on −log q, the usual hand-rolled approach). Reports the collapse point κ50's
   median relative error, how often a fit answers wrongly (κ50 off by > 20 %) and how often it
   refuses (our "not identifiable" statement; curve_fit: an exception).
2. a1 fits with one BLAS thread (what the fitter does) vs the default thread pool.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy.optimize import curve_fit

from taskdistill.errors import TaskDistillError
from taskdistill.laws import derived
from taskdistill.laws.fit import _fit_points, fit_points
from taskdistill.laws.observations import points, validate_rows
from taskdistill.laws.synthetic import rows_from_law

LAW = {"E": 0.03, "a": 0.12, "alpha": 2.0, "b": 1.5, "beta": 0.35}
KAPPAS = (0.9, 0.79, 0.68, 0.58, 0.47, 0.37, 0.26, 0.16)
SIZES = (500, 2000, 8000)
D_REF = 8000.0


def true_k50() -> float:
    room = math.log(2) - LAW["E"] - LAW["b"] * D_REF ** -LAW["beta"]
    return (LAW["a"] / room) ** (1 / LAW["alpha"])


def curve_fit_k50(pts) -> float:
    y = -np.log(np.clip(pts.q, 1e-3, None))

    def model(x, E, a, alpha, b, beta):
        return E + a * x[0] ** -alpha + b * x[1] ** -beta

    p, _ = curve_fit(model, np.vstack([pts.kappa, pts.dataset_size]), y, p0=[0.1, 1.0, 1.0, 1.0, 0.5], maxfev=20000)
    E, a, alpha, b, beta = p
    room = math.log(2) - E - b * D_REF ** -beta
    if room <= 0 or a <= 0:
        raise RuntimeError("no collapse point")
    return (a / room) ** (1 / alpha)


def robustness(n_datasets: int) -> dict:
    truth, rng = true_k50(), np.random.default_rng(0)
    out = {k: {"err": [], "wrong": 0, "refused": 0, "s": 0.0} for k in ("ours", "curve_fit")}
    for _ in range(n_datasets):
        rows = validate_rows(rows_from_law("c1", LAW, metric="gk", kappas=KAPPAS, dataset_sizes=SIZES, n=1000,
                                           chance=0.25, reference=0.55, rng=rng))
        pts = points(rows, "gk")
        for name, fn in (("ours", lambda: derived.kappa50(fit_points(pts, "c1"), dataset_size=D_REF)),
                         ("curve_fit", lambda: curve_fit_k50(pts))):
            t = time.perf_counter()
            try:
                err = abs(fn() / truth - 1)
            except (TaskDistillError, RuntimeError, ValueError):
                out[name]["refused"] += 1
                continue
            finally:
                out[name]["s"] += time.perf_counter() - t
            out[name]["err"].append(err)
            out[name]["wrong"] += err > 0.2
    return out


def threads(n_fits: int = 20) -> tuple[float, float]:
    rows = validate_rows(rows_from_law("a1", {"a": 0.05, "alpha": 1.7}, metric="m", kappas=KAPPAS, n=300, rng=1))
    pts = points(rows, "m")
    t = time.perf_counter()
    for _ in range(n_fits):
        fit_points(pts, "a1")
    single = (time.perf_counter() - t) / n_fits
    t = time.perf_counter()
    for _ in range(n_fits):
        _fit_points(pts, "a1", "auto", 0.1, 6, None)  # same fit, default BLAS thread pool
    default = (time.perf_counter() - t) / n_fits
    return single, default


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=40)
    args = ap.parse_args()
    res = robustness(args.datasets)
    print(f"c1 on {args.datasets} noisy studies, true κ50 = {true_k50():.4f} at D = {D_REF:g}")
    for name, r in res.items():
        print(f"  {name:9s} median |κ50 error| {np.median(r['err']):.3%} (answered fits)   wrong (> 20 %) "
              f"{r['wrong']}/{args.datasets}   refused {r['refused']}/{args.datasets}   "
              f"{r['s'] / args.datasets * 1e3:.0f} ms per fit")
    ours, cf = res["ours"], res["curve_fit"]
    print(f"  ratio curve_fit / ours: median error {np.median(cf['err']) / np.median(ours['err']):.2f}×, "
          f"time {cf['s'] / ours['s']:.2f}×")
    single, default = threads()
    print(f"a1 fit: one BLAS thread {single * 1e3:.1f} ms, default pool {default * 1e3:.1f} ms "
          f"(default / single = {default / single:.1f}×)")


if __name__ == "__main__":
    main()
