"""Out-of-range CLI options are one error line naming the option and its range (exit 2)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from taskdistill.laws.synthetic import rows_from_law


@pytest.fixture
def obs(tmp_path):
    path = tmp_path / "obs.json"
    path.write_text(json.dumps(rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="task_macro_f1",
                                             kappas=(0.9, 0.7, 0.5, 0.3, 0.2), rng=0)))
    return str(path)


@pytest.mark.parametrize("args, message", [
    (["laws", "fit", "{obs}", "--bootstrap", "-5"], "--bootstrap must be ≥ 0 (0: point estimates only); got -5"),
    (["laws", "fit", "{obs}", "--level", "1.5"], "--level must be in (0, 1), e.g. 0.95; got 1.5"),
    (["laws", "fit", "{obs}", "--level", "0"], "--level must be in (0, 1), e.g. 0.95; got 0"),
    (["recommend", "{obs}", "--min-gk-retention", "1.5"],
     "--min-gk-retention must be in [-1, 1] (0 at chance, 1 at the teacher); got 1.5"),
    (["recommend", "{obs}", "--min-gk-retention", "-2"], "--min-gk-retention must be in [-1, 1]"),
    (["recommend", "{obs}", "--min-macro-f1", "85"], "--min-macro-f1 must be in [0, 1] (a fraction); got 85"),
    (["recommend", "{obs}", "--min-macro-f1", "-0.1"], "--min-macro-f1 must be in [0, 1]"),
    (["recommend", "{obs}", "--min-macro-f1", "0.8", "--confidence", "1"], "--confidence must be in (0, 1), e.g. 0.8; got 1"),
    (["recommend", "{obs}", "--min-macro-f1", "0.8", "--confidence", "0"], "--confidence must be in (0, 1)"),
    (["recommend", "{obs}", "--min-macro-f1", "0.8", "--bootstrap", "-1"], "--bootstrap must be ≥ 1; got -1"),
    (["recommend", "{obs}", "--min-macro-f1", "0.8", "--level", "2"], "--level must be in (0, 1)"),
])
def test_out_of_range_options_are_one_line_with_exit_two(obs, args, message):
    from taskdistill.cli import app

    res = CliRunner().invoke(app, [a.format(obs=obs) for a in args])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.output


def test_in_range_bounds_are_accepted(obs):
    from taskdistill.cli import app

    res = CliRunner().invoke(app, ["laws", "fit", obs, "-f", "a1", "--bootstrap", "0", "--level", "0.9"])
    assert res.exit_code == 0, res.output
