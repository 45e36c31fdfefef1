"""Official LangSAMP checkpoints have no token-type embedding: langsamp must load them with zeros there
(reproducing the official forward pass) and must never evaluate an encoder with a weight left random."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import langsamp_cli.model as model_module
from helpers import LANG2ID, LAYER_WEIGHT, SAMPLE_TEXTS, SCRIPT2ID, TOKEN_TYPE, TOKENIZER_FILES, write_official
from langsamp_cli.checkpoint_info import TOKEN_TYPE_ZEROS, model_adjustments
from langsamp_cli.errors import LangsampError
from langsamp_cli.model import build_model, load_checkpoint, save_checkpoint

SENTENCES = [s for key in ("eng_Latn", "rus_Cyrl", "zho_Hani", "arb_Arab") for s in SAMPLE_TEXTS[key]]
@pytest.fixture()
def official(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr(model_module, "_NOTES_SHOWN", set())  # every test sees its notes
    return write_official(tiny_model_dir, tmp_path / "official")


# --------------------------------------------------------------------- the official forward pass, by hand
def _layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _linear(x: torch.Tensor, w: dict, name: str) -> torch.Tensor:
    return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]


def official_embeddings(ids: list[int], w: dict, config: dict) -> torch.Tensor:
    """word + position embeddings (positions count from padding_idx + 1), LayerNorm; no token type."""
    pad = config["pad_token_id"]
    positions = torch.arange(len(ids)) + pad + 1
    x = w["roberta.embeddings.word_embeddings.weight"][ids] + w["roberta.embeddings.position_embeddings.weight"][positions]
    return _layer_norm(x, w["roberta.embeddings.LayerNorm.weight"], w["roberta.embeddings.LayerNorm.bias"],
                       config["layer_norm_eps"])


def official_block(x: torch.Tensor, w: dict, i: int, config: dict) -> torch.Tensor:
    """One post-LN transformer block: multi-head self-attention, residual + LN, GELU feed-forward, residual + LN."""
    p, heads, eps = f"roberta.encoder.layer.{i}", config["num_attention_heads"], config["layer_norm_eps"]
    length, dim = x.shape
    split = lambda t: t.view(length, heads, dim // heads).transpose(0, 1)  # noqa: E731
    q, k, v = (split(_linear(x, w, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
    attention = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dim // heads), dim=-1)
    context = (attention @ v).transpose(0, 1).reshape(length, dim)
    x = _layer_norm(_linear(context, w, f"{p}.attention.output.dense") + x,
                    w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"], eps)
    inner = torch.nn.functional.gelu(_linear(x, w, f"{p}.intermediate.dense"))
    return _layer_norm(_linear(inner, w, f"{p}.output.dense") + x,
                       w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], eps)


def official_sentence_vectors(folder: Path, sentences: list[str], layer: int) -> tuple[np.ndarray, list]:
    """Mean over all tokens (<s> and </s> included) of the output of block ``layer``; float64 throughout."""
    from transformers import AutoTokenizer

    weights = {k: v.double() for k, v in load_file(str(folder / "model.safetensors")).items()}
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["hidden_act"] == "gelu"
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    vectors, embeddings = [], []
    for sentence in sentences:
        ids = tokenizer(sentence, truncation=True, max_length=512)["input_ids"]
        x = official_embeddings(ids, weights, config)
        embeddings.append((ids, x))
        for i in range(layer):
            x = official_block(x, weights, i, config)
        vectors.append(x.mean(0).numpy())
    return np.stack(vectors), embeddings


# --------------------------------------------------------------------- done-when: equal vectors
def test_encoder_layer8_vectors_equal_the_official_forward_pass(official: Path, tmp_path: Path, capfd) -> None:
    from langsamp_cli.encode import SentenceEncoder

    expected, _ = official_sentence_vectors(official, SENTENCES, layer=8)
    encoder = SentenceEncoder(str(official), layer=8, batch_size=4, cache_dir=tmp_path / "cache")
    got = encoder.encode(SENTENCES)
    assert np.abs(got - expected).max() < 1e-6
    err = capfd.readouterr().err
    assert err.count("no token-type embedding in the checkpoint") == 1 and err.count("\n") == 1
    table = encoder.model.embeddings.token_type_embeddings.weight
    assert not table.requires_grad and not table.any()
    # The old loading (a random token-type row) is far from the official vectors: the test can fail.
    with torch.inference_mode():
        table.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
    assert np.abs(encoder._run_network(SENTENCES, [8], False)[8] - expected).max() > 1e-3


def test_finetuning_backbone_equals_the_official_forward_pass(official: Path) -> None:
    from langsamp_cli.tasks.classification import ClassificationTask
    from langsamp_cli.tasks.tagging import TaggingTask

    expected, embeddings = official_sentence_vectors(official, SENTENCES[:3], layer=8)
    task = ClassificationTask("sib200")
    task.labels = ["a", "b", "c"]
    tagger = TaggingTask("ner")
    tagger.labels = ["O", "B-PER"]
    for built in (task.build_model(str(official)), tagger.build_model(str(official))):
        built.eval()
        table = built.roberta.embeddings.token_type_embeddings.weight
        assert not table.any() and not table.requires_grad
        with torch.no_grad():
            for (ids, hand), vector in zip(embeddings, expected):
                out = built.roberta(input_ids=torch.tensor([ids]), output_hidden_states=True)
                assert (out.hidden_states[0][0].double() - hand).abs().max() < 1e-6  # the embedding output
                assert np.abs(out.hidden_states[8][0].mean(0).numpy() - vector).max() < 1e-6


def test_adjustments_are_in_the_provenance_and_the_fingerprint(official: Path, tiny_model_dir: Path,
                                                                monkeypatch) -> None:
    from langsamp_cli.model import model_fingerprint
    from langsamp_cli.results import provenance

    assert model_adjustments(str(official)) == [TOKEN_TYPE_ZEROS]
    assert provenance({"model": str(official)})["model_adjustments"] == [TOKEN_TYPE_ZEROS]
    assert provenance({"model": str(tiny_model_dir)})["model_adjustments"] == []
    # The adjustments enter the fingerprint, so caches made by a loader that did not apply them never match.
    with_zeros = model_fingerprint(official)
    monkeypatch.setattr(model_module, "planned_adjustments", lambda folder: [])
    assert model_fingerprint(official) != with_zeros


def test_continuing_an_official_checkpoint_keeps_the_zero_table_frozen(official: Path, tmp_path: Path) -> None:
    model = build_model(str(official), LANG2ID, SCRIPT2ID, variant="both")
    table = model.mlm.roberta.embeddings.token_type_embeddings.weight
    assert not table.any() and not table.requires_grad
    saved = save_checkpoint(model, None, tmp_path / "continued")
    assert json.loads((saved / "langsamp.json").read_text())["frozen"] == [TOKEN_TYPE]
    again = load_checkpoint(saved)  # a resumed run trains the same parameters
    assert not again.mlm.roberta.embeddings.token_type_embeddings.weight.requires_grad
    assert model_adjustments(str(saved)) == []  # the zeros are now stored


# --------------------------------------------------------------------- refusals
def test_a_missing_layer_weight_is_refused_everywhere(tiny_model_dir: Path, tmp_path: Path) -> None:
    from langsamp_cli.encode import SentenceEncoder
    from langsamp_cli.tasks.classification import ClassificationTask

    folder = write_official(tiny_model_dir, tmp_path / "broken", drop=(TOKEN_TYPE, LAYER_WEIGHT))
    with pytest.raises(LangsampError, match="lacks weight 'encoder.layer.3.attention.self.query.weight'"):
        SentenceEncoder(str(folder), layer=8, use_cache=False).encode(["a sentence"])
    task = ClassificationTask("sib200")
    task.labels = ["a", "b"]
    with pytest.raises(LangsampError, match=f"lacks weight '{LAYER_WEIGHT}'"):
        task.build_model(str(folder))
    with pytest.raises(LangsampError, match=f"lacks weight '{LAYER_WEIGHT}'"):
        build_model(str(folder), LANG2ID, SCRIPT2ID)


def test_cli_refuses_a_missing_layer_weight_with_one_line(tiny_model_dir: Path, tmp_path: Path, capfd) -> None:
    from langsamp_cli.cli import main

    folder = write_official(tiny_model_dir, tmp_path / "broken", drop=(TOKEN_TYPE, LAYER_WEIGHT))
    data = tmp_path / "data"
    data.mkdir()
    for lang in ("eng_Latn", "rus_Cyrl"):
        (data / f"{lang}.txt").write_text("\n".join(SAMPLE_TEXTS[lang]) + "\n", encoding="utf-8")
    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["similarity", "--model", str(folder), "--data-dir", str(data), "--languages", "eng_Latn,rus_Cyrl",
              "--n", "2", "--output-dir", str(tmp_path / "out"), "--no-cache"])
    assert exit_info.value.code == 2
    err = capfd.readouterr().err.strip()
    assert "Traceback" not in err and "lacks weight 'encoder.layer.3.attention.self.query.weight'" in err
    assert err.startswith("error:") and len(err.splitlines()) == 1


def test_input_side_tables_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    from langsamp_cli.encode import SentenceEncoder

    folder = write_official(tiny_model_dir, tmp_path / "input_side")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "decouple_at_input_embeddings": True}))
    with pytest.raises(LangsampError, match="decouple_at_input_embeddings is true"):
        SentenceEncoder(str(folder), layer=8, use_cache=False).encode(["a sentence"])
    with pytest.raises(LangsampError, match="decouple_at_input_embeddings is true"):
        build_model(str(folder), LANG2ID, SCRIPT2ID)


def test_a_plain_checkpoint_loads_without_adjustments_or_notes(tiny_model_dir: Path, capfd) -> None:
    from transformers import AutoModel

    from langsamp_cli.model import load_backbone

    capfd.readouterr()
    encoder, adjustments = load_backbone(str(tiny_model_dir), AutoModel, add_pooling_layer=False)
    assert adjustments == [] and capfd.readouterr() == ("", "")
    reference = AutoModel.from_pretrained(str(tiny_model_dir), add_pooling_layer=False)
    for (name, got), (_, want) in zip(encoder.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(got, want), name


def test_a_bare_encoder_continued_as_masked_lm_notes_the_new_head(tiny_model_dir: Path, tmp_path: Path,
                                                                   capfd, monkeypatch) -> None:
    from transformers import AutoModel

    monkeypatch.setattr(model_module, "_NOTES_SHOWN", set())
    bare = tmp_path / "bare"
    AutoModel.from_pretrained(str(tiny_model_dir)).save_pretrained(str(bare))
    for name in TOKENIZER_FILES:
        if (tiny_model_dir / name).is_file():
            shutil.copy(tiny_model_dir / name, bare / name)
    capfd.readouterr()
    build_model(str(bare), LANG2ID, SCRIPT2ID)
    err = capfd.readouterr().err
    assert "no masked-LM head in the checkpoint" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------- issue 13: --lang-map is not silently ignored
def test_lang_map_beside_a_checkpoint_with_its_own_map_is_noted(tiny_model_dir: Path, tmp_path: Path,
                                                              capfd, monkeypatch) -> None:
    from langsamp_cli.embedding_tables import load_embedding_tables

    monkeypatch.setattr(model_module, "_NOTES_SHOWN", set())
    ours = save_checkpoint(build_model(str(tiny_model_dir), LANG2ID, SCRIPT2ID), None, tmp_path / "ours")
    other_map = tmp_path / "other.json"
    other_map.write_text(json.dumps({"lang2id": {"deu": 0}, "script2id": {"Latn": 0}}))
    capfd.readouterr()
    tables = load_embedding_tables(ours, lang_map=str(other_map))
    assert tables.lang2id == LANG2ID  # the checkpoint's own map wins ...
    err = capfd.readouterr().err
    assert f"--lang-map {other_map} is not used" in err and "langsamp.json" in err  # ... and we say so
    assert len(err.strip().splitlines()) == 1
    load_embedding_tables(ours)
    assert capfd.readouterr().err == ""  # no --lang-map, no note


def test_pretraining_continues_an_official_checkpoint_and_resumes_exactly(official: Path, tmp_path: Path) -> None:
    from langsamp_cli.pretrain.config import build_config
    from langsamp_cli.pretrain.trainer import pretrain

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for lang_script in ("eng_Latn", "rus_Cyrl"):
        lines = [f"{s} {i}" for i in range(8) for s in SAMPLE_TEXTS[lang_script]]
        (corpus / f"{lang_script}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def config(out: Path):
        return build_config("demo", None, dict(corpus=str(corpus), model=str(official), output_dir=str(out),
                                               max_seq_len=32, batch_size=2, grad_accum=1, max_steps=4, save_every=2,
                                               keep_last=2, log_every=1, warmup_steps=1, lr=1e-3, seed=5))

    straight = pretrain(config(tmp_path / "straight"), progress=False)
    pretrain(config(tmp_path / "resumed"), progress=False, stop_after_steps=2)
    resumed = pretrain(config(tmp_path / "resumed"), progress=False, resume=True)
    a, b = (load_file(str(run.final_dir / "model.safetensors")) for run in (straight, resumed))
    assert not a[TOKEN_TYPE].any()  # frozen at zero, as the official model has no such table
    assert not torch.equal(a[LAYER_WEIGHT], load_file(str(official / "model.safetensors"))[LAYER_WEIGHT])  # trained
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_type_vocab_size_zero_loads_as_one_zero_row(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from langsamp_cli.checkpoint_info import TYPE_VOCAB_ONE
    from langsamp_cli.encode import SentenceEncoder
    from langsamp_cli.model import load_backbone
    from langsamp_cli.tasks.classification import ClassificationTask

    monkeypatch.setattr(model_module, "_NOTES_SHOWN", set())
    folder = write_official(tiny_model_dir, tmp_path / "no_types", type_vocab_size=0)
    assert model_adjustments(folder) == [TYPE_VOCAB_ONE, TOKEN_TYPE_ZEROS]
    assert load_backbone(str(folder))[1] == [TYPE_VOCAB_ONE, TOKEN_TYPE_ZEROS]
    expected, _ = official_sentence_vectors(folder, SENTENCES[:2], layer=8)
    assert np.abs(SentenceEncoder(str(folder), use_cache=False).encode(SENTENCES[:2]) - expected).max() < 1e-6
    task = ClassificationTask("sib200")
    task.labels = ["a", "b", "c"]
    classifier = task.build_model(str(folder))  # the label settings still reach the config
    assert classifier.config.num_labels == 3 and classifier.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert classifier.roberta.embeddings.token_type_embeddings.weight.shape[0] == 1


def test_a_weight_of_the_wrong_shape_is_named(official: Path) -> None:
    from langsamp_cli.model import load_backbone

    config = json.loads((official / "config.json").read_text())
    (official / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 100}))
    with pytest.raises(LangsampError, match="weight 'embeddings.position_embeddings.weight' has another shape"):
        load_backbone(str(official))
