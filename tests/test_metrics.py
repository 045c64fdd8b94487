"""Classification metrics vs scikit-learn and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score

from taskdistill.evaluate.metrics import classification_metrics

LABELS = ["A", "B", "C", "D", "E"]


def _one_hot_scores(pred, n_classes=5):
    """Log-scores whose argmax is ``pred``."""
    scores = np.zeros((len(pred), n_classes))
    scores[np.arange(len(pred)), pred] = 3.0
    return scores


def test_macro_f1_matches_sklearn_with_explicit_labels():
    rng = np.random.default_rng(7)
    gold = rng.integers(0, 4, size=60)  # class E never in gold
    pred = rng.integers(0, 5, size=60)
    pred[gold == 3] = 4  # D never predicted correctly; E predicted but never gold
    m = classification_metrics(_one_hot_scores(pred), gold, LABELS)
    present = sorted(set(gold) | set(pred))
    assert m.macro_f1 == pytest.approx(f1_score(gold, pred, labels=present, average="macro", zero_division=0), abs=1e-12)
    per_class = f1_score(gold, pred, labels=present, average=None, zero_division=0)
    assert m.per_class_f1 == pytest.approx({LABELS[c]: f for c, f in zip(present, per_class)}, abs=1e-12)
    assert m.confusion == confusion_matrix(gold, pred, labels=range(5)).tolist()
    assert m.accuracy == pytest.approx(np.mean(gold == pred))
    assert m.correct == int((gold == pred).sum())


def test_class_absent_from_gold_and_predictions_is_left_out_of_macro_f1():
    gold = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    m = classification_metrics(_one_hot_scores(pred), gold, LABELS)
    # hand: A: P=1, R=1/2 → F1=2/3; B: P=2/3, R=1 → F1=4/5; C, D, E absent
    assert m.per_class_f1 == pytest.approx({"A": 2 / 3, "B": 4 / 5})
    assert m.macro_f1 == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m.support == {"A": 2, "B": 2}


def test_unparseable_is_wrong_and_a_false_negative_like_sklearn():
    gold = np.array([0, 1, 2, 2, 1, 0, 3])
    pred = np.array([0, -1, 2, -1, 1, 1, -1])
    m = classification_metrics(_one_hot_scores(np.zeros(7, dtype=int)), gold, LABELS, predicted=pred, mode="generate")
    present = sorted(set(gold) | set(pred[pred >= 0]))
    assert m.macro_f1 == pytest.approx(f1_score(gold, pred, labels=present, average="macro", zero_division=0))
    assert m.unparseable == 3
    assert m.correct == 3 and m.accuracy == pytest.approx(3 / 7)
    assert m.scored_accuracy == pytest.approx(2 / 7)  # argmax of the scores is always class A
    assert np.array(m.confusion).sum() == 4  # unparseables are not in the confusion matrix
    assert m.per_class_f1["D"] == 0.0


def test_nll_and_brier_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.25, 0.25, 0.5]])
    gold = np.array([0, 2, 1])
    m = classification_metrics(np.log(probs), gold, ["x", "y", "z"])
    nll = -(math.log(0.7) + math.log(0.4) + math.log(0.25)) / 3
    brier = ((0.3**2 + 0.2**2 + 0.1**2) + (0.1**2 + 0.5**2 + 0.6**2) + (0.25**2 + 0.75**2 + 0.5**2)) / 3
    assert m.nll == pytest.approx(nll, abs=1e-12)
    assert m.brier == pytest.approx(brier, abs=1e-12)
    assert m.brier == pytest.approx((0.14 + 0.62 + 0.875) / 3)
    assert m.chance == pytest.approx(1 / 3)


def test_scores_are_renormalised_over_classes():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4]])
    gold = np.array([0, 2])
    shifted = np.log(probs) + np.array([[5.0], [-3.0]])  # unnormalised: per-row offsets
    a = classification_metrics(np.log(probs), gold, ["x", "y", "z"])
    b = classification_metrics(shifted, gold, ["x", "y", "z"])
    assert (a.nll, a.brier, a.macro_f1) == pytest.approx((b.nll, b.brier, b.macro_f1))


def test_perfect_and_uniform_predictions():
    gold = np.array([0, 1, 2, 1])
    perfect = classification_metrics(np.log(np.eye(3)[gold] * (1 - 3e-12) + 1e-12), gold, ["x", "y", "z"])
    assert perfect.accuracy == 1.0 and perfect.macro_f1 == 1.0
    assert perfect.nll == pytest.approx(0.0, abs=1e-9) and perfect.brier == pytest.approx(0.0, abs=1e-9)
    uniform = classification_metrics(np.zeros((4, 3)), gold, ["x", "y", "z"])
    assert uniform.nll == pytest.approx(math.log(3))
    assert uniform.brier == pytest.approx((2 / 3) ** 2 + 2 * (1 / 3) ** 2)


def test_to_dict_is_json_ready():
    import json

    m = classification_metrics(np.zeros((2, 3)), [0, 1], ["x", "y", "z"])
    d = json.loads(json.dumps(m.to_dict()))
    assert d["n"] == 2 and d["labels"] == ["x", "y", "z"] and len(d["confusion"]) == 3 and d["mode"] == "score"


@pytest.mark.parametrize(
    "log_probs, gold, predicted",
    [
        (np.zeros((2, 2)), [0, 1], None),  # wrong number of classes
        (np.zeros((2, 3)), [0], None),  # gold length mismatch
        (np.zeros((2, 3)), [0, 3], None),  # gold out of range
        (np.zeros((2, 3)), [0, 1], [0, 5]),  # prediction out of range
        (np.zeros((0, 3)), [], None),  # empty
    ],
)
def test_bad_shapes_raise(log_probs, gold, predicted):
    with pytest.raises(ValueError):
        classification_metrics(log_probs, np.array(gold, dtype=int), ["x", "y", "z"], predicted=predicted)


def test_macro_f1_chance_is_the_prior_floor_and_its_stderr_is_an_item_bootstrap():
    from taskdistill.evaluate.metrics import macro_f1_floor, macro_f1_stderr

    rng = np.random.default_rng(0)
    gold = np.array([0] * 60 + [1] * 30 + [2] * 10)  # unbalanced: the floor is not 1/C
    lp = np.log(np.full((100, 3), 1 / 3))
    m = classification_metrics(lp, gold, ["a", "b", "c"])
    priors = np.array([0.6, 0.3, 0.1])
    assert m.macro_f1_chance == pytest.approx(np.mean(2 * priors / (3 * priors + 1)))
    assert m.macro_f1_chance != pytest.approx(1 / 3) and m.chance == pytest.approx(1 / 3)
    # a uniform random guesser's macro-F1 averages to the floor
    sims = [classification_metrics(lp, gold, ["a", "b", "c"], predicted=rng.integers(0, 3, 100)).macro_f1
            for _ in range(400)]
    assert np.mean(sims) == pytest.approx(macro_f1_floor(priors), abs=0.02)
    # the item-bootstrap SE matches the spread of macro-F1 over fresh test sets of the same classifier
    pred = np.where(rng.random(100) < 0.7, gold, rng.integers(0, 3, 100))
    fresh = []
    for _ in range(300):
        g = rng.choice(3, 100, p=priors)
        fresh.append(classification_metrics(np.zeros((100, 3)), g, ["a", "b", "c"],
                                            predicted=np.where(rng.random(100) < 0.7, g, rng.integers(0, 3, 100))).macro_f1)
    assert macro_f1_stderr(gold, pred, 3) == pytest.approx(np.std(fresh), rel=0.35)
