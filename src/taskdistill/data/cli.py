"""``taskdistill data synth|inspect|split``."""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(
    help="Task data: generate synthetic headlines, inspect any source, write a fixed split.", no_args_is_help=True
)

SOURCE_HELP = ("synthetic[:n=2000,seed=0,granularity=fine|coarse], hf:owner/name[:split] (finheadlinemix = "
               "hf:nvidia/FinHeadlineMix), or a .csv/.tsv/.jsonl/.json/.parquet file.")
TEXT_COL = typer.Option(None, "--text-col", help="Column holding the text (default: auto-detect).")
LABEL_COL = typer.Option(None, "--label-col", help="Column holding the label (default: auto-detect).")
ID_COL = typer.Option(None, "--id-col", help="Column holding unique example ids (default: 'id' if present).")
LABEL_NAMES = typer.Option(
    None, "--label-names", help="Names for integer labels: a JSON file (list, or {id: name}) or 'a,b,c'. "
    "A labels.json beside the data file is used automatically.")
NO_ID_COL = typer.Option(False, "--no-id-col", help="Ignore any id column; number the rows instead (ids "
                         "<file stem>-<row>), e.g. when a file repeats an id once per target or aspect.")
DROP_DUPLICATES = typer.Option(False, "--drop-duplicates", help="Drop exact duplicate rows (same text and "
                               "label; the first is kept) and print how many were dropped.")


def _load(source: str, text_col, label_col, id_col, label_names, no_id_col=False, drop_duplicates=False):
    from taskdistill.data.load import load_task_data

    data = load_task_data(source, text_col=text_col, label_col=label_col, id_col=id_col, label_names=label_names,
                          no_id_col=no_id_col, drop_duplicates=drop_duplicates)
    report_dropped(data)
    return data


def report_dropped(data) -> None:
    """One line on stderr saying how many exact duplicate rows ``--drop-duplicates`` dropped."""
    if "dropped_duplicates" in data.meta:
        n = data.meta["dropped_duplicates"]
        typer.echo(f"dropped {n} exact duplicate row{'' if n == 1 else 's'} (same text and label) "
                   f"from {data.name}; {len(data)} remain", err=True)


