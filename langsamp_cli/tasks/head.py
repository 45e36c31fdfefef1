"""What the fine-tuned tasks share: a label inventory and a backbone with a fresh head of that size.

:class:`~langsamp_cli.tasks.classification.ClassificationTask` and
:class:`~langsamp_cli.tasks.tagging.TaggingTask` differ in how they encode, predict and score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.utils.data import DataLoader

from langsamp_cli.errors import LangsampError
from langsamp_cli.finetune import Runtime, progress_bar


class HeadTask:
    headline = "f1"
    dev_metric = "f1"
    head_class = "AutoModelForTokenClassification"  # the transformers auto class that adds the head
    label_word = "labels"                          # what the file's labels are called in messages

    def __init__(self, name: str, max_length: int = 256, eval_batch_size: int = 32):
        self.name = name
        self.max_length = int(max_length)
        self.eval_batch_size = int(eval_batch_size)
        self.labels: list[str] = []
        self.majority: str | None = None  # the most frequent training label (the baseline predicts it)

    def set_labels(self, found: Iterable[str], source: str, configured: list[str] | None = None) -> list[str]:
        """The label inventory: ``configured`` (task YAML) or the sorted labels ``found`` in training data."""
        found = sorted(set(found))
        if configured:
            extra = sorted(set(found) - set(configured))
            if extra:
                raise LangsampError(f"{source}: {self.label_word} {extra} are not in the task's labels "
                                    f"{list(configured)}; fix the file or the 'labels' list of the task config")
            self.labels = list(configured)
        else:
            self.labels = found
        return self.labels

    def build_model(self, model_name: str) -> torch.nn.Module:
        """The backbone with a fresh head; ``load_backbone`` refuses a checkpoint missing an encoder weight
        and reads official LangSAMP checkpoints."""
        import transformers

        from langsamp_cli.model import load_backbone

        model, _ = load_backbone(
            model_name,
            getattr(transformers, self.head_class),
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={label: i for i, label in enumerate(self.labels)},
        )
        return model

    def collator(self, tokenizer) -> Callable[[list[dict]], dict[str, torch.Tensor]]:
        """Pads rows of ``input_ids`` (and ``labels``) into a batch."""
        raise NotImplementedError

    def evaluate(self, model, tokenizer, data, runtime: Runtime,
                 progress: bool = False) -> tuple[dict[str, float], dict]:
        raise NotImplementedError

    def loader(self, rows: list[dict], tokenizer, batch_size: int, seed: int) -> DataLoader:
        """Shuffled training batches, in an order fixed by ``seed``."""
        generator = torch.Generator().manual_seed(int(seed))
        return DataLoader(rows, batch_size=batch_size, shuffle=True, generator=generator,
                          collate_fn=self.collator(tokenizer))

    def predict_ids(self, model, tokenizer, inputs: list[list[int]], runtime: Runtime,
                    progress: bool = False) -> list:
        """The argmax of the model's logits for each input (an id, or one per position), batching inputs
        of similar length together."""
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        collate = self.collator(tokenizer)
        best: dict[int, list] = {}
        model.eval()
        with progress_bar(progress, unit="sentence") as bars, torch.no_grad(), runtime.autocast():
            task = bars.add_task("predict", total=len(order))
            for start in range(0, len(order), self.eval_batch_size):
                chunk = order[start:start + self.eval_batch_size]
                batch = collate([{"input_ids": inputs[i]} for i in chunk])
                logits = model(**{k: v.to(runtime.device) for k, v in batch.items()}).logits
                best.update(zip(chunk, logits.argmax(-1).tolist()))
                bars.advance(task, len(chunk))
        return [best[i] for i in range(len(inputs))]

    def dev_score(self, tokenizer, dev, runtime):
        """The model -> dev-metric function early stopping and model selection use."""
        def score(model) -> float:
            return self.evaluate(model, tokenizer, dev, runtime)[0][self.dev_metric]
        return score
