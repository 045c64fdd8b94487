"""README carries exactly two set-up commands, and CI runs the test one verbatim."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Set up and run", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line and not line.startswith("#")]


def test_two_setup_commands():
    commands = _commands()
    assert len(commands) == 2
    assert "taskdistill study run configs/quickstart.yaml" in commands[0]
    assert "pytest" in commands[1]
    assert (REPO / "configs" / "quickstart.yaml").is_file()


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "# 2. run the tests" in ci
    readme = (REPO / "README.md").read_text()
    assert readme.split("# 2. run the tests\n", 1)[1].splitlines()[0] == _commands()[1]
