"""Stratified fixed test set and nested subsets: hand-computed counts, invariants, determinism, errors."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter

import pytest

from taskdistill.data.schema import Example, TaskData
from taskdistill.data.splits import Split, make_split, nested_subsets
from taskdistill.data.synthetic import generate
from taskdistill.errors import TaskDistillError


def make(counts: dict[str, int]) -> TaskData:
    examples = [Example(f"{label} headline {i}", label, f"{label}-{i}") for label, n in counts.items() for i in range(n)]
    return TaskData(examples, sorted(counts), "toy")


def labels_of(data: TaskData) -> Counter:
    return Counter(e.label for e in data.examples)


def test_stratified_counts_match_hand_computed_largest_remainder():
    # n=20, test 5: exact shares A 2.5, B 1.5, C 0.75, D 0.25; floors A2 B1 C0, D capped at 0 (keeps its one
    # training example); the 2 left go to the largest remainders C (.75) then A (.5, before B by name).
    data = make({"A": 10, "B": 6, "C": 3, "D": 1})
    for size in (5, 0.25):
        split = make_split(data, size, seed=0)
        assert labels_of(split.test) == {"A": 3, "B": 1, "C": 1}
        assert labels_of(split.train_pool) == {"A": 7, "B": 5, "C": 2, "D": 1}


def test_split_partitions_the_data_and_keeps_the_taxonomy():
    data = generate(35 * 8, seed=0)
    split = make_split(data, 70, seed=3)
    test_ids, train_ids = {e.id for e in split.test.examples}, {e.id for e in split.train_pool.examples}
    assert len(test_ids) == 70 and not test_ids & train_ids and test_ids | train_ids == {e.id for e in data.examples}
    assert set(labels_of(split.test).values()) == {2}  # 70 / 35 classes, exactly proportional
    assert split.test.labels == split.train_pool.labels == data.labels


def test_split_is_deterministic_and_independent_of_row_order():
    data = generate(400, seed=0)
    a, b = make_split(data, 100, seed=1), make_split(data, 100, seed=1)
    assert a.test.examples == b.test.examples and a.train_pool.examples == b.train_pool.examples
    shuffled = data.subset(random.Random(9).sample(data.examples, len(data)))
    assert make_split(shuffled, 100, seed=1).test.examples == a.test.examples
    assert {e.id for e in make_split(data, 100, seed=2).test.examples} != {e.id for e in a.test.examples}


def test_nested_subsets_hand_example():
    # round 0 takes one of each of A, B, C; round 1 one more A and C; round 2 the last A
    pool = make({"A": 3, "B": 1, "C": 2})
    subsets = nested_subsets(pool, [6, 3, 5, 3], seed=0)
    assert list(subsets) == [3, 5, 6]
    assert labels_of(subsets[3]) == {"A": 1, "B": 1, "C": 1}
    assert labels_of(subsets[5]) == {"A": 2, "B": 1, "C": 2}
    assert labels_of(subsets[6]) == {"A": 3, "B": 1, "C": 2}
    assert subsets[5].name == "toy-D5" and subsets[5].meta["dataset_size"] == 5


def test_nested_subsets_are_nested_and_as_balanced_as_possible():
    pool = make({"A": 40, "B": 25, "C": 7, "D": 3, "E": 1})
    sizes = list(range(1, len(pool) + 1))
    subsets = nested_subsets(pool, sizes, seed=4)
    available = labels_of(pool)
    for small, large in zip(sizes, sizes[1:]):
        assert subsets[large].examples[:small] == subsets[small].examples  # D_small ⊂ D_large, same order
    for d in sizes:
        counts = labels_of(subsets[d])
        assert len(subsets[d]) == d and len({e.id for e in subsets[d].examples}) == d
        top = max(counts.values())
        for label, n in available.items():  # a class is short of the top by 2+ only when it is exhausted
            assert counts.get(label, 0) >= top - 1 or counts.get(label, 0) == n, (d, counts)
    assert nested_subsets(pool, [20], seed=4)[20].examples == subsets[20].examples
    assert nested_subsets(pool, [20], seed=5)[20].examples != subsets[20].examples


def test_identical_under_another_python_hash_seed():
    code = (
        "from taskdistill.data.synthetic import generate\n"
        "from taskdistill.data.splits import make_split, nested_subsets\n"
        "s = make_split(generate(300, seed=0), 60, seed=7)\n"
        "d = nested_subsets(s.train_pool, [35, 100], seed=7)\n"
        "print(s.test.fingerprint(), d[35].fingerprint(), d[100].fingerprint())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "4242", "PATH": ""}).stdout.split()
    s = make_split(generate(300, seed=0), 60, seed=7)
    d = nested_subsets(s.train_pool, [35, 100], seed=7)
    assert out == [s.test.fingerprint(), d[35].fingerprint(), d[100].fingerprint()]


@pytest.mark.parametrize(
    "test_size, message",
    [
        (20, "leaves no training data"),
        (0, "holds out no example"),
        (1.5, "fraction must be in"),
        (17, r"too large: every one of the 4 classes must keep a training example, so at most 16"),
        ("5", "must be a count or a fraction"),
    ],
)
def test_bad_test_size(test_size, message):
    with pytest.raises(TaskDistillError, match=message):
        make_split(make({"A": 10, "B": 6, "C": 3, "D": 1}), test_size)


def test_bad_subset_sizes_and_duplicate_ids():
    pool = make({"A": 4, "B": 4})
    with pytest.raises(TaskDistillError, match=r"dataset size 9 is larger than the training pool \(8 examples\)"):
        nested_subsets(pool, [2, 9])
    with pytest.raises(TaskDistillError, match="positive integers"):
        nested_subsets(pool, [0])
    dup = pool.subset(pool.examples + [pool.examples[0]])
    with pytest.raises(TaskDistillError, match="duplicated example id 'A-0'"):
        make_split(dup, 2)


def test_test_label_never_seen_in_training_is_an_error():
    train, test = make({"A": 3, "B": 2}), make({"A": 1, "C": 1})
    test = test.subset([Example(e.text, e.label, "t-" + e.id) for e in test.examples])
    with pytest.raises(TaskDistillError, match=r"test label 'C' never occurs in the training data"):
        Split(train, test)
    with pytest.raises(TaskDistillError, match="in both the training and the test set"):
        Split(train, train.subset(train.examples[:1]))
