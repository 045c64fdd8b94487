"""The synthetic 35-class headline generator: taxonomy, balance, determinism, consistency, difficulty."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import warnings
from collections import Counter

import pytest

from taskdistill.data import synthetic
from taskdistill.data import synthetic_templates as T
from taskdistill.errors import TaskDistillError

PAPER_COARSE = {"Analyst Rating", "Price Targets", "Earnings", "Labour Issues", "Mergers and Acquisitions",
                "Dividends", "Regulatory", "Stock price movement", "Credit Ratings", "Products-Services",
                "Product Approval", "Guidance", "OTHER"}


def test_taxonomy_is_35_fine_classes_over_the_13_paper_categories():
    assert len(synthetic.FINE_LABELS) == 35 and synthetic.FINE_LABELS == sorted(synthetic.FINE_LABELS)
    assert set(synthetic.COARSE_OF) == set(synthetic.FINE_LABELS)
    assert set(synthetic.COARSE_OF.values()) == PAPER_COARSE and len(synthetic.COARSE_LABELS) == 13
    for label in synthetic.FINE_LABELS:  # human-readable names: capitalised words
        assert re.fullmatch(r"[A-Z][A-Za-z]*( [A-Z][A-Za-z]*)*|IPO", label), label
    assert {"Earnings Beat", "Guidance Cut", "Price Target Raise", "Merger Completed"} <= set(synthetic.FINE_LABELS)


def test_every_template_slot_is_known():
    rng = random.Random(0)
    templates = [t for _, ts in T.TABLE.values() for t in ts] + [t for _, cs in T.CLAUSES.values() for t in cs]
    for slot in {s for t in templates for s in re.findall(r"\{(\w+)\}", t)}:
        values: dict = {}
        values.update(synthetic._fill(slot, values, rng))
        assert values[slot] is not None
    assert set(T.CLAUSES) <= set(T.TABLE) and all(a in T.CLAUSES and b in T.CLAUSES for a, b in T.PAIRS)


def test_headlines_are_filled_balanced_and_distinct():
    data = synthetic.generate(35 * 6 + 10, seed=2)
    counts = Counter(e.label for e in data.examples)
    assert set(counts) == set(synthetic.FINE_LABELS) and set(counts.values()) == {6, 7}
    assert sum(c == 7 for c in counts.values()) == 10
    assert len({e.text for e in data.examples}) == len(data) and len({e.id for e in data.examples}) == len(data)
    assert not any("{" in e.text or "}" in e.text for e in data.examples)
    assert data.labels == synthetic.FINE_LABELS and data.meta["synthetic"] is True


def test_coarse_granularity_is_balanced_over_13_categories():
    data = synthetic.generate(13 * 5, seed=0, granularity="coarse")
    assert data.labels == sorted(PAPER_COARSE)
    assert Counter(e.label for e in data.examples) == {c: 5 for c in PAPER_COARSE}


def test_deterministic_and_prefix_stable():
    a, b = synthetic.generate(300, seed=1), synthetic.generate(300, seed=1)
    assert a.examples == b.examples and a.fingerprint() == b.fingerprint()
    assert synthetic.generate(300, seed=2).fingerprint() != a.fingerprint()
    assert synthetic.generate(100, seed=1).examples == a.examples[:100]


def test_identical_under_another_python_hash_seed():
    code = "from taskdistill.data.synthetic import generate; print(generate(200, seed=5).fingerprint())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout.strip()
    assert out == synthetic.generate(200, seed=5).fingerprint()


def _money(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


def test_numbers_agree_with_the_event_direction():
    data = synthetic.generate(35 * 120, seed=4)
    checked = Counter()
    for e in data.examples:
        if m := re.search(r"target to (\$\d+) from (\$\d+)", e.text):
            new, old = map(_money, m.groups())
            assert (new > old) == (e.label == "Price Target Raise"), e.text
            checked["target"] += 1
        if e.label in ("Dividend Increase", "Dividend Cut") and (m := re.search(r"to (\$[\d.]+) from (\$[\d.]+)", e.text)):
            new, old = map(_money, m.groups())
            assert (new > old) == (e.label == "Dividend Increase"), e.text
            checked["dividend"] += 1
        if m := re.search(r"EPS of (\$[\d.]+), (above|below) the (\$[\d.]+) consensus", e.text):
            actual, word, consensus = _money(m[1]), m[2], _money(m[3])
            assert (actual > consensus) == (word == "above") == (e.label == "Earnings Beat"), e.text
            checked["eps"] += 1
        if e.label.startswith("Credit") and (m := re.search(r"to ([AB][AB+\-]*) from ([AB][AB+\-]*)", e.text)):
            new, old = T.GRADES.index(m[1]), T.GRADES.index(m[2])
            assert (new > old) == (e.label == "Credit Upgrade"), e.text
            checked["grade"] += 1
    assert min(checked.values()) >= 10 and len(checked) == 4, checked


def test_two_event_headlines_are_labelled_by_their_lead_clause(monkeypatch):
    monkeypatch.setattr(T, "COMPOSITE_RATE", 1.0)
    beat = re.compile(r"beats|tops|better-than-expected", re.IGNORECASE)
    raise_ = re.compile(r"raises \d{4} outlook|lifts full-year|boosts \d{4} guidance", re.IGNORECASE)
    seen = Counter()
    for i in range(400):
        label = ("Earnings Beat", "Guidance Raise")[i % 2]
        text = synthetic.headline(label, random.Random(i))
        b, r = beat.search(text), raise_.search(text)
        if b and r:  # the pair drawn was (Earnings Beat, Guidance Raise): the lead clause decides the label
            assert (b.start() < r.start()) == (label == "Earnings Beat"), (label, text)
            seen[label] += 1
    assert min(seen.values()) >= 20, seen


def test_bag_of_words_is_not_enough_but_beats_chance():
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    train, test = synthetic.generate(2100, seed=0), synthetic.generate(700, seed=1)
    vec = CountVectorizer(binary=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saga may stop before full convergence; the accuracy is what we test
        clf = LogisticRegression(solver="saga", max_iter=200).fit(
            vec.fit_transform([e.text for e in train.examples]), [e.label for e in train.examples])
    predicted = clf.predict(vec.transform([e.text for e in test.examples]))
    accuracy = sum(p == e.label for p, e in zip(predicted, test.examples)) / len(test)
    # measured 0.897 (chance is 1/35 ≈ 0.029): clearly learnable, clearly not keyword-separable
    assert 0.6 < accuracy < 0.95, accuracy


def test_bad_arguments():
    with pytest.raises(TaskDistillError, match="unknown granularity 'medium'"):
        synthetic.generate(10, granularity="medium")
    with pytest.raises(TaskDistillError, match="positive integer"):
        synthetic.generate(0)
