"""Token tagging (NER, POS): a token-classification head on the backbone, first sub-token labelled.

Each word is tokenised on its own (a word that yields no piece becomes ``<unk>``, as in the
official XTREME/Glot500 code); only the first piece of a word carries its label, the other pieces
and the special tokens get -100. Sentences longer than ``max_length`` pieces are cut like the
official code does: words past the cut are neither trained on nor scored, and the unit's record
counts them (``words_truncated``). Scores: seqeval F1 (headline) and token accuracy.

Gold tags the model cannot output (not in the training label set) stay in the gold sequence, so
they count as errors, and are counted per tag in ``unknown_tags``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from langsamp_cli.data.conll import TaggedSentences
from langsamp_cli.errors import LangsampError
from langsamp_cli.finetune import Runtime, progress_bar
from langsamp_cli.metrics import tagging_metrics

IGNORE = -100


@dataclass
class EncodedSentence:
    input_ids: list[int]
    first_pieces: list[int]   # position of each kept word's first piece in input_ids
    words_cut: int            # words lost to the length limit


class TaggingTask:
    headline = "f1"
    dev_metric = "f1"

    def __init__(self, name: str, max_length: int = 256, eval_batch_size: int = 32):
        self.name = name
        self.max_length = int(max_length)
        self.eval_batch_size = int(eval_batch_size)
        self.labels: list[str] = []

    # -------------------------------------------------------------- labels and model
    def fit_labels(self, train: TaggedSentences, configured: list[str] | None = None) -> list[str]:
        found = sorted({tag for tags in train.tags for tag in tags})
        if configured:
            extra = sorted(set(found) - set(configured))
            if extra:
                raise LangsampError(f"{train.source}: tags {extra} are not in the task's labels {list(configured)}; "
                                    "fix the file or the 'labels' list of the task config")
            self.labels = list(configured)
        else:
            self.labels = found
        return self.labels

    def build_model(self, model_name: str) -> torch.nn.Module:
        from transformers import AutoModelForTokenClassification

        return AutoModelForTokenClassification.from_pretrained(
            model_name,
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={label: i for i, label in enumerate(self.labels)},
        )

    # -------------------------------------------------------------- encoding
    def encode(self, tokenizer, words: list[str]) -> EncodedSentence:
        pieces_per_word = tokenizer(words, add_special_tokens=False)["input_ids"] if words else []
        budget = self.max_length - 2  # <s> and </s>
        ids = [tokenizer.cls_token_id]
        first: list[int] = []
        for pieces in pieces_per_word:
            pieces = pieces or [tokenizer.unk_token_id]
            if len(ids) - 1 >= budget:
                break
            first.append(len(ids))
            ids.extend(pieces[: budget - (len(ids) - 1)])
        ids.append(tokenizer.sep_token_id)
        return EncodedSentence(ids, first, len(words) - len(first))

    def train_loader(self, data: TaggedSentences, tokenizer, batch_size: int, seed: int) -> DataLoader:
        label_ids = {label: i for i, label in enumerate(self.labels)}
        rows = []
        for index, (words, tags) in enumerate(zip(data.tokens, data.tags)):
            encoded = self.encode(tokenizer, words)
            labels = [IGNORE] * len(encoded.input_ids)
            for position, tag in zip(encoded.first_pieces, tags):
                if tag not in label_ids:
                    raise LangsampError(f"{data.where(index)}: tag {tag!r} is not in the label set {self.labels}")
                labels[position] = label_ids[tag]
            rows.append({"input_ids": encoded.input_ids, "labels": labels})
        generator = torch.Generator().manual_seed(int(seed))
        return DataLoader(rows, batch_size=batch_size, shuffle=True, generator=generator,
                          collate_fn=_Collator(tokenizer))

    # -------------------------------------------------------------- prediction and scoring
    def predict(self, model, tokenizer, sentences: list[list[str]], runtime: Runtime,
                progress: bool = False) -> tuple[list[list[str]], int]:
        """Predicted tags for the words that fit in ``max_length``, and how many words were cut."""
        encoded = [self.encode(tokenizer, words) for words in sentences]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
        predicted: dict[int, list[str]] = {}
        collate = _Collator(tokenizer)
        model.eval()
        with progress_bar(progress) as bars, torch.no_grad(), runtime.autocast():
            task = bars.add_task("predict", total=len(order))
            for start in range(0, len(order), self.eval_batch_size):
                chunk = order[start:start + self.eval_batch_size]
                batch = collate([{"input_ids": encoded[i].input_ids} for i in chunk])
                best = model(**{k: v.to(runtime.device) for k, v in batch.items()}).logits.argmax(-1).tolist()
                for row, i in zip(best, chunk):
                    predicted[i] = [self.labels[row[p]] for p in encoded[i].first_pieces]
                bars.advance(task, len(chunk))
        return [predicted[i] for i in range(len(encoded))], sum(e.words_cut for e in encoded)

    def evaluate(self, model, tokenizer, data: TaggedSentences, runtime: Runtime,
                 progress: bool = False) -> tuple[dict[str, float], dict]:
        predicted, cut = self.predict(model, tokenizer, data.tokens, runtime, progress)
        gold = [tags[: len(pred)] for tags, pred in zip(data.tags, predicted)]
        known = set(self.labels)
        unknown = Counter(tag for tags in gold for tag in tags if tag not in known)
        extra = {"n": len(data), "tokens": data.n_tokens, "source": data.source, **data.notes}
        if cut:
            extra["words_truncated"] = cut
        if unknown:
            extra["unknown_tags"] = dict(sorted(unknown.items()))
        return tagging_metrics(gold, predicted), extra

    def dev_score(self, tokenizer, dev: TaggedSentences, runtime: Runtime):
        def score(model) -> float:
            return self.evaluate(model, tokenizer, dev, runtime)[0][self.dev_metric]
        return score


class _Collator:
    """Pads ``input_ids`` with the pad id and ``labels`` with -100."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row["input_ids"])] = torch.tensor(row["input_ids"])
            mask[i, : len(row["input_ids"])] = 1
        batch = {"input_ids": ids, "attention_mask": mask}
        if "labels" in rows[0]:
            labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
            for i, row in enumerate(rows):
                labels[i, : len(row["labels"])] = torch.tensor(row["labels"])
            batch["labels"] = labels
        return batch
