"""Shared fixtures: tiny in-process models, an isolated cache home, the shared data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """The real public data folder: $TASKDISTILL_DATA_DIR, else ../shared/data beside the checkout."""
    value = os.environ.get("TASKDISTILL_DATA_DIR")
    return Path(value) if value else REPO.parent / "shared" / "data"


@pytest.fixture
def data_dir() -> Path:
    path = shared_data()
    if not path.is_dir():  # in CI a missing data folder is a failure, not a skip
        pytest.fail(f"shared data folder not found at {path}; set TASKDISTILL_DATA_DIR")
    return path


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch, request):
    """Every test gets its own cache home, except real-model tests that share the pulled teacher."""
    if "slow" in request.keywords:
        monkeypatch.setenv("TASKDISTILL_HOME", str(slow_home()))
    else:
        monkeypatch.setenv("TASKDISTILL_HOME", str(tmp_path_factory.mktemp("home")))


def slow_home() -> Path:
    """One cache home for all real-model tests of a session (the teacher is pulled once)."""
    value = os.environ.get("TASKDISTILL_TEST_HOME")
    path = Path(value) if value else REPO / ".test-home"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def teacher_path() -> Path:
    """The built-in SmolLM2 teacher, pulled once into the shared test home."""
    os.environ["TASKDISTILL_HOME"] = str(slow_home())
    from taskdistill.models import builtin

    return builtin.pull("smollm2-135m-instruct")


@pytest.fixture
def tiny():
    from tiny import tiny_model, tiny_tokenizer

    return tiny_model, tiny_tokenizer


@pytest.fixture
def one_thread():
    """Tiny models run fastest single-threaded on a shared CPU; the setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
