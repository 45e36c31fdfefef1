"""Sentence classification (Taxi1500, SIB-200): a sequence-classification head on the backbone.

The text is tokenised as ``<s> text </s>`` (truncated at ``max_length``), the model is
``AutoModelForSequenceClassification`` (no language or script ids), and the headline metric is
scikit-learn macro-F1. Rows whose label the training set never had cannot be predicted; they are
left out of scoring and counted in the unit's record (``unknown_label_rows``).
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.utils.data import DataLoader

from langsamp_cli.baselines import classification_baselines, majority_label
from langsamp_cli.data.taxi1500 import LabelledTexts
from langsamp_cli.errors import LangsampError
from langsamp_cli.finetune import Runtime
from langsamp_cli.metrics import classification_metrics
from langsamp_cli.tasks.head import HeadTask


class ClassificationTask(HeadTask):
    headline = "macro_f1"
    dev_metric = "macro_f1"
    head_class = "AutoModelForSequenceClassification"

    def fit_labels(self, train: LabelledTexts, configured: list[str] | None = None) -> list[str]:
        """The label inventory: ``configured`` (task YAML) or the sorted training labels."""
        self.majority = majority_label(train.labels)
        return self.set_labels(train.labels, train.source, configured)

    # -------------------------------------------------------------- data
    def known_only(self, data: LabelledTexts) -> LabelledTexts:
        """Drop rows whose label the model cannot output; the count goes to ``notes``."""
        known = set(self.labels)
        keep = [i for i, label in enumerate(data.labels) if label in known]
        if len(keep) == len(data):
            return data
        unknown = Counter(label for label in data.labels if label not in known)
        if not keep:
            raise LangsampError(f"{data.source}: no row has a label the training set had ({dict(unknown)})")
        return data.subset(keep, {"unknown_label_rows": len(data) - len(keep), "unknown_labels": dict(unknown)})

    def encode(self, tokenizer, texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    def train_loader(self, data: LabelledTexts, tokenizer, batch_size: int, seed: int) -> DataLoader:
        data = self.known_only(data)
        label_ids = {label: i for i, label in enumerate(self.labels)}
        rows = [{"input_ids": ids, "labels": label_ids[label]}
                for ids, label in zip(self.encode(tokenizer, data.texts), data.labels)]
        return self.loader(rows, tokenizer, batch_size, seed)

    def collator(self, tokenizer) -> _Collator:
        return _Collator(tokenizer)

    # -------------------------------------------------------------- prediction and scoring
    def predict(self, model, tokenizer, texts: list[str], runtime: Runtime, progress: bool = False) -> list[str]:
        ids = self.predict_ids(model, tokenizer, self.encode(tokenizer, texts), runtime, progress)
        return [self.labels[i] for i in ids]

    def evaluate(self, model, tokenizer, data: LabelledTexts, runtime: Runtime,
                 progress: bool = False) -> tuple[dict[str, float], dict]:
        """Metrics on the rows with known labels, and the record's extra (counts, notes)."""
        data = self.known_only(data)
        predicted = self.predict(model, tokenizer, data.texts, runtime, progress)
        baselines = classification_baselines(data.labels, self.majority, self.labels)
        return classification_metrics(data.labels, predicted), {"n": len(data), "source": data.source, **data.notes,
                                                                 "baselines": baselines}


class _Collator:
    """Pads ``input_ids`` (and builds the attention mask); labels pass through as a tensor."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer.pad([{"input_ids": r["input_ids"]} for r in rows], return_tensors="pt")
        if "labels" in rows[0]:
            batch["labels"] = torch.tensor([r["labels"] for r in rows], dtype=torch.long)
        return dict(batch)
