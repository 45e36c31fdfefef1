"""SentenceEncoder: the official layer/pooling protocol, truncation, dedupe and the disk cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel

from langsamp_cli.encode import SentenceEncoder, find_blocks, text_list_hash
from langsamp_cli.errors import LangsampError
from helpers import SAMPLE_TEXTS, brute_force

SENTENCES = [s for sents in SAMPLE_TEXTS.values() for s in sents]


@pytest.fixture()
def make_encoder(tiny_model_dir: Path, tmp_path: Path):
    def make(model: Path = tiny_model_dir, **kwargs) -> SentenceEncoder:
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        kwargs.setdefault("batch_size", 4)
        return SentenceEncoder(str(model), **kwargs)

    return make


@pytest.mark.parametrize("layer", [0, 3, 8])
def test_layer_k_mean_pooling_matches_brute_force(make_encoder, tiny_model_dir, layer):
    encoder = make_encoder(layer=layer, use_cache=False)
    got = encoder.encode(SENTENCES)
    assert got.dtype == np.float32 and got.shape == (len(SENTENCES), 64)
    np.testing.assert_allclose(got, brute_force(tiny_model_dir, SENTENCES, layer), atol=2e-5)


def test_only_the_first_k_blocks_run(make_encoder):
    encoder = make_encoder(layer=5, use_cache=False)
    _, _, blocks = find_blocks(encoder.model)
    assert len(blocks) == 5 and encoder.num_layers == 8


@pytest.mark.parametrize("layer", [9, -1])
def test_layer_out_of_range_is_a_user_error(make_encoder, layer):
    with pytest.raises(LangsampError, match=r"--layer .* out of range.*8 layers"):
        make_encoder(layer=layer)


def test_exclude_special_tokens(make_encoder, tiny_model_dir):
    encoder = make_encoder(layer=8, use_cache=False, exclude_special_tokens=True)
    expected = brute_force(tiny_model_dir, SENTENCES, 8, drop_special=True)
    np.testing.assert_allclose(encoder.encode(SENTENCES), expected, atol=2e-5)
    assert not np.allclose(expected, brute_force(tiny_model_dir, SENTENCES, 8), atol=1e-3)


def test_tokenization_is_cls_tokens_sep_truncated(make_encoder):
    encoder = make_encoder(max_length=12)
    tok = encoder.tokenizer
    long_text = " ".join(SENTENCES[:3])
    for text in [SENTENCES[0], long_text]:
        tokens = tok.convert_tokens_to_ids(tok.tokenize(text))
        expected = [tok.cls_token_id] + tokens[:10] + [tok.sep_token_id]
        assert encoder.tokenize([text])[0] == expected
    assert len(encoder.tokenize([long_text])[0]) == 12


def test_bad_settings_are_user_errors(make_encoder):
    with pytest.raises(LangsampError, match="--max-length 600"):
        make_encoder(max_length=600)
    with pytest.raises(LangsampError, match="only supported on CUDA"):
        make_encoder(dtype="bfloat16", device="cpu")
    with pytest.raises(LangsampError, match="cannot load"):
        make_encoder(model=Path("/nonexistent/model"))


def test_cache_hit_miss_and_no_cache(make_encoder, tmp_path):
    first = make_encoder()
    vectors = first.encode(SENTENCES)
    assert first.sentences_encoded == len(SENTENCES)
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert [p.stem for p in cached] == [text_list_hash(SENTENCES)]

    second = make_encoder()  # a fresh process would see the same
    np.testing.assert_array_equal(second.encode(SENTENCES), vectors)
    assert second.sentences_encoded == 0 and second._model is None  # the model was never even loaded

    other_layer = make_encoder(layer=4)
    other_layer.encode(SENTENCES)
    assert other_layer.sentences_encoded == len(SENTENCES)

    uncached = make_encoder(use_cache=False, cache_dir=tmp_path / "none")
    uncached.encode(SENTENCES)
    assert uncached.sentences_encoded == len(SENTENCES) and not (tmp_path / "none").exists()


def test_changed_weights_never_hit_a_stale_cache(make_encoder, tiny_model_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    before = make_encoder(model=model_dir).encode(SENTENCES)

    model = AutoModel.from_pretrained(model_dir)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        weight = model.embeddings.word_embeddings.weight
        weight.add_(torch.randn(weight.shape, generator=generator))
    model.save_pretrained(model_dir)

    changed = make_encoder(model=model_dir)
    after = changed.encode(SENTENCES)
    assert changed.sentences_encoded == len(SENTENCES)
    assert not np.allclose(before, after, atol=1e-4)


def test_duplicates_and_remembered_sentences_are_encoded_once(make_encoder):
    encoder = make_encoder(use_cache=False)
    doubled = SENTENCES[:5] + SENTENCES[:5]
    out = encoder.encode(doubled, remember=True)
    assert encoder.sentences_encoded == 5
    np.testing.assert_array_equal(out[:5], out[5:])

    overlapping = SENTENCES[3:8]
    again = encoder.encode(overlapping)
    assert encoder.sentences_encoded == 5 + 3  # SENTENCES[3:5] came from the memo
    np.testing.assert_allclose(again, make_encoder(use_cache=False).encode(overlapping), atol=1e-5)
