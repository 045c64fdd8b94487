"""SYNTHETIC financial-news headlines over a 35-class event taxonomy (not real news).

``generate(n, seed, granularity)`` fills the templates of :mod:`taskdistill.data.synthetic_templates`
with invented companies, tickers, brokers, people, amounts, percentages, dates and news-wire
decorations. Each fine class maps to one of the 13 FinHeadlineMix-style coarse categories
(``COARSE_OF``), so ``granularity="coarse"`` gives the 13-class task. Properties:

- deterministic: example ``i`` depends only on (seed, i, granularity), through string-seeded
  ``random.Random`` (SHA-512 of the seed string, independent of the Python hash seed), so a smaller
  ``n`` is a prefix of a larger one and output is identical across runs and machines;
- class-balanced: classes of the chosen granularity are dealt in shuffled rounds;
- no duplicate headlines within one generated set;
- not trivially separable: confusable classes share vocabulary (see the templates module).
"""

from __future__ import annotations

import random
import re

from taskdistill.data import synthetic_templates as T
from taskdistill.data.schema import Example, TaskData
from taskdistill.errors import TaskDistillError

FINE_LABELS: list[str] = sorted(T.TABLE)
COARSE_OF: dict[str, str] = {label: coarse for label, (coarse, _) in T.TABLE.items()}
COARSE_LABELS: list[str] = sorted(set(COARSE_OF.values()))
GRANULARITIES = ("fine", "coarse")
_SLOT = re.compile(r"\{(\w+)\}")
PARTNERS_OF: dict[str, list[str]] = {}
for _a, _b in T.PAIRS:
    PARTNERS_OF.setdefault(_a, []).append(_b)
    PARTNERS_OF.setdefault(_b, []).append(_a)
_SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"}


def generate(n: int, seed: int = 0, granularity: str = "fine") -> TaskData:
    """``n`` synthetic labelled headlines (fine: 35 event classes; coarse: 13 categories)."""
    if granularity not in GRANULARITIES:
        raise TaskDistillError(f"unknown granularity {granularity!r}; use fine or coarse.")
    if not isinstance(n, int) or n < 1:
        raise TaskDistillError(f"synthetic n must be a positive integer, got {n!r}.")
    classes = FINE_LABELS if granularity == "fine" else COARSE_LABELS
    by_coarse = {c: [f for f in FINE_LABELS if COARSE_OF[f] == c] for c in COARSE_LABELS}
    examples, seen, rounds = [], set(), {}
    for i in range(n):
        block, pos = divmod(i, len(classes))
        if block not in rounds:
            rounds = {block: random.Random(f"taskdistill-synthetic:{seed}:{granularity}:round:{block}").sample(
                classes, len(classes))}
        label = rounds[block][pos]
        for attempt in range(1000):
            rng = random.Random(f"taskdistill-synthetic:{seed}:{granularity}:{i}:{attempt}")
            fine = label if granularity == "fine" else rng.choice(by_coarse[label])
            text = headline(fine, rng)
            if text not in seen:
                break
        else:  # pragma: no cover - the template space is far larger than any sensible n
            raise TaskDistillError(f"could not make {n} distinct synthetic headlines; lower n.")
        seen.add(text)
        examples.append(Example(text=text, label=label, id=f"synthetic-{seed}-{i}"))
    meta = {"source": f"synthetic:n={n},seed={seed},granularity={granularity}", "synthetic": True,
            "n": n, "seed": seed, "granularity": granularity}
    return TaskData(examples, list(classes), name=f"synthetic-{granularity}", meta=meta)


def headline(fine_label: str, rng: random.Random) -> str:
    """One headline of a fine class: a template (or a two-event lead + second clause), filled and decorated."""
    if fine_label in PARTNERS_OF and rng.random() < T.COMPOSITE_RATE:
        subject, leads = T.CLAUSES[fine_label]
        second = rng.choice(T.CLAUSES[rng.choice(PARTNERS_OF[fine_label])][1])
        if subject == "firm":
            second = second.replace(" {co}", "")
        head = "{co}{tkp} " if subject == "co" else "{firm} "
        template = head + rng.choice(leads) + rng.choice(T.SEPARATORS) + second
    else:
        template = rng.choice(T.TABLE[fine_label][1])
    values: dict[str, str] = {"_pharma": "yes"} if "{drug}" in template or "{device}" in template else {}
    text = _SLOT.sub(lambda m: _slot(m.group(1), values, rng), template)
    if rng.random() < 0.15:
        text = _title_case(text)
    text = rng.choice(T.PREFIXES) + text + rng.choice(T.SUFFIXES)
    return text[0].upper() + text[1:]


def _slot(name: str, values: dict[str, str], rng: random.Random) -> str:
    """The value of one slot; a slot used twice in a headline keeps its value, paired slots agree."""
    if name not in values:
        values.update(_fill(name, values, rng))
    return values[name]


