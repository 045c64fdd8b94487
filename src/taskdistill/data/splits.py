"""A fixed stratified test set and nested training subsets D1 ⊂ D2 ⊂ … .

Hand-written rather than scikit-learn's splitters because the split must be identical across runs,
machines and library versions, and must not depend on row order: every example gets a SHA-256 key
from (seed, its id), and all choices follow those keys. Nothing depends on Python's hash seed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

from taskdistill.data.schema import Example, TaskData
from taskdistill.errors import TaskDistillError


@dataclass
class Split:
    """The training pool and the fixed test set; both keep the full taxonomy of the source data."""

    train_pool: TaskData
    test: TaskData

    def __post_init__(self) -> None:
        check_split(self.train_pool, self.test)


def check_split(train_pool: TaskData, test: TaskData) -> None:
    """Every test label must occur in training, and no example may sit in both sets."""
    seen = {e.label for e in train_pool.examples}
    unseen = sorted({e.label for e in test.examples} - seen)
    if unseen:
        raise TaskDistillError(
            f"test label {unseen[0]!r} never occurs in the training data ({len(unseen)} such label(s)); "
            "add training examples of it or drop it from the test set."
        )
    both = {e.id for e in train_pool.examples} & {e.id for e in test.examples}
    if both:
        raise TaskDistillError(f"example id {min(both)!r} is in both the training and the test set; split again.")


def make_split(data: TaskData, test_size: float, seed: int = 0) -> Split:
    """Hold out ``test_size`` examples (an int, or a fraction in (0, 1)) stratified by label.

    Per-class test counts are proportional to class frequency (largest remainder, ties by label
    name), capped so every class keeps at least one training example.
    """
    n = len(data)
    _unique_ids(data)
    n_test = _test_count(test_size, n)
    groups = _by_label(data.examples, seed, "test")
    sizes = {label: len(exs) for label, exs in groups.items()}
    room = sum(s - 1 for s in sizes.values())
    if n_test > room:
        raise TaskDistillError(
            f"test_size {test_size} is too large: every one of the {len(sizes)} classes must keep a training "
            f"example, so at most {room} of {n} examples can be held out; lower --test-size."
        )
    quota = _allocate(n_test, sizes)
    test = [e for label, exs in groups.items() for e in exs[: quota[label]]]
    train = [e for label, exs in groups.items() for e in exs[quota[label]:]]
    key = lambda e: _key(seed, "order", e.id)
    meta = {**data.meta, "split_seed": seed, "test_size": n_test, "parent": data.fingerprint()}
    return Split(
        TaskData(sorted(train, key=key), list(data.labels), f"{data.name}-train", dict(meta)),
        TaskData(sorted(test, key=key), list(data.labels), f"{data.name}-test", dict(meta)),
    )


def nested_subsets(train_pool: TaskData, sizes: Iterable[int], seed: int = 0) -> dict[int, TaskData]:
    """Training subsets of the given sizes, each containing every smaller one (D1 ⊂ D2 ⊂ …).

    The pool is put in one priority order — round-robin over classes (class order reshuffled per
    round), each class's examples in key order — and subset ``D`` is its first ``D`` examples, so
    every subset is as class-balanced as the pool allows.
    """
    sizes = sorted(set(_positive_sizes(sizes)))
    _unique_ids(train_pool)
    if sizes and sizes[-1] > len(train_pool):
        raise TaskDistillError(
            f"dataset size {sizes[-1]} is larger than the training pool ({len(train_pool)} examples); "
            "lower --sizes or --test-size."
        )
    queues = _by_label(train_pool.examples, seed, "subset")
    order: list[Example] = []
    depth = 0
    while len(order) < len(train_pool):
        live = [label for label, exs in queues.items() if depth < len(exs)]
        live.sort(key=lambda label: _key(seed, f"round{depth}", label))
        order.extend(queues[label][depth] for label in live)
        depth += 1
    return {
        d: TaskData(order[:d], list(train_pool.labels), f"{train_pool.name}-D{d}",
                    {**train_pool.meta, "dataset_size": d, "subset_seed": seed})
        for d in sizes
    }


def _key(seed: int, salt: str, value: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{salt}\x1f{value}".encode()).hexdigest()


def _by_label(examples: list[Example], seed: int, salt: str) -> dict[str, list[Example]]:
    """Examples grouped by label (labels sorted), each group in key order."""
    groups: dict[str, list[Example]] = {}
    for e in examples:
        groups.setdefault(e.label, []).append(e)
    return {label: sorted(groups[label], key=lambda e: _key(seed, salt, e.id)) for label in sorted(groups)}


def _allocate(total: int, sizes: dict[str, int]) -> dict[str, int]:
    """Largest-remainder proportional allocation of ``total`` over classes, at most ``size - 1`` each."""
    n = sum(sizes.values())
    exact = {label: total * s / n for label, s in sizes.items()}
    quota = {label: min(math.floor(x), sizes[label] - 1) for label, x in exact.items()}
    while (left := total - sum(quota.values())) > 0:
        open_ = [label for label in sizes if quota[label] < sizes[label] - 1]
        open_.sort(key=lambda label: (-(exact[label] - quota[label]), label))
        for label in open_[:left]:
            quota[label] += 1
    return quota


def _test_count(test_size, n: int) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise TaskDistillError(f"test_size must be a count or a fraction in (0, 1), got {test_size!r}.")
    if isinstance(test_size, float) and not test_size.is_integer():
        if not 0 < test_size < 1:
            raise TaskDistillError(f"test_size fraction must be in (0, 1), got {test_size}.")
        count = round(test_size * n)
    else:
        count = int(test_size)
    if count < 1:
        raise TaskDistillError(f"test_size {test_size} holds out no example of {n}; raise --test-size.")
    if count >= n:
        raise TaskDistillError(f"test_size {test_size} leaves no training data out of {n} examples; lower --test-size.")
    return count


def _positive_sizes(sizes: Iterable[int]) -> list[int]:
    out = []
    for d in sizes:
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise TaskDistillError(f"dataset sizes must be positive integers, got {d!r}.")
        out.append(d)
    return out


def _unique_ids(data: TaskData) -> None:
    seen: set[str] = set()
    for e in data.examples:
        if e.id in seen:
            raise TaskDistillError(f"duplicated example id {e.id!r} in {data.name}; make ids unique before splitting.")
        seen.add(e.id)