@data_app.command("synth")
def synth_cmd(
    out: Path = typer.Option(..., "--out", help="Output .jsonl file (written atomically)."),
    n: int = typer.Option(2000, "--n", min=1, help="Number of headlines."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same file."),
    granularity: str = typer.Option("fine", "--granularity", help="fine (35 event classes) or coarse (13)."),
) -> None:
    """Write SYNTHETIC financial-news headlines (35 fine / 13 coarse event classes) as jsonl."""
    from rich.console import Console

    from taskdistill.cache import check_writable
    from taskdistill.data import synthetic
    from taskdistill.data.files import write_jsonl
    from taskdistill.errors import TaskDistillError

    if out.suffix.lower() != ".jsonl":
        raise TaskDistillError(f"--out must be a .jsonl file, got {out}.")
    check_writable(out, "--out")
    data = synthetic.generate(n, seed=seed, granularity=granularity)
    write_jsonl(out, data)
    Console().print(f"[green]wrote[/green] {len(data)} synthetic headlines, {len(data.labels)} classes → {out}")


@data_app.command("inspect")
def inspect_cmd(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    text_col: str | None = TEXT_COL,
    label_col: str | None = LABEL_COL,
    id_col: str | None = ID_COL,
    label_names: str | None = LABEL_NAMES,
    no_id_col: bool = NO_ID_COL,
    drop_duplicates: bool = DROP_DUPLICATES,
    examples: int = typer.Option(3, "--examples", min=0, help="Example rows to show."),
) -> None:
    """Load a source and show rows, classes, per-class counts, text lengths and examples."""
    from rich.console import Console

    data = _load(source, text_col, label_col, id_col, label_names, no_id_col, drop_duplicates)
    render(summarize(data), Console(), examples=data.examples[:examples])


@data_app.command("split")
def split_cmd(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    out: Path = typer.Option(..., "--out", help="Output folder for test.jsonl, train_pool.jsonl, train_D.jsonl."),
    test_size: float = typer.Option(..., "--test-size", help="Test examples (a count, or a fraction < 1)."),
    sizes: str = typer.Option("", "--sizes", help="Comma-separated nested training sizes, e.g. 100,500,2000."),
    seed: int = typer.Option(0, "--seed", help="Split seed; the same seed gives the same files."),
    text_col: str | None = TEXT_COL,
    label_col: str | None = LABEL_COL,
    id_col: str | None = ID_COL,
    label_names: str | None = LABEL_NAMES,
    no_id_col: bool = NO_ID_COL,
    drop_duplicates: bool = DROP_DUPLICATES,
) -> None:
    """Write a fixed stratified test set and nested training subsets D1 ⊂ D2 ⊂ … as jsonl files."""
    from rich.console import Console

    from taskdistill.cache import atomic_dir, atomic_write_json, check_writable
    from taskdistill.data import splits
    from taskdistill.data.files import write_jsonl
    from taskdistill.data.load import require_classes
    from taskdistill.errors import TaskDistillError

    try:
        wanted = [int(s) for s in sizes.replace(" ", "").split(",") if s]
    except ValueError:
        raise TaskDistillError(f"--sizes must be comma-separated integers like 100,500, got {sizes!r}.") from None
    if out.exists() and not out.is_dir():
        raise TaskDistillError(f"--out {out} is a file; pass a folder.")
    foreign = sorted(p.name for p in out.iterdir() if not _split_file(p.name)) if out.is_dir() else []
    if foreign:
        raise TaskDistillError(f"--out {out} holds other files ({', '.join(foreign[:3])}); pick a new or empty folder.")
    check_writable(out, "--out", folder=True)
    data = require_classes(_load(source, text_col, label_col, id_col, label_names, no_id_col, drop_duplicates))
    split = splits.make_split(data, int(test_size) if test_size.is_integer() else test_size, seed=seed)
    subsets = splits.nested_subsets(split.train_pool, wanted, seed=seed)
    # the folder is built aside and swapped in whole: no half-written split, no stale train_D from an older one
    with atomic_dir(out) as tmp:
        write_jsonl(tmp / "test.jsonl", split.test)
        write_jsonl(tmp / "train_pool.jsonl", split.train_pool)
        for d, subset in subsets.items():
            write_jsonl(tmp / f"train_{d}.jsonl", subset)
        atomic_write_json(tmp / "labels.json", list(data.labels))
    console = Console()
    console.print(f"[green]wrote[/green] {out}: test {len(split.test)}, train pool {len(split.train_pool)}, "
                  f"{len(data.labels)} classes" + (f", subsets {', '.join(map(str, subsets))}" if subsets else ""))


def _split_file(name: str) -> bool:
    """A file ``data split`` writes (and may replace)."""
    import re

    return bool(re.fullmatch(r"test\.jsonl|train_pool\.jsonl|train_\d+\.jsonl|labels\.json", name))


def summarize(data) -> dict:
    """Rows, classes, per-class counts, text-length statistics (characters and words), duplicate texts."""
    import statistics
    from collections import Counter

    counts = Counter(e.label for e in data.examples)
    chars = [len(e.text) for e in data.examples]
    words = [len(e.text.split()) for e in data.examples]
    stats = lambda xs: {"min": min(xs), "median": statistics.median(xs), "mean": statistics.fmean(xs),
                        "max": max(xs)}
    return {
        "name": data.name, "rows": len(data), "classes": len(data.labels),
        "counts": {label: counts.get(label, 0) for label in data.labels},
        "chars": stats(chars), "words": stats(words),
        "duplicate_texts": len(data) - len({e.text for e in data.examples}),
        "with_cot": sum(e.cot is not None for e in data.examples),
        "meta": {k: v for k, v in data.meta.items() if isinstance(v, (str, int, float, bool))},
    }


def render(summary: dict, console, examples=()) -> None:
    """Print a summary as rich tables."""
    from rich.table import Table

    head = Table(title=f"{summary['name']}", show_header=False)
    head.add_row("rows", str(summary["rows"]))
    head.add_row("classes", str(summary["classes"]))
    for unit in ("chars", "words"):
        s = summary[unit]
        head.add_row(f"text {unit}", f"min {s['min']}  median {s['median']:g}  mean {s['mean']:.1f}  max {s['max']}")
    head.add_row("duplicate texts", str(summary["duplicate_texts"]))
    head.add_row("with chain-of-thought", str(summary["with_cot"]))
    for key, value in summary["meta"].items():
        head.add_row(key, str(value))
    console.print(head)
    per_class = Table("label", "count", "share", title="per-class counts")
    for label, count in sorted(summary["counts"].items(), key=lambda kv: (-kv[1], kv[0])):
        per_class.add_row(label, str(count), f"{count / summary['rows']:.1%}")
    console.print(per_class)
    if examples:
        table = Table("id", "label", "text", title="examples")
        for e in examples:
            table.add_row(e.id, e.label, e.text)
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``taskdistill data ...`` to the root app."""
    app.add_typer(data_app, name="data")
