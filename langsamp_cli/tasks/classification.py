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

from langsamp_cli.data.taxi1500 import LabelledTexts
from langsamp_cli.errors import LangsampError
from langsamp_cli.finetune import Runtime, progress_bar
from langsamp_cli.metrics import classification_metrics


class ClassificationTask:
    headline = "macro_f1"
    dev_metric = "macro_f1"

    def __init__(self, name: str, max_length: int = 256, eval_batch_size: int = 32):
        self.name = name
        self.max_length = int(max_length)
        self.eval_batch_size = int(eval_batch_size)
        self.labels: list[str] = []

    # -------------------------------------------------------------- labels and model
    def fit_labels(self, train: LabelledTexts, configured: list[str] | None = None) -> list[str]:
        """The label inventory: ``configured`` (task YAML) or the sorted training labels."""
        found = sorted(set(train.labels))
        if configured:
            extra = sorted(set(found) - set(configured))
            if extra:
                raise LangsampError(f"{train.source}: labels {extra} are not in the task's labels {configured}; "
                                    "fix the file or the 'labels' list of the task config")
            self.labels = list(configured)
        else:
            self.labels = found
        return self.labels

    def build_model(self, model_name: str) -> torch.nn.Module:
        """The backbone with a fresh head; ``load_backbone`` refuses a checkpoint missing an encoder weight."""
        from transformers import AutoModelForSequenceClassification

        from langsamp_cli.model import load_backbone

        model, _ = load_backbone(
            model_name,
            AutoModelForSequenceClassification,
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={label: i for i, label in enumerate(self.labels)},
        )
        return model

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
        generator = torch.Generator().manual_seed(int(seed))
        return DataLoader(rows, batch_size=batch_size, shuffle=True, generator=generator,
                          collate_fn=_Collator(tokenizer))

    # -------------------------------------------------------------- prediction and scoring
    def predict(self, model, tokenizer, texts: list[str], runtime: Runtime, progress: bool = False) -> list[str]:
        encoded = self.encode(tokenizer, texts)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # similar lengths batch together
        predictions: dict[int, int] = {}
        collate = _Collator(tokenizer)
        model.eval()
        with progress_bar(progress) as bars, torch.no_grad(), runtime.autocast():
            task = bars.add_task("predict", total=len(order))
            for start in range(0, len(order), self.eval_batch_size):
                chunk = order[start:start + self.eval_batch_size]
                batch = collate([{"input_ids": encoded[i]} for i in chunk])
                logits = model(**{k: v.to(runtime.device) for k, v in batch.items()}).logits
                predictions.update(zip(chunk, logits.argmax(-1).tolist()))
                bars.advance(task, len(chunk))
        return [self.labels[predictions[i]] for i in range(len(encoded))]

    def evaluate(self, model, tokenizer, data: LabelledTexts, runtime: Runtime,
                 progress: bool = False) -> tuple[dict[str, float], dict]:
        """Metrics on the rows with known labels, and the record's extra (counts, notes)."""
        data = self.known_only(data)
        predicted = self.predict(model, tokenizer, data.texts, runtime, progress)
        return classification_metrics(data.labels, predicted), {"n": len(data), "source": data.source, **data.notes}

    def dev_score(self, tokenizer, dev: LabelledTexts, runtime: Runtime):
        def score(model) -> float:
            return self.evaluate(model, tokenizer, dev, runtime)[0][self.dev_metric]
        return score


class _Collator:
    """Pads ``input_ids`` (and builds the attention mask); labels pass through as a tensor."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer.pad([{"input_ids": r["input_ids"]} for r in rows], return_tensors="pt")
        if "labels" in rows[0]:
            batch["labels"] = torch.tensor([r["labels"] for r in rows], dtype=torch.long)
        return dict(batch)
