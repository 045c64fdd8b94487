"""The benchmark registry: one ``Benchmark`` record per name → an lm-eval task over local documents,
or lm-eval's own hub task.

With a benchmark folder (``settings.benchmarks_dir()``) each name reads its original release files
(the layouts of its record, those of ``../shared/data``); without one, a record's hub dataset is
fetched and read the same way, or lm-eval's standard hub-backed task runs. ``probe`` (packaged) and
``jsonl:PATH`` (any generic multiple-choice file) are always local.
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
    """One general-knowledge benchmark: where its release files live and how to read them, the hub
    alternative, the formulation, the chance level and how its subset is drawn.

    ``kind``: ``mc`` (log-likelihood over the choices; chance = mean of 1/choices, or ``chance``) or
    ``gen`` (greedy generation scored by exact match; chance 0). Without a benchmark folder the hub is
    used: ``hub`` names lm-eval's standard task (or group), or ``hub_dataset`` = (dataset id, config,
    split) is fetched with ``datasets`` and read with ``read`` like a release file, in our formulation.
    ``files`` gives fixed files instead (the packaged probe). Adding a benchmark is one ``register``.
    """

    name: str
    kind: str
    read: Callable[[list[Path]], list[dict]]
    formulation: str
    layouts: tuple[tuple[str, ...], ...] = ()  # alternatives; each lists globs relative to the folder
    hub: str | None = None
    hub_dataset: tuple[str, str | None, str] | None = None
    balanced: bool = False  # equal items per stratum (subjects) instead of proportional
    chance: float | None = None  # a fixed chance level where the rule of ``kind`` does not apply
    files: Callable[[], tuple[Path, ...]] | None = None


def _one(reader):
    return lambda paths: reader(paths[0])


BENCHMARKS: dict[str, Benchmark] = {}


def register(bench: Benchmark) -> Benchmark:
    """Add a benchmark (replacing one of the same name)."""
    if bench.kind not in ("mc", "gen"):
        raise ValueError(f"benchmark kind must be mc or gen, got {bench.kind!r}")
    BENCHMARKS[bench.name] = bench
    return bench


GENERIC = "cloze: choice text after 'Question: …\\nAnswer:'"
CLOZE = "cloze: answer text after 'Question: …\\nAnswer:'"
for _bench in (
    Benchmark("probe", "mc", _one(formats.read_generic), GENERIC, files=lambda: (probe_path(),)),
    Benchmark("arc_easy", "mc", _one(formats.read_arc), CLOZE,
              (("arc/ARC-Easy-Test.jsonl",), ("ARC-Easy/ARC-Easy-Test.jsonl",)), hub="arc_easy"),
    Benchmark("arc_challenge", "mc", _one(formats.read_arc), CLOZE,
              (("arc/ARC-Challenge-Test.jsonl",), ("ARC-Challenge/ARC-Challenge-Test.jsonl",)), hub="arc_challenge"),
    Benchmark("hellaswag", "mc", _one(formats.read_hellaswag), "cloze: ending after the activity context",
              (("hellaswag/hellaswag_val.jsonl",), ("hellaswag_val_1k/hellaswag_val_1000.jsonl",)), hub="hellaswag"),
    Benchmark("piqa", "mc", lambda p: formats.read_piqa(p[0], p[1]), "cloze: solution after 'Question: goal\\nAnswer:'",
              (("piqa/dev.jsonl", "piqa/dev-labels.lst"), ("piqa/valid.jsonl", "piqa/valid-labels.lst")), hub="piqa"),
    Benchmark("mmlu", "mc", lambda p: formats.read_mmlu(p, cloze=False),
              "letter choice: ' A'..' D' after a lettered list", (("mmlu/test/*_test.csv",),), hub="mmlu",
              balanced=True),
    Benchmark("mmlu_cloze", "mc", lambda p: formats.read_mmlu(p, cloze=True),
              "cloze: answer text (lm-eval mmlu_continuation)", (("mmlu/test/*_test.csv",),), hub="mmlu_continuation",
              balanced=True),
    # lm-eval's own mmlu_pro task is generative chain-of-thought (no log-likelihood `acc`): the hub
    # dataset is read in the same letter-choice formulation as the release files instead
    Benchmark("mmlu_pro", "mc", formats.read_mmlu_pro, "letter choice over up to 10 options, 0-shot",
              (("mmlu_pro/test.parquet",), ("mmlu_pro/data/test-*.parquet",), ("mmlu_pro/test.jsonl",)),
              hub_dataset=("TIGER-Lab/MMLU-Pro", None, "test"), balanced=True),
    Benchmark("triviaqa", "gen", _one(formats.read_triviaqa), "greedy answer, exact match against any alias",
              (("triviaqa_3k/triviaqa_sm_sub.jsonl",), ("triviaqa/*.jsonl",)), hub="triviaqa"),
):
    register(_bench)

HUB_TASKS = {name: b.hub for name, b in BENCHMARKS.items() if b.hub}  # lm-eval's task for each name, for reference
PROBE_CHANCE = 0.25


def probe_path() -> Path:
    """The built-in probe shipped with the package (generic multiple-choice JSONL)."""
    return Path(str(resources.files("taskdistill") / "resources" / "probe.jsonl"))


def known_names() -> list[str]:
    return [*BENCHMARKS, "jsonl:PATH"]


def default_benchmarks() -> list[str]:
    """The probe when no benchmark folder is configured; else ARC-Easy, PIQA, HellaSwag, MMLU (cloze)."""
    if settings.benchmarks_dir() is None:
        return ["probe"]
    return ["arc_easy", "piqa", "hellaswag", "mmlu_cloze"]


@dataclass(frozen=True)
class Resolved:
    """A benchmark ready to load: local files (``paths``) or an lm-eval hub task (``hub``)."""

    name: str
    kind: str
    formulation: str
    balanced: bool
    paths: tuple[Path, ...] = ()
    read: Callable[[list[Path]], list[dict]] | None = None
    hub: str | None = None
    chance: float | None = None

    def docs(self) -> list[dict]:
        assert self.read is not None
        return self.read(list(self.paths))


def resolve(name: str, root: Path | None = None) -> Resolved:
    """Map a benchmark name to its local files (checked to exist), its hub dataset, or its lm-eval hub task."""
    if name.startswith("jsonl:"):
        path = Path(name[len("jsonl:"):]).expanduser()
        if not path.is_file():
            raise TaskDistillError(f"benchmark {name!r}: no such file {path}; give the path of a JSONL file with "
                                   '{"question", "choices", "answer"} per line')
        return Resolved(name, "mc", GENERIC, False, (path,), _one(formats.read_generic))
    if name not in BENCHMARKS:
        raise did_you_mean(name, known_names(), "benchmark")
    bench = BENCHMARKS[name]
    common = {"name": name, "kind": bench.kind, "formulation": bench.formulation, "balanced": bench.balanced,
              "chance": bench.chance}
    if bench.files is not None:
        return Resolved(**common, paths=tuple(bench.files()), read=bench.read)
    root = root if root is not None else settings.benchmarks_dir()
    if root is not None:
        return Resolved(**common, paths=_locate(bench, Path(root)), read=bench.read)
    if bench.hub_dataset is not None:
        return Resolved(**common, paths=(_fetch(bench),), read=bench.read)
    return Resolved(**common, hub=bench.hub)


def _fetch(bench: Benchmark) -> Path:
    """The hub dataset of ``bench`` as one local parquet file under the cache home (downloaded once)."""
    path = settings.cache_dir("benchmarks") / bench.name / "test.parquet"
    if path.is_file():
        return path
    import datasets

    dataset, config, split = bench.hub_dataset
    try:
        rows = datasets.load_dataset(dataset, config, split=split)
    except Exception as exc:  # offline, unknown dataset, …: many types
        raise TaskDistillError(f"benchmark {bench.name!r}: could not fetch {dataset} from the hub ({exc}); set "
                               "TASKDISTILL_BENCHMARKS_DIR to a folder holding its release files") from None
    import io

    from taskdistill.cache import atomic_write_bytes

    buf = io.BytesIO()
    rows.to_parquet(buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


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
