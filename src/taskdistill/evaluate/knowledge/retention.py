"""Fixed subsets, chance levels, standard errors and retention; the report types."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from taskdistill.retention import retention


def stratified_subset(strata: list[str], limit: int | None, seed: int = 0, balanced: bool = False) -> list[int]:
    """Sorted indices of a seeded stratified subset of ``limit`` items (all items when ``limit`` is None).

    ``balanced=True`` takes equal counts per stratum (MMLU: per subject; a stratum with too few
    items gives its share to the others); otherwise counts are proportional to stratum sizes
    (largest remainders). The same (strata, limit, seed) always gives the same items.
    """
    if limit is None or limit >= len(strata):
        return list(range(len(strata)))
    rng = random.Random(seed)
    members: dict[str, list[int]] = defaultdict(list)
    for index, stratum in enumerate(strata):
        members[stratum].append(index)
    names = sorted(members)
    for name in names:
        rng.shuffle(members[name])
    quota = _balanced(members, names, limit) if balanced else _proportional(members, names, limit, len(strata))
    return sorted(i for name in names for i in members[name][: quota[name]])


def _balanced(members: dict[str, list[int]], names: list[str], limit: int) -> dict[str, int]:
    quota = dict.fromkeys(names, 0)
    left = limit
    open_ = [n for n in names if members[n]]
    while left > 0 and open_:
        share, extra = divmod(left, len(open_))
        for rank, name in enumerate(open_):
            take = min(share + (rank < extra), len(members[name]) - quota[name])
            quota[name] += take
            left -= take
        open_ = [n for n in open_ if quota[n] < len(members[n])]
    return quota


def _proportional(members: dict[str, list[int]], names: list[str], limit: int, total: int) -> dict[str, int]:
    exact = {n: limit * len(members[n]) / total for n in names}
    quota = {n: int(exact[n]) for n in names}
    by_remainder = sorted(names, key=lambda n: (-(exact[n] - quota[n]), n))
    for name in by_remainder[: limit - sum(quota.values())]:
        quota[name] += 1
    return quota


def mean_stderr(values: list[float]) -> float:
    """Standard error of a mean: sample standard deviation / sqrt(n) (lm-eval's ``mean_stderr``)."""
    n = len(values)
    if n < 2:
        return float("nan")
    mu = sum(values) / n
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1) / n)


def chance_level(num_choices: list[int]) -> float:
    """Mean of 1/number-of-choices over the items; 0 for exact-match items (``num_choices`` 0)."""
    return sum(1.0 / c if c else 0.0 for c in num_choices) / len(num_choices) if num_choices else 0.0


@dataclass
class BenchmarkResult:
    """One benchmark on one model: raw counts for the laws module, and retention vs a reference."""

    name: str
    acc: float
    acc_norm: float | None
    correct: int
    n: int
    stderr: float
    chance: float
    formulation: str
    retention: float | None = None
    reference: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class KnowledgeReport:
    """Per-benchmark results plus the mean retention over the benchmarks that have one."""

    results: list[BenchmarkResult]
    settings: dict = field(default_factory=dict)

    @property
    def aggregate_retention(self) -> float | None:
        values = [r.retention for r in self.results if r.retention is not None]
        return sum(values) / len(values) if values else None

    def __getitem__(self, name: str) -> BenchmarkResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def accuracies(self) -> dict[str, float]:
        """``{benchmark: acc}``: pass a teacher's as ``reference`` when evaluating its students."""
        return {r.name: r.acc for r in self.results}

    def to_dict(self) -> dict:
        return {"results": [r.to_dict() for r in self.results], "aggregate_retention": self.aggregate_retention,
                "settings": self.settings}


def with_reference(results: list[BenchmarkResult], reference: dict[str, float] | None) -> list[BenchmarkResult]:
    """Fill ``reference`` and ``retention`` for the benchmarks named in ``reference``."""
    for result in results:
        if reference and result.name in reference:
            result.reference = float(reference[result.name])
            result.retention = retention(result.acc, result.chance, result.reference)
    return results
