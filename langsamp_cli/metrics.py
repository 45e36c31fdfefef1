"""Scores as the official evaluation code computes them (all values are fractions in [0, 1]).

- Classification (Taxi1500, SIB-200): scikit-learn macro-F1 over the labels present in gold or
  predictions (``f1_score(average="macro")`` with no ``labels=``, as the official scripts call it),
  plus accuracy.
- Tagging (NER and POS): seqeval precision/recall/F1 in its default (CoNLL) mode on the
  first-sub-token predictions, plus token accuracy. For POS the official Glot500/XTREME code also
  passes raw UPOS tags (``NOUN``, ``VERB``...) to seqeval; seqeval then reads the first letter as a
  chunk prefix and merges runs of the same tag into one "chunk", so POS F1 is *not* token accuracy.
  We keep that F1 for comparability with the paper and report ``accuracy`` next to it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from langsamp_cli.errors import LangsampError


def classification_metrics(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """``macro_f1`` and ``accuracy`` for one label per example."""
    from sklearn.metrics import accuracy_score, f1_score

    _check_lengths(gold, predicted)
    return {
        "macro_f1": float(f1_score(list(gold), list(predicted), average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(list(gold), list(predicted))),
    }


def tagging_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """seqeval ``f1``/``precision``/``recall`` (default mode) and token ``accuracy``."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    _check_lengths(gold, predicted)
    for index, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {index}: {len(g)} gold tags but {len(p)} predictions")
    gold_lists = [list(s) for s in gold]
    pred_lists = [list(s) for s in predicted]
    tokens = sum(len(s) for s in gold_lists)
    correct = sum(a == b for g, p in zip(gold_lists, pred_lists) for a, b in zip(g, p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "NOUN seems not to be NE tag" for POS: expected, see docstring
        return {
            "f1": float(f1_score(gold_lists, pred_lists, zero_division=0)),
            "precision": float(precision_score(gold_lists, pred_lists, zero_division=0)),
            "recall": float(recall_score(gold_lists, pred_lists, zero_division=0)),
            "accuracy": correct / tokens if tokens else 0.0,
        }


def _check_lengths(gold: Sequence, predicted: Sequence) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold items but {len(predicted)} predictions")
    if not gold:
        raise LangsampError("nothing to score: the evaluation set is empty")
