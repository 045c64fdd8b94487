"""Scaling laws of compressed students: closed-form fits with intervals, held-out checks, collapse
points and recommendations (docs/laws.md).

Entry points: ``observations.load_rows`` / ``points``, ``fit.fit_points``, ``bootstrap.bootstrap``,
``validate.leave_one_level_out`` / ``mild_to_severe`` / ``compare_forms``, ``derived``,
``analysis.fit_study``, ``recommend.recommend``, ``synthetic`` (rows from known laws).
"""
