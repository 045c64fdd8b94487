"""FinHeadlineMix and other Hugging Face datasets: ``hf:owner/name[:split]`` through ``datasets``.

FinHeadlineMix (``nvidia/FinHeadlineMix``, CC-BY-4.0, ~502k synthetic headlines, one ``train``
split) has column names we have not seen, so columns are auto-detected like any other source and
can be overridden (``--text-col`` / ``--label-col``). When the hub is unreachable, download the
parquet elsewhere and pass the local file instead: ``taskdistill data inspect FinHeadlineMix.parquet``.
A local copy goes through :mod:`taskdistill.data.files`.
"""

from __future__ import annotations

from taskdistill.data.files import Table
from taskdistill.errors import TaskDistillError

HUB_ID = "nvidia/FinHeadlineMix"
DEFAULT_SPLIT = "train"


def parse_hf(spec: str) -> tuple[str, str]:
    """``hf:owner/name[:split]`` (or ``finheadlinemix``) → (dataset id, split)."""
    if spec.strip().lower() == "finheadlinemix":
        return HUB_ID, DEFAULT_SPLIT
    body = spec.strip().removeprefix("hf:")
    name, _, split = body.partition(":")
    if name.count("/") != 1 or not all(name.split("/")):
        raise TaskDistillError(f"bad hub dataset {spec!r}; use hf:owner/name or hf:owner/name:split.")
    return name, split or DEFAULT_SPLIT


def load_hub(spec: str) -> Table:
    """Load one split of a hub dataset as a :class:`Table`; ``ClassLabel`` names become the label names."""
    import datasets

    name, split = parse_hf(spec)
    try:
        ds = datasets.load_dataset(name, split=split)
    except ConnectionError as exc:  # datasets raises this when the hub (or its offline cache) has nothing
        raise TaskDistillError(
            f"could not reach {name!r} on the Hugging Face hub ({exc}); download it where the hub is reachable "
            "and pass the local .parquet/.jsonl/.csv file instead."
        ) from None
    except ValueError as exc:  # unknown split
        raise TaskDistillError(f"cannot load split {split!r} of {name!r}: {exc}") from None
    except FileNotFoundError as exc:  # no such dataset
        raise TaskDistillError(f"dataset {name!r} not found on the hub ({exc}); check the name.") from None
    if isinstance(ds, datasets.DatasetDict):  # defensive: load_dataset with a split returns a Dataset
        raise TaskDistillError(f"{name!r} has splits {list(ds)}; pick one with hf:{name}:SPLIT.")
    rows = ds.to_list()
    if not rows:
        raise TaskDistillError(f"split {split!r} of {name!r} has no rows; pick another split.")
    class_names = {col: list(f.names) for col, f in ds.features.items() if isinstance(f, datasets.ClassLabel)}
    return Table(f"{name}:{split}", list(ds.column_names), rows, class_names=class_names)
