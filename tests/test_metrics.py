"""Metrics against scikit-learn / seqeval and against hand computations."""

from __future__ import annotations

import random

import pytest
from seqeval.metrics import f1_score as seqeval_f1
from sklearn.metrics import f1_score as sklearn_f1

from langsamp_cli.errors import LangsampError
from langsamp_cli.metrics import classification_metrics, tagging_metrics


def test_macro_f1_by_hand() -> None:
    # a: P=1, R=1/2 -> 2/3; b: P=1/2, R=1 -> 2/3; c: 1 -> macro (2/3 + 2/3 + 1) / 3 = 7/9
    scores = classification_metrics(["a", "a", "b", "c"], ["a", "b", "b", "c"])
    assert scores["macro_f1"] == pytest.approx(7 / 9)
    assert scores["accuracy"] == pytest.approx(3 / 4)


def test_macro_f1_matches_sklearn_on_random_predictions() -> None:
    rng = random.Random(0)
    labels = ["Faith", "Grace", "Sin", "Violence", "Description", "Recommendation"]
    gold = [rng.choice(labels) for _ in range(200)]
    pred = [g if rng.random() < 0.4 else rng.choice(labels) for g in gold]
    assert classification_metrics(gold, pred)["macro_f1"] == pytest.approx(sklearn_f1(gold, pred, average="macro"))


def test_macro_f1_averages_over_labels_seen_in_gold_or_predictions() -> None:
    # the official call has no labels=: a label nobody used does not count as a zero
    assert classification_metrics(["a", "b"], ["a", "b"])["macro_f1"] == 1.0


def test_ner_f1_by_hand() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG"]]
    # gold entities: PER(0-1), LOC(3), ORG; predicted: PER(0-1), ORG(3), ORG -> 2 of 3 right both ways
    scores = tagging_metrics(gold, pred)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(5 / 6)


def test_partial_entity_is_wrong_and_matches_seqeval() -> None:
    gold = [["B-PER", "I-PER", "O"]]
    pred = [["B-PER", "O", "O"]]
    scores = tagging_metrics(gold, pred)
    assert scores["f1"] == 0.0
    assert scores["f1"] == seqeval_f1(gold, pred)


def test_pos_f1_follows_official_seqeval_on_raw_upos() -> None:
    # seqeval reads NOUN as prefix 'N' + type 'OUN' and merges NOUN NOUN into one chunk:
    # gold chunks {OUN 0-1, ERB 2}; predicted {OUN 0, DJ 1, ERB 2} -> P 1/3, R 1/2, F1 0.4
    scores = tagging_metrics([["NOUN", "NOUN", "VERB"]], [["NOUN", "ADJ", "VERB"]])
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == pytest.approx(1 / 2)
    assert scores["f1"] == pytest.approx(0.4)
    assert scores["accuracy"] == pytest.approx(2 / 3)


def test_length_mismatch_and_empty_sets_are_errors() -> None:
    with pytest.raises(ValueError, match="sentence 0"):
        tagging_metrics([["O", "O"]], [["O"]])
    with pytest.raises(ValueError):
        classification_metrics(["a"], ["a", "b"])
    with pytest.raises(LangsampError, match="empty"):
        classification_metrics([], [])
