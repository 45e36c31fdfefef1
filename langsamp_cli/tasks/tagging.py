"""Token tagging (NER, POS): a token-classification head on the backbone, first sub-token labelled.

Inputs are built as the official LangSAMP/XTREME tagging code builds them (``run_tag.py``,
``utils_tag.py``, ``evaluate_all_{pos,ner}.py``):

- each word is tokenised on its own; a word with no piece, or with more pieces than fit, becomes
  one ``<unk>``; only the first piece of a word carries its label (the rest and the specials -100);
- a sequence is ``<s> pieces </s></s>`` for tokenizers whose sentence pairs use a double separator
  (XLM-R, RoBERTa: the official ``sep_token_extra=True``), ``<s> pieces </s>`` otherwise;
- a sentence with more pieces than fit (``max_length`` - 3, or - 2) is not cut: it is split, word by
  word, into consecutive parts that each fit, and every part is trained on, predicted and scored as
  its own sequence (the official preprocessing writes the parts as separate sentences). Every word
  is therefore predicted; the unit's record counts ``split_sentences`` and ``parts``.

Scores: seqeval F1 (headline) and token accuracy. Gold tags the model cannot output (not in the
training label set) stay in the gold sequence, so they count as errors, and are counted per tag in
``unknown_tags``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from langsamp_cli.baselines import majority_label, tagging_baselines
from langsamp_cli.data.conll import TaggedSentences
from langsamp_cli.errors import LangsampError
from langsamp_cli.finetune import Runtime
from langsamp_cli.metrics import tagging_metrics
from langsamp_cli.tasks.head import HeadTask

IGNORE = -100


@dataclass
class EncodedSentence:
    """One part of a sentence (the whole sentence unless it had to be split)."""

    input_ids: list[int]
    first_pieces: list[int]   # position of each word's first piece in input_ids
    start: int = 0            # index of the part's first word in the sentence
    stop: int = 0             # one past its last word

    @property
    def words(self) -> slice:
        return slice(self.start, self.stop)


def double_separator(tokenizer) -> bool:
    """True for tokenizers that separate a pair with two ``</s>`` (RoBERTa, XLM-R).

    The official tagging code ends those inputs with ``</s></s>`` (``sep_token_extra``).
    """
    pair = tokenizer("a", "b")["input_ids"]
    return pair.count(tokenizer.sep_token_id) >= 3


class TaggingTask(HeadTask):
    headline = "f1"
    dev_metric = "f1"
    head_class = "AutoModelForTokenClassification"
    label_word = "tags"

    def __init__(self, name: str, max_length: int = 256, eval_batch_size: int = 32):
        super().__init__(name, max_length, eval_batch_size)
        self._tail: tuple | None = None  # (tokenizer, the separator(s) that end its inputs)

    def fit_labels(self, train: TaggedSentences, configured: list[str] | None = None) -> list[str]:
        """The tag inventory: ``configured`` (task YAML) or the sorted training tags."""
        self.majority = majority_label(tag for tags in train.tags for tag in tags)
        return self.set_labels((tag for tags in train.tags for tag in tags), train.source, configured)

    # -------------------------------------------------------------- encoding
    def encode(self, tokenizer, words: list[str]) -> list[EncodedSentence]:
        """The sentence as one or more parts that each fit in ``max_length`` (see the module doc)."""
        if self._tail is None or self._tail[0] is not tokenizer:
            self._tail = (tokenizer, [tokenizer.sep_token_id] * (2 if double_separator(tokenizer) else 1))
        tail = self._tail[1]
        budget = self.max_length - 1 - len(tail)
        if budget < 1:
            raise LangsampError(f"max_length {self.max_length} leaves no room for words next to the special tokens; "
                                "pass a larger --max-length")
        pieces_per_word = tokenizer(list(words), add_special_tokens=False)["input_ids"] if words else []
        parts: list[EncodedSentence] = []
        ids, first, start = [tokenizer.cls_token_id], [], 0
        for index, pieces in enumerate(pieces_per_word):
            if not pieces or len(pieces) > budget:
                pieces = [tokenizer.unk_token_id]
            if first and len(ids) - 1 + len(pieces) > budget:
                parts.append(EncodedSentence(ids + tail, first, start, index))
                ids, first, start = [tokenizer.cls_token_id], [], index
            first.append(len(ids))
            ids.extend(pieces)
        parts.append(EncodedSentence(ids + tail, first, start, len(pieces_per_word)))
        return parts

    def train_loader(self, data: TaggedSentences, tokenizer, batch_size: int, seed: int) -> DataLoader:
        label_ids = {label: i for i, label in enumerate(self.labels)}
        rows = []
        for index, (words, tags) in enumerate(zip(data.tokens, data.tags)):
            for part in self.encode(tokenizer, words):
                labels = [IGNORE] * len(part.input_ids)
                for token, (position, tag) in enumerate(zip(part.first_pieces, tags[part.words]), start=part.start):
                    if tag not in label_ids:
                        raise LangsampError(f"{data.where(index, token)}: tag {tag!r} is not in the label set "
                                            f"{self.labels}")
                    labels[position] = label_ids[tag]
                rows.append({"input_ids": part.input_ids, "labels": labels})
        return self.loader(rows, tokenizer, batch_size, seed)

    def collator(self, tokenizer) -> _Collator:
        return _Collator(tokenizer)

    # -------------------------------------------------------------- prediction and scoring
    def predict(self, model, tokenizer, sentences: list[list[str]], runtime: Runtime,
                progress: bool = False) -> tuple[list[list[str]], list[EncodedSentence]]:
        """Predicted tags per sentence part (every word of every sentence), and the parts."""
        encoded = [part for words in sentences for part in self.encode(tokenizer, words)]
        best = self.predict_ids(model, tokenizer, [part.input_ids for part in encoded], runtime, progress)
        return [[self.labels[row[p]] for p in part.first_pieces] for row, part in zip(best, encoded)], encoded

    def evaluate(self, model, tokenizer, data: TaggedSentences, runtime: Runtime,
                 progress: bool = False) -> tuple[dict[str, float], dict]:
        predicted, parts = self.predict(model, tokenizer, data.tokens, runtime, progress)
        # One gold sequence per part, as the official scorer sees the split sentences.
        gold_by_sentence = iter(data.tags)
        gold, tags = [], None
        for part in parts:
            if part.start == 0:
                tags = next(gold_by_sentence)
            gold.append(list(tags[part.words]))
        known = set(self.labels)
        unknown = Counter(tag for tags in gold for tag in tags if tag not in known)
        extra = {"n": len(data), "tokens": data.n_tokens, "source": data.source, **data.notes,
                 "baselines": tagging_baselines(gold, self.majority)}
        if len(parts) > len(data):
            extra["split_sentences"] = sum(1 for before, part in zip(parts, parts[1:])
                                           if before.start == 0 and part.start > 0)
            extra["parts"] = len(parts)
        if unknown:
            extra["unknown_tags"] = dict(sorted(unknown.items()))
        return tagging_metrics(gold, predicted), extra


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
