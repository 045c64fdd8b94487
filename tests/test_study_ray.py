"""The Ray executor on a local Ray instance that the test starts and stops."""

from __future__ import annotations

import pytest
from test_study_resume import small_spec
from test_study_run import metrics, step_rows, tiny_teacher

from taskdistill.study.run import run_study
from taskdistill.study.spec import parse_spec

pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_executor_matches_local(tmp_path, monkeypatch):
    import ray

    spec = small_spec(tiny_teacher(tmp_path))
    spec["axes"] = dict(spec["axes"], dataset_sizes=[8, 12])  # two branches that can run side by side
    parsed = parse_spec(spec)
    monkeypatch.setenv("TASKDISTILL_HOME", str(tmp_path / "home-local"))
    run_study(parsed, tmp_path / "local")
    monkeypatch.setenv("TASKDISTILL_HOME", str(tmp_path / "home-ray"))
    events = []
    summary = run_study(parsed, tmp_path / "ray", executor="ray", num_cpus=2,
                        on_event=lambda what, row: events.append((what, row["key"])))
    assert not ray.is_initialized()  # the local instance was stopped
    rows = step_rows(tmp_path / "ray")
    assert summary == {"done": len(rows)} and all(r["attempts"] == 1 for r in rows.values())
    assert sorted(k for what, k in events if what == "done") == sorted(rows)
    assert metrics(tmp_path / "ray") == metrics(tmp_path / "local")
    # independent steps overlapped: some step started before an earlier-started one finished
    order = [what for what, _ in events]
    assert any(a == "start" and b == "start" for a, b in zip(order, order[1:]))