def _fill(name: str, values: dict[str, str], rng: random.Random) -> dict[str, str]:
    c = rng.choice
    if name in ("co", "tk", "tkp"):
        stem = c(T.COMPANY_STEMS)
        values["_stem"] = stem
        if values.get("_pharma"):
            co = f"{stem} {c(T.PHARMA_SUFFIXES)}"
        else:
            co = stem + (" " + c(T.COMPANY_SUFFIXES) if rng.random() < 0.6 else "")
        tk = _ticker(stem)
        tkp = c(["", "", "", f" ({tk})", f" (NASDAQ: {tk})", f" (NYSE:{tk})"])
        return {"co": co, "tk": tk, "tkp": tkp}
    if name == "co2":
        stem = c([s for s in T.COMPANY_STEMS if s != values.get("_stem")])
        return {"co2": stem + (" " + c(T.COMPANY_SUFFIXES) if rng.random() < 0.5 else "")}
    if name in ("eps", "est"):  # est < eps: "EPS of {eps}, above the {est} consensus" and the reverse
        est = rng.randint(5, 450) / 100
        eps = est + rng.randint(1, 40) / 100
        return {"est": f"${est:.2f}", "eps": f"${eps:.2f}"}
    if name in ("p_lo", "p_hi"):
        lo = rng.randint(5, 400)
        return {"p_lo": f"${lo}", "p_hi": f"${lo + max(1, round(lo * rng.uniform(0.05, 0.4)))}"}
    if name in ("d_lo", "d_hi"):
        lo = rng.randint(5, 150) / 100
        return {"d_lo": f"${lo:.2f}", "d_hi": f"${lo + max(0.01, round(lo * rng.uniform(0.03, 0.25), 2)):.2f}"}
    if name in ("g_lo", "g_hi"):
        i, j = sorted(rng.sample(range(len(T.GRADES)), 2))
        return {"g_lo": T.GRADES[i], "g_hi": T.GRADES[j]}
    if name in ("yr", "yr2"):
        yr = rng.randint(2019, 2027)
        return {"yr": str(yr), "yr2": str(yr + rng.randint(3, 10))}
    simple = {
        "q": lambda: c(["Q1", "Q2", "Q3", "Q4", "first-quarter", "second-quarter", "third-quarter",
                        "fourth-quarter", "fiscal Q2", "fiscal Q4"]),
        "pct": lambda: str(rng.randint(2, 60)) if rng.random() < 0.3 else f"{rng.uniform(0.5, 35):.1f}",
        "amt": _amount(rng),
        "amt_small": lambda: (f"${rng.randint(2, 95) * 10},000" if rng.random() < 0.5
                              else f"${rng.randint(11, 99) / 10} million"),
        "firm": lambda: c(T.FIRMS), "agency": lambda: c(T.AGENCIES),
        "r_up": lambda: c(T.RATINGS_UP), "r_dn": lambda: c(T.RATINGS_DOWN), "r_keep": lambda: c(T.RATINGS_KEEP),
        "person": lambda: f"{c(T.FIRST_NAMES)} {c(T.LAST_NAMES)}", "role": lambda: c(T.ROLES),
        "jobs": lambda: c(["about ", "", "nearly ", ""]) + f"{rng.randint(1, 120) * 100:,}",
        "shares": lambda: (f"{rng.randint(5, 900) * 1000:,}" if rng.random() < 0.6
                           else f"{rng.randint(11, 90) / 10} million"),
        "union": lambda: c(T.UNIONS), "reg": lambda: c(T.REGULATORS), "topic": lambda: c(T.TOPICS),
        "drugreg": lambda: c(T.DRUG_REGULATORS), "cond": lambda: c(T.CONDITIONS), "device": lambda: c(T.DEVICES),
        "drug": lambda: "".join(c(part) for part in T.DRUG_STEMS), "product": lambda: c(T.PRODUCTS),
        "customer": lambda: c(T.CUSTOMERS), "theme": lambda: c(T.THEMES), "region": lambda: c(T.REGIONS),
        "month": lambda: c(T.MONTHS), "when": lambda: c(T.WHEN), "dir": lambda: c(["up", "down"]),
        "up": lambda: c(T.UP), "down": lambda: c(T.DOWN), "ups": lambda: _singular(c(T.UP)),
        "downs": lambda: _singular(c(T.DOWN)),
        "nth": lambda: c(["second", "third", "fourth", "fifth", "sixth", "tenth", "12th", "25th"]),
        "ratio": lambda: c(["2-for-1", "3-for-1", "4-for-1", "10-for-1", "20-for-1"]),
        "rratio": lambda: c(["1-for-10", "1-for-20", "1-for-5", "1-for-25"]),
        "n_cuts": lambda: c(["two", "three", "no", "one", "fewer"]),
    }
    if name not in simple:
        raise KeyError(f"unknown template slot {name!r}")  # a bug in the template table
    return {name: simple[name]()}


def _amount(rng: random.Random):
    def make() -> str:
        if rng.random() < 0.5:
            value = rng.randint(5, 95) * 10
            return f"${value}M" if rng.random() < 0.2 else f"${value} million"
        value = rng.randint(10, 450) / 10
        return f"${value:g}B" if rng.random() < 0.2 else f"${value:g} billion"

    return make


def _ticker(stem: str) -> str:
    """A 3-4 letter ticker from a company stem: first letter, then its consonants."""
    upper = stem.upper()
    consonants = [ch for ch in upper[1:] if ch not in "AEIOU"]
    return (upper[0] + "".join(consonants))[: 3 + len(stem) % 2]


def _singular(verb: str) -> str:
    return verb[:-1] + "ies" if verb.endswith("y") and verb[-2] not in "aeiou" else verb + "s"


def _title_case(text: str) -> str:
    words = text.split(" ")
    return " ".join(w if (i and w in _SMALL_WORDS) or not w[:1].islower() else w[0].upper() + w[1:]
                    for i, w in enumerate(words))
