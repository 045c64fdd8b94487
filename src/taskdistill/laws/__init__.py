"""Scaling laws of compressed students: closed-form fits with intervals, held-out checks, collapse
points, the source paper's findings, power before compute, and recommendations (docs/laws.md).

Entry points: ``observations.load_rows`` / ``points``, ``forms.register`` (one record per law form),
``fit.fit_points`` / ``fit_with_ceiling``, ``bootstrap.bootstrap_joint``, ``validate.leave_one_level_out``
/ ``mild_to_severe`` / ``compare_forms``, ``derived``, ``analysis.fit_study``, ``findings.test_findings``,
``power.plan_power``, ``recommend.recommend``, ``synthetic`` (rows from known laws).
"""

from taskdistill.lazy import exports

_NAMES = {
    "fit_study": "analysis",
    "fit_points": "fit",
    "recommend": "recommend",
    "load_rows": "observations",
    "register": "forms",
    "FORMS": "forms",
    "plan_power": "power",
    "test_findings": "findings",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
