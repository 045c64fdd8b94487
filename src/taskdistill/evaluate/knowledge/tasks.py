"""The benchmark registry: local release files -> lm-eval task configs, or lm-eval's hub tasks.

With a benchmark folder (``settings.benchmarks_dir()``) each name reads its original release files
(layout below, the one of ``../shared/data``); without one, the same names run lm-eval's standard
hub-backed tasks (``HUB_TASKS``). ``probe`` and ``jsonl:PATH`` are always local.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from taskdistill import settings
from taskdistill.errors import TaskDistillError, did_you_mean
from taskdistill.evaluate.knowledge import formats


@dataclass(frozen=True)
class Benchmark:
    """A benchmark name, where its files live, how to read them, and how to pick its subset."""

    name: str
    kind: str  # "mc" (log-likelihood over choices) or "gen" (greedy generation, exact match)
    layouts: tuple[tuple[str, ...], ...]  # alternatives; each lists globs relative to the folder
    read: Callable[[list[Path]], list[dict]]
    formulation: str
    balanced: bool = False  # equal items per stratum (subjects) instead of proportional


def _one(reader):
    return lambda paths: reader(paths[0])


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("arc_easy", "mc", (("arc/ARC-Easy-Test.jsonl",), ("ARC-Easy/ARC-Easy-Test.jsonl",)),
                  _one(formats.read_arc), "cloze: answer text after 'Question: …\\nAnswer:'"),
        Benchmark("arc_challenge", "mc",
                  (("arc/ARC-Challenge-Test.jsonl",), ("ARC-Challenge/ARC-Challenge-Test.jsonl",)),
                  _one(formats.read_arc), "cloze: answer text after 'Question: …\\nAnswer:'"),
        Benchmark("hellaswag", "mc",
                  (("hellaswag/hellaswag_val.jsonl",), ("hellaswag_val_1k/hellaswag_val_1000.jsonl",)),
                  _one(formats.read_hellaswag), "cloze: ending after the activity context"),
        Benchmark("piqa", "mc", (("piqa/dev.jsonl", "piqa/dev-labels.lst"), ("piqa/valid.jsonl", "piqa/valid-labels.lst")),
                  lambda p: formats.read_piqa(p[0], p[1]), "cloze: solution after 'Question: goal\\nAnswer:'"),
        Benchmark("mmlu", "mc", (("mmlu/test/*_test.csv",),), lambda p: formats.read_mmlu(p, cloze=False),
                  "letter choice: ' A'..' D' after a lettered list", balanced=True),
        Benchmark("mmlu_cloze", "mc", (("mmlu/test/*_test.csv",),), lambda p: formats.read_mmlu(p, cloze=True),
                  "cloze: answer text (lm-eval mmlu_continuation)", balanced=True),
        Benchmark("mmlu_pro", "mc",
                  (("mmlu_pro/test.parquet",), ("mmlu_pro/data/test-*.parquet",), ("mmlu_pro/test.jsonl",)),
                  formats.read_mmlu_pro, "letter choice over up to 10 options, 0-shot", balanced=True),
        Benchmark("triviaqa", "gen", (("triviaqa_3k/triviaqa_sm_sub.jsonl",), ("triviaqa/*.jsonl",)),
                  _one(formats.read_triviaqa), "greedy answer, exact match against any alias"),
    )
}

# lm-eval's standard hub-backed task (or group) used for each name when no benchmark folder is set.
HUB_TASKS = {
    "arc_easy": "arc_easy",
    "arc_challenge": "arc_challenge",
    "hellaswag": "hellaswag",
    "piqa": "piqa",
    "mmlu": "mmlu",
    "mmlu_cloze": "mmlu_continuation",
    "mmlu_pro": "mmlu_pro",
    "triviaqa": "triviaqa",
}

PROBE_CHANCE = 0.25


def probe_path() -> Path:
    """The built-in probe shipped with the package (generic multiple-choice JSONL)."""
    return Path(str(resources.files("taskdistill") / "resources" / "probe.jsonl"))


def known_names() -> list[str]:
    return ["probe", *BENCHMARKS, "jsonl:PATH"]


def default_benchmarks() -> list[str]:
    """The probe when no benchmark folder is configured; else ARC-Easy, PIQA, HellaSwag, MMLU (cloze)."""
    if settings.benchmarks_dir() is None:
        return ["probe"]
    return ["arc_easy", "piqa", "hellaswag", "mmlu_cloze"]


@dataclass(frozen=True)
class Resolved:
    """A benchmark ready to load: local files (``paths``) or a hub task (``hub``)."""

    name: str
    kind: str
    formulation: str
    balanced: bool
    paths: tuple[Path, ...] = ()
    read: Callable[[list[Path]], list[dict]] | None = None
    hub: str | None = None

    def docs(self) -> list[dict]:
        assert self.read is not None
        return self.read(list(self.paths))


def resolve(name: str, root: Path | None = None) -> Resolved:
    """Map a benchmark name to its local files (checked to exist) or its lm-eval hub task."""
    generic = "cloze: choice text after 'Question: …\\nAnswer:'"
    if name == "probe":
        return Resolved("probe", "mc", generic, False, (probe_path(),), _one(formats.read_generic))
    if name.startswith("jsonl:"):
        path = Path(name[len("jsonl:"):]).expanduser()
        if not path.is_file():
            raise TaskDistillError(f"benchmark {name!r}: no such file {path}; give the path of a JSONL file with "
                                   '{"question", "choices", "answer"} per line')
        return Resolved(name, "mc", generic, False, (path,), _one(formats.read_generic))
    if name not in BENCHMARKS:
        raise did_you_mean(name, known_names(), "benchmark")
    bench = BENCHMARKS[name]
    root = root if root is not None else settings.benchmarks_dir()
    if root is None:
        return Resolved(name, bench.kind, bench.formulation, bench.balanced, hub=HUB_TASKS[name])
    return Resolved(name, bench.kind, bench.formulation, bench.balanced, _locate(bench, Path(root)), bench.read)


def _locate(bench: Benchmark, root: Path) -> tuple[Path, ...]:
    for layout in bench.layouts:
        found = [sorted(root.glob(pattern)) for pattern in layout]
        if all(found):
            return tuple(p for group in found for p in group)
    first = bench.layouts[0]
    missing = [p for p in first if not sorted(root.glob(p))]
    others = "; or ".join(" + ".join(layout) for layout in bench.layouts[1:])
    raise TaskDistillError(
        f"benchmark {bench.name!r}: missing {', '.join(missing)} in the benchmark folder {root}"
        + (f" (also accepted: {others})" if others else "")
        + "; add the original release files or set TASKDISTILL_BENCHMARKS_DIR to a folder that has them"
    )


def task_config(resolved: Resolved, docs: list[dict]) -> dict:
    """lm-eval task config (a dict) over the given documents, mirroring lm-eval's standard task."""
    dataset = functools.partial(_dataset, docs)
    config = {
        "task": f"taskdistill_{resolved.name.replace(':', '_').replace('/', '_')}",
        "custom_dataset": dataset,
        "test_split": "test",
        "doc_to_text": "query",
        "description": "description",
        "num_fewshot": 0,
        "metadata": {"version": 1.0},
    }
    if resolved.kind == "gen":
        config.update({
            "output_type": "generate_until",
            "doc_to_target": "aliases",
            "target_delimiter": " ",
            # lm-eval's triviaqa stops; answers are short, so 32 new tokens bound the batch
            "generation_kwargs": {"until": ["\n", ".", ","], "do_sample": False, "temperature": 0.0,
                                  "max_gen_toks": 32},
            "filter_list": [{"name": "remove_whitespace",
                             "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}]}],
            "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                             "ignore_case": True, "ignore_punctuation": True}],
        })
    else:
        config.update({
            "output_type": "multiple_choice",
            "doc_to_choice": "choices",
            "doc_to_target": "gold",
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                            for m in ("acc", "acc_norm")],
        })
    return config


def _dataset(docs: list[dict], **_ignored):
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})
