"""The pretraining step decides every shape on the host: target rows come as flat indices from the collator and a
batch without padding goes without an attention mask, so a GPU never makes the host wait inside a step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import AutoTokenizer

from langsamp_cli.model import build_model
from langsamp_cli.pretrain.collate import IGNORE_INDEX, MLMCollator
from langsamp_cli.pretrain.corpus import Example
from langsamp_cli.pretrain.trainer import to_device

LANG2ID = {"arb": 0, "eng": 1, "rus": 2, "zho": 3}
SCRIPT2ID = {"Arab": 0, "Cyrl": 1, "Hani": 2, "Latn": 3}
# aten ops that need a tensor's contents on the host: on a GPU each one waits for the device.
HOST_READS = {"nonzero", "_local_scalar_dense", "masked_select", "item"}


@pytest.fixture()
def model(tiny_model_dir: Path):
    torch.manual_seed(0)
    return build_model(str(tiny_model_dir), LANG2ID, SCRIPT2ID, variant="both")


@pytest.fixture()
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def examples(tokenizer, lengths: list[int], seed: int = 0) -> list[Example]:
    gen = torch.Generator().manual_seed(seed)
    special = set(tokenizer.all_special_ids)
    ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in special])
    out = []
    for row, length in enumerate(lengths):
        body = ordinary[torch.randint(len(ordinary), (length - 2,), generator=gen)].tolist()
        out.append(Example([tokenizer.bos_token_id, *body, tokenizer.eos_token_id], "eng_Latn", row % 4, row % 3))
    return out


def boolean_mask_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss as the model computed it before (boolean-mask selection), written out independently."""
    hidden = model.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    masked = batch["labels"] != IGNORE_INDEX
    rows = hidden[masked]
    rows = rows + model.lang_embeddings(batch["lang_ids"][:, None].expand_as(masked)[masked])
    rows = rows + model.script_embeddings(batch["script_ids"][:, None].expand_as(masked)[masked])
    return torch.nn.functional.cross_entropy(model.lm_head(rows).float(), batch["labels"][masked])


def gradients(model) -> dict[str, torch.Tensor]:
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def test_collator_positions_are_the_boolean_mask_in_its_order(tokenizer) -> None:
    batch = MLMCollator(tokenizer, 0.3, seed=4)(examples(tokenizer, [30, 17, 24, 9]))
    positions, labels = batch["masked_positions"], batch["labels"]
    assert positions.dtype == torch.long and positions.dim() == 1
    assert torch.equal(positions, torch.nonzero(labels.flatten() != IGNORE_INDEX).flatten())
    assert torch.equal(labels.flatten()[positions], labels[labels != IGNORE_INDEX])
    assert len(positions) > 4 and bool((positions[1:] > positions[:-1]).all())


def test_loss_and_gradients_with_positions_equal_the_boolean_mask_exactly(model, tokenizer) -> None:
    batch = MLMCollator(tokenizer, 0.2, seed=1)(examples(tokenizer, [32, 20, 32, 11, 27]))  # padded rows
    model.train()  # dropout on: each pass draws the same masks from the same seed
    torch.manual_seed(7)
    reference = boolean_mask_loss(model, batch)
    reference.backward()
    reference_grads = gradients(model)
    torch.manual_seed(7)
    out = model(**batch)
    out.loss.backward()
    assert torch.equal(out.loss, reference)
    assert out.n_masked == int((batch["labels"] != IGNORE_INDEX).sum())
    grads = gradients(model)
    assert grads.keys() == reference_grads.keys() and len(grads) > 10
    assert all(torch.equal(grads[name], reference_grads[name]) for name in grads)
    # callers that pass labels only (HF style) get the same number
    labels_only = {k: v for k, v in batch.items() if k != "masked_positions"}
    torch.manual_seed(7)
    assert torch.equal(model(**labels_only).loss, reference)
    per_token_ids = {**labels_only, "lang_ids": batch["lang_ids"][:, None].expand(5, batch["labels"].shape[1])}
    torch.manual_seed(7)
    assert torch.equal(model(**per_token_ids).loss, reference)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_a_full_batch_goes_without_a_mask_and_gives_the_same_loss(model, tokenizer, attention) -> None:
    model.mlm.set_attn_implementation(attention)
    model.eval()
    full = MLMCollator(tokenizer, 0.15, seed=2)(examples(tokenizer, [24, 24, 24]))
    moved = to_device(full, torch.device("cpu"))
    assert moved["attention_mask"] is None
    with torch.no_grad():
        assert torch.equal(model(**moved).loss, model(**full).loss)
    padded = MLMCollator(tokenizer, 0.15, seed=2)(examples(tokenizer, [24, 13, 24]))
    assert torch.equal(to_device(padded, torch.device("cpu"))["attention_mask"], padded["attention_mask"])


class HostReads(TorchDispatchMode):
    """Records the aten ops that read a tensor's contents back to the host."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in HOST_READS:
            self.seen.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_forward_and_backward_of_a_training_batch_read_nothing_back(model, tokenizer) -> None:
    """Any such op on a GPU is a host-device sync per step (the old boolean-mask selection was one)."""
    model.train()
    batch = to_device(MLMCollator(tokenizer, 0.15, seed=3)(examples(tokenizer, [28] * 4)), torch.device("cpu"))
    with HostReads() as reads:
        model(**batch).loss.backward()
    assert reads.seen == []
    labels_only = {k: v for k, v in batch.items() if k != "masked_positions"}
    with HostReads() as reads:  # the fallback finds the rows itself: the detector does see that
        model(**labels_only).loss.backward()
    assert "nonzero" in reads.seen


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_training_step_never_synchronizes(model, tokenizer) -> None:
    """On a GPU: two bf16 steps of the trainer's own step function under CUDA's sync detector set to raise."""
    from rich.console import Console
    from transformers import get_linear_schedule_with_warmup

    from langsamp_cli.pretrain.config import PretrainConfig
    from langsamp_cli.pretrain.trainer import make_accelerator, make_optimizer, train_step

    config = PretrainConfig(batch_size=4, grad_accum=2, max_seq_len=28, lr=1e-3, max_steps=10,
                            mixed_precision="bf16")
    accelerator = make_accelerator(config, Console(stderr=True))
    optimizer = make_optimizer(model, config, fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, 2, config.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    collator = MLMCollator(tokenizer, 0.15, seed=5)
    steps = [[{k: v.pin_memory() for k, v in collator(examples(tokenizer, [28] * 4, seed=s)).items()}
              for s in (2 * step, 2 * step + 1)] for step in range(3)]
    train_step(model, optimizer, scheduler, steps[0], accelerator, config)  # first step: lazy state, allocations
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = [train_step(model, optimizer, scheduler, batches, accelerator, config) for batches in steps[1:]]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(bool(torch.isfinite(loss)) for loss in losses)
