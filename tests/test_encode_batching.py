"""Token-budget batching: the same vectors as one sentence at a time, built without per-sentence tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import SAMPLE_TEXTS
from langsamp_cli.encode import PaddedBatches, SentenceEncoder, mean_pool, token_budget_batches

# Lengths from 3 to ~40 tokens, with duplicates: batches mix many widths.
SENTENCES = [s for sents in SAMPLE_TEXTS.values() for s in sents]
SENTENCES = SENTENCES + [f"{a} {b}" for a, b in zip(SENTENCES, reversed(SENTENCES))] + ["a", SENTENCES[0]]


def test_budget_spans_cover_every_row_once() -> None:
    lengths = np.array([10, 8, 8, 3, 3, 3, 3, 3, 1])
    assert token_budget_batches(lengths, 16) == [(0, 1), (1, 3), (3, 8), (8, 9)]
    assert token_budget_batches(lengths, 5) == [(i, i + 1) for i in range(3)] + [(3, 4), (4, 5), (5, 6), (6, 7),
                                                                                 (7, 8), (8, 9)]
    assert token_budget_batches(np.array([], dtype=np.int64), 16) == []
    for budget in (1, 7, 30, 1000):
        spans = token_budget_batches(lengths, budget)
        assert [i for s, e in spans for i in range(s, e)] == list(range(len(lengths)))
        assert all((e - s) * lengths[s] <= budget or e - s == 1 for s, e in spans)
        assert all(lengths[e - 1] >= 0.75 * lengths[s] for s, e in spans)  # padding under a quarter of each row
    assert token_budget_batches(lengths, 1000) == [(0, 3), (3, 8), (8, 9)]
    assert token_budget_batches(lengths, 1000, min_fill=0) == [(0, 9)]  # the budget alone


def test_padded_batches_match_a_row_by_row_build() -> None:
    ids = [[0, 5, 6, 2], [0, 7, 2], [0, 9, 9, 9, 9, 2], [0, 2]]
    lengths = np.array([len(x) for x in ids])
    order = np.argsort(-lengths, kind="stable")
    batches = PaddedBatches(ids, order, lengths, pad_id=1)
    input_ids, attention = batches.arrays(1, 4)   # rows 0, 1, 3 of the input, padded to width 4
    assert input_ids.tolist() == [[0, 5, 6, 2], [0, 7, 2, 1], [0, 2, 1, 1]]
    assert attention.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]]
    tensor_ids, tensor_mask = batches.tensors(0, 1, torch.device("cpu"))
    assert tensor_ids.tolist() == [[0, 9, 9, 9, 9, 2]] and tensor_mask.dtype == torch.int64


@pytest.mark.parametrize("exclude_special", [False, True])
def test_budget_batches_give_the_one_at_a_time_vectors(tiny_model_dir: Path, exclude_special: bool) -> None:
    def encode(max_batch_tokens: int) -> np.ndarray:
        # CPU on every machine: GPU kernels may legitimately pick other summation orders per batch shape.
        encoder = SentenceEncoder(str(tiny_model_dir), layer=6, use_cache=False, max_batch_tokens=max_batch_tokens,
                                  exclude_special_tokens=exclude_special, device="cpu")
        return encoder.encode(SENTENCES)

    one_at_a_time = encode(1)       # every batch holds one sentence: no padding at all
    budgeted = encode(256)          # a few mixed-width batches
    one_batch = encode(100_000)     # everything in one padded batch
    assert one_at_a_time.shape == (len(SENTENCES), 64)
    np.testing.assert_allclose(budgeted, one_at_a_time, rtol=0, atol=1e-6)
    np.testing.assert_allclose(one_batch, one_at_a_time, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(budgeted[0], budgeted[-1])  # the repeated sentence


def test_vectors_come_to_the_host_once_per_encode(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = SentenceEncoder(str(tiny_model_dir), layer=4, use_cache=False, max_batch_tokens=64, device="cpu")
    encoder.model  # loaded first: only encode()'s own copies are counted
    copies = []
    original = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self, *a, **k: copies.append(self.shape) or original(self, *a, **k))
    out = encoder.encode(SENTENCES)
    spans = token_budget_batches(np.sort([len(x) for x in encoder.tokenize(SENTENCES)])[::-1], 64)
    assert len(spans) > 3                                      # several batches ...
    assert copies == [torch.Size((1, len(set(SENTENCES)), 64))]  # ... one copy (one layer, the distinct sentences)
    assert out.shape == (len(SENTENCES), 64)


def test_half_precision_states_pool_in_float32() -> None:
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 5, 16, generator=generator).to(torch.bfloat16)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    pooled = mean_pool(hidden, mask)
    assert pooled.dtype == torch.float32
    states, weights = hidden.to(torch.float64).numpy(), mask.numpy()[:, :, None]  # bf16 -> float64 is exact
    reference = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1)
    np.testing.assert_allclose(pooled.numpy(), reference, rtol=1e-6, atol=1e-7)
    assert not pooled[2].any()                                 # an empty mask gives zeros


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_vectors_match_the_cpu_ones(tiny_model_dir: Path) -> None:
    def encode(device: str, dtype: str = "float32") -> np.ndarray:
        return SentenceEncoder(str(tiny_model_dir), layer=6, use_cache=False, device=device, dtype=dtype).encode(SENTENCES)

    cpu, gpu = encode("cpu"), encode("cuda")
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-4)
    half = encode("cuda", "bfloat16")
    assert half.dtype == np.float32
    cosine = (half * cpu).sum(1) / (np.linalg.norm(half, axis=1) * np.linalg.norm(cpu, axis=1))
    assert cosine.min() > 0.99
