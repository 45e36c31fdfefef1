"""MLM masking: 15% selection with 80/10/10, specials/padding never touched, deterministic per generator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from langsamp_cli.pretrain.collate import IGNORE_INDEX, MLMCollator
from langsamp_cli.pretrain.corpus import Example


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def make_examples(tokenizer, rows: int, length: int, seed: int = 0) -> list[Example]:
    gen = torch.Generator().manual_seed(seed)
    specials = set(tokenizer.all_special_ids)
    ordinary = torch.tensor([i for i in range(len(tokenizer)) if i not in specials])
    examples = []
    for row in range(rows):
        body = ordinary[torch.randint(len(ordinary), (length - 2 - row % 7,), generator=gen)].tolist()
        ids = [tokenizer.bos_token_id, *body, tokenizer.eos_token_id]
        examples.append(Example(ids, "eng_Latn", row % 3, row % 2))
    return examples


def test_masking_rates_on_a_big_batch(tokenizer) -> None:
    examples = make_examples(tokenizer, rows=256, length=128)
    batch = MLMCollator(tokenizer, 0.15, seed=0)(examples)
    original = torch.full_like(batch["input_ids"], tokenizer.pad_token_id)
    for row, example in enumerate(examples):
        original[row, : len(example.input_ids)] = torch.tensor(example.input_ids)
    maskable = ~torch.isin(original, torch.tensor(tokenizer.all_special_ids))
    selected = batch["labels"] != IGNORE_INDEX
    n_selected = int(selected.sum())
    assert abs(n_selected / int(maskable.sum()) - 0.15) < 0.01
    assert torch.equal(batch["labels"][selected], original[selected])
    masked = (batch["input_ids"] == tokenizer.mask_token_id) & selected
    kept = (batch["input_ids"] == original) & selected
    replaced = selected & ~masked & ~kept
    assert abs(int(masked.sum()) / n_selected - 0.8) < 0.02
    # a random draw can hit the original token (1/vocab), which then counts as "kept"
    assert abs(int(replaced.sum()) / n_selected - 0.1) < 0.015
    assert abs(int(kept.sum()) / n_selected - 0.1) < 0.015
    # unselected positions are never changed
    assert torch.equal(batch["input_ids"][~selected], original[~selected])


def test_specials_and_padding_never_masked_and_mask_is_right(tokenizer) -> None:
    examples = make_examples(tokenizer, rows=64, length=40, seed=1)
    batch = MLMCollator(tokenizer, 0.5, seed=3)(examples)
    special_ids = torch.tensor(tokenizer.all_special_ids)
    lengths = torch.tensor([len(e.input_ids) for e in examples])
    expected_mask = (torch.arange(batch["input_ids"].shape[1])[None, :] < lengths[:, None]).long()
    assert torch.equal(batch["attention_mask"], expected_mask)
    assert (batch["labels"][:, 0] == IGNORE_INDEX).all()
    for row, length in enumerate(lengths.tolist()):
        assert batch["labels"][row, length - 1] == IGNORE_INDEX        # </s>
        assert (batch["labels"][row, length:] == IGNORE_INDEX).all()   # padding
        assert (batch["input_ids"][row, length:] == tokenizer.pad_token_id).all()
    random_positions = (batch["labels"] != IGNORE_INDEX) & (batch["input_ids"] != tokenizer.mask_token_id)
    assert not torch.isin(batch["input_ids"][random_positions], special_ids[special_ids != tokenizer.mask_token_id]
                          ).any()
    assert batch["lang_ids"].tolist() == [r % 3 for r in range(64)]
    assert batch["script_ids"].tolist() == [r % 2 for r in range(64)]


def test_masking_is_deterministic_and_state_restores(tokenizer) -> None:
    examples = make_examples(tokenizer, rows=8, length=32)
    a, b = MLMCollator(tokenizer, seed=11), MLMCollator(tokenizer, seed=11)
    first, again = a(examples), b(examples)
    assert all(torch.equal(first[k], again[k]) for k in first)
    state = a.state_dict()
    expected = a(examples)
    c = MLMCollator(tokenizer, seed=999)
    c.load_state_dict(state)
    assert torch.equal(c(examples)["input_ids"], expected["input_ids"])
    assert not torch.equal(MLMCollator(tokenizer, seed=12)(examples)["labels"], first["labels"])


def test_a_batch_always_has_a_target(tokenizer) -> None:
    short = [Example([tokenizer.bos_token_id, 100, tokenizer.eos_token_id], "eng_Latn", 0, 0)]
    for seed in range(20):
        labels = MLMCollator(tokenizer, 0.15, seed=seed)(short)["labels"]
        assert labels.tolist() == [[IGNORE_INDEX, 100, IGNORE_INDEX]]
