"""What a score means: the floor a model with no signal reaches on the same test set.

Every scored unit keeps its baselines beside its metrics (``baselines: {name: {metric: value}}``), and
every results table prints, beside each value, the *floor*: per metric the best of those baselines.

- Retrieval (SR-B, SR-T): ``chance``, acc@k of a random ranking of the n candidates = min(k, n) / n.
- Classification (Taxi1500, SIB-200): ``majority``, the scores of predicting the source training set's most
  frequent label for every row (what a collapsed classifier does), and ``uniform``, the expected scores of
  guessing labels uniformly at random (accuracy 1/K; macro-F1 from the expected counts per class).
- Tagging (NER, POS): ``majority``, the scores of tagging every word with the most frequent training tag
  (``O`` for NER, so its F1 floor is 0 and its accuracy floor is the share of ``O``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

DESCRIPTIONS = {
    "chance": "chance (a random ranking: k/n)",
    "majority": "the training set's most frequent label for every item",
    "uniform": "uniform random guessing",
}


def retrieval_chance(n: int, ks: Iterable[int]) -> dict[str, dict[str, float]]:
    """``{"chance": {"acc@k": min(k, n) / n}}`` for ``n`` aligned candidates."""
    return {"chance": {f"acc@{k}": min(int(k), n) / n if n else 0.0 for k in ks}}


def majority_label(labels: Iterable[str]) -> str | None:
    """The most frequent label (ties: the alphabetically first), None when there is none."""
    counts = Counter(labels)
    if not counts:
        return None
    return min(counts, key=lambda label: (-counts[label], label))


def classification_baselines(gold: Sequence[str], majority: str | None,
                             labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """``majority`` (constant prediction) and ``uniform`` (random guessing among ``labels``) scores on ``gold``."""
    from langsamp_cli.metrics import classification_metrics

    found: dict[str, dict[str, float]] = {}
    if majority is not None and gold:
        found["majority"] = classification_metrics(gold, [majority] * len(gold))
    if labels and gold:
        found["uniform"] = uniform_scores(gold, labels)
    return found


def uniform_scores(gold: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Expected accuracy (1/K) and macro-F1 of uniform guessing over the K ``labels``.

    Per class c with n_c gold rows out of n: expected true positives n_c/K, predictions n/K, so
    F1_c = 2 (n_c/K) / (n/K + n_c); macro-F1 averages it over the labels (a label absent from gold
    scores 0, as scikit-learn does when it is predicted).
    """
    k, n = len(labels), len(gold)
    counts = Counter(gold)
    f1 = [2 * (counts[c] / k) / (n / k + counts[c]) for c in labels]
    return {"macro_f1": sum(f1) / k, "accuracy": 1 / k}


def tagging_baselines(gold: Sequence[Sequence[str]], majority: str | None) -> dict[str, dict[str, float]]:
    """``majority``: the scores of tagging every word with the most frequent training tag."""
    from langsamp_cli.metrics import tagging_metrics

    if majority is None or not gold:
        return {}
    return {"majority": tagging_metrics(gold, [[majority] * len(tags) for tags in gold])}


def floor(baselines: Mapping[str, Mapping[str, float]] | None) -> dict[str, float]:
    """Per metric, the best score any baseline reaches (what a result must beat to mean something)."""
    best: dict[str, float] = {}
    for scores in (baselines or {}).values():
        for metric, value in scores.items():
            if isinstance(value, (int, float)):
                best[metric] = max(best.get(metric, float("-inf")), float(value))
    return best


def floor_note(names: Iterable[str]) -> str:
    """The line under a table that says what the values in parentheses are."""
    described = [DESCRIPTIONS.get(name, name) for name in dict.fromkeys(names)]
    if not described:
        return ""
    what = described[0] if len(described) == 1 else "the better of " + " and ".join(described)
    return f"(x) = baseline: {what}; a score near it means no signal"
