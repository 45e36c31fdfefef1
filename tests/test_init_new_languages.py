"""--init-new-languages: rows the initial checkpoint lacks start from donors / same-script means; seen rows copied."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from langsamp_cli.errors import LangsampError
from langsamp_cli.embedding_tables import load_embedding_tables
from langsamp_cli.model import build_model, save_checkpoint
from langsamp_cli.pretrain.config import build_config
from langsamp_cli.pretrain.corpus import scan_corpus
from langsamp_cli.pretrain.model_setup import language_maps, prepare_model
from langsamp_cli.pretrain.trainer import pretrain
from helpers import SAMPLE_TEXTS

SOURCE_LANGS = {"deu": 0, "eng": 1, "fra": 2, "rus": 3, "spa": 4}
SOURCE_SCRIPTS = {"Cyrl": 0, "Latn": 1}
EXTRA_TEXTS = {
    "por_Latn": ["No princípio era o verbo, e o verbo estava com o povo.",
                 "A raposa castanha salta sobre o cão preguiçoso perto do rio."],
    "ukr_Cyrl": ["На початку було слово, і слово було з людьми.",
                 "Швидка руда лисиця стрибає через лінивого пса біля річки."],
}


@pytest.fixture(scope="module")
def source_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A small checkpoint with tables for deu, eng, fra, rus, spa (scripts Cyrl, Latn)."""
    from transformers import AutoTokenizer, XLMRobertaConfig

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=66, type_vocab_size=1,
                              pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = build_model("x", SOURCE_LANGS, SOURCE_SCRIPTS, variant="both", from_scratch_config=config)
    return save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("source") / "ckpt")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seen eng_Latn, spa_Latn; new por_Latn, ukr_Cyrl (a seen script) and ell_Grek (a new script)."""
    root = tmp_path_factory.mktemp("corpus")
    texts = {**{k: SAMPLE_TEXTS[k] for k in ("eng_Latn", "spa_Latn", "ell_Grek")}, **EXTRA_TEXTS}
    for lang_script, sentences in texts.items():
        lines = [f"{s} {i}" for i in range(12) for s in sentences]
        (root / f"{lang_script}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def make_config(corpus_dir: Path, source: Path, out: Path, **overrides):
    settings = dict(corpus=str(corpus_dir), model=str(source), from_scratch=False, output_dir=str(out),
                    max_seq_len=32, batch_size=2, grad_accum=1, max_steps=1, save_every=1, log_every=1, seed=3)
    return build_config("demo", None, {**settings, **overrides})


def initialised(config) -> tuple[torch.nn.Module, list[str]]:
    """The model continued pretraining starts from (before any step), and the lines printed about it."""
    from transformers import AutoTokenizer

    corpus = scan_corpus(config.corpus, config.languages, eval_lines=0)
    lang2id, script2id = language_maps(config, corpus, None)
    printed: list[str] = []
    model = prepare_model(config, AutoTokenizer.from_pretrained(config.model), lang2id, script2id, None,
                          corpus=corpus, say=printed.append)
    return model, printed


def row(model, table: str, key: str) -> np.ndarray:
    embedding, ids = ((model.lang_embeddings, model.lang2id) if table == "lang"
                      else (model.script_embeddings, model.script2id))
    return embedding.weight[ids[key]].detach().double().numpy()


def mean_of(source, table: str, keys: list[str]) -> np.ndarray:
    values, ids = (source.lang, source.lang2id) if table == "lang" else (source.script, source.script2id)
    return np.mean([values[ids[k]].astype(np.float64) for k in keys], axis=0)


def assert_seen_rows_copied(model, source) -> None:
    for code, i in source.lang2id.items():
        assert torch.equal(model.lang_embeddings.weight[model.lang2id[code]], torch.from_numpy(source.lang[i]))
    for code, i in source.script2id.items():
        assert torch.equal(model.script_embeddings.weight[model.script2id[code]], torch.from_numpy(source.script[i]))


def test_mean_uses_same_script_languages_and_keeps_seen_rows(corpus_dir, source_checkpoint, tmp_path) -> None:
    source = load_embedding_tables(source_checkpoint)
    model, printed = initialised(make_config(corpus_dir, source_checkpoint, tmp_path / "run",
                                             init_new_languages="mean"))
    # the checkpoint's ids are kept; new languages/scripts are appended in sorted order
    assert model.lang2id == {**SOURCE_LANGS, "ell": 5, "por": 6, "ukr": 7}
    assert model.script2id == {**SOURCE_SCRIPTS, "Grek": 2}
    assert_seen_rows_copied(model, source)
    record = model.initialised_rows
    assert record["lang"]["por"] == {"method": "mean", "from": ["deu", "eng", "fra", "spa"]}
    assert record["lang"]["ukr"] == {"method": "mean", "from": ["rus"]}
    assert record["lang"]["ell"]["from"] == sorted(SOURCE_LANGS) and "Grek" in record["lang"]["ell"]["note"]
    assert record["script"] == {"Grek": {"method": "mean", "from": ["Cyrl", "Latn"]}}
    np.testing.assert_allclose(row(model, "lang", "por"), mean_of(source, "lang", ["deu", "eng", "fra", "spa"]),
                               atol=1e-6)
    np.testing.assert_allclose(row(model, "lang", "ukr"), source.lang[SOURCE_LANGS["rus"]], atol=1e-6)
    np.testing.assert_allclose(row(model, "lang", "ell"), mean_of(source, "lang", sorted(SOURCE_LANGS)), atol=1e-6)
    np.testing.assert_allclose(row(model, "script", "Grek"), mean_of(source, "script", ["Cyrl", "Latn"]), atol=1e-6)
    assert sum(line.startswith("new lang row ") for line in printed) == 3
    assert any(line.startswith("new script row Grek: mean of Cyrl, Latn") for line in printed)


def test_donor_takes_the_uriel_closest_languages(corpus_dir, source_checkpoint, tmp_path) -> None:
    from langsamp_cli.analysis import uriel

    if not uriel.uriel_available():
        pytest.skip("lang2vec (URIEL data) not installed")
    source = load_embedding_tables(source_checkpoint)
    model, printed = initialised(make_config(corpus_dir, source_checkpoint, tmp_path / "run",
                                             init_new_languages="donor"))
    assert_seen_rows_copied(model, source)
    # independent ranking: URIEL similarity of por to each checkpoint language, best three
    similarity = {k: uriel.uriel_similarity("por_Latn", f"{k}_{'Cyrl' if k == 'rus' else 'Latn'}")
                  for k in SOURCE_LANGS}
    expected = sorted(similarity, key=lambda k: (-similarity[k], k))[:3]
    rule = model.initialised_rows["lang"]["por"]
    assert rule["method"] == "donor" and rule["from"] == expected
    np.testing.assert_allclose(row(model, "lang", "por"), mean_of(source, "lang", expected), atol=1e-6)
    assert any(line.startswith(f"new lang row por: donor of {', '.join(expected)}") for line in printed)


def test_donor_without_uriel_falls_back_to_mean_with_a_note(corpus_dir, source_checkpoint, tmp_path,
                                                            monkeypatch) -> None:
    from langsamp_cli.analysis import uriel

    def missing(*args, **kwargs):
        raise LangsampError("URIEL typology needs the lang2vec data files, which are not installed; run x")

    monkeypatch.setattr(uriel, "uriel_has", missing)
    source = load_embedding_tables(source_checkpoint)
    model, printed = initialised(make_config(corpus_dir, source_checkpoint, tmp_path / "run",
                                             init_new_languages="donor"))
    rule = model.initialised_rows["lang"]["por"]
    assert rule["method"] == "mean" and rule["from"] == ["deu", "eng", "fra", "spa"]
    assert "lang2vec" in rule["note"] and "used the mean" in rule["note"]
    np.testing.assert_allclose(row(model, "lang", "por"), mean_of(source, "lang", rule["from"]), atol=1e-6)
    assert any("lang2vec" in line for line in printed if line.startswith("new lang row por"))


def test_random_default_adds_random_rows_and_says_so(corpus_dir, source_checkpoint, tmp_path) -> None:
    source = load_embedding_tables(source_checkpoint)
    model, printed = initialised(make_config(corpus_dir, source_checkpoint, tmp_path / "run"))
    for lang in ("ell", "por", "ukr"):
        assert model.initialised_rows["lang"][lang] == {"method": "random", "from": []}
        assert any(line.startswith(f"new lang row {lang}: random") for line in printed)
    assert_seen_rows_copied(model, source)
    with pytest.raises(LangsampError, match="--init-new-languages: 'copy' is not one of random, donor, mean"):
        make_config(corpus_dir, source_checkpoint, tmp_path / "run", init_new_languages="copy")


def test_every_saved_checkpoint_records_the_initialised_rows(corpus_dir, source_checkpoint, tmp_path) -> None:
    result = pretrain(make_config(corpus_dir, source_checkpoint, tmp_path / "run", init_new_languages="mean"),
                      progress=False)
    for directory in (result.final_dir, tmp_path / "run" / "checkpoints" / "step-1"):
        meta = json.loads((directory / "langsamp.json").read_text(encoding="utf-8"))
        rows = meta["initialised_rows"]
        assert rows["method"] == "mean" and set(rows["lang"]) == {"ell", "por", "ukr"}
        assert rows["lang"]["ukr"] == {"method": "mean", "from": ["rus"]} and set(rows["script"]) == {"Grek"}
        assert meta["lang2id"]["por"] == 6


def test_official_checkpoint_rows_new_to_it_follow_the_rule(tiny_model_dir, tmp_path) -> None:
    """The official format (no langsamp.json): the corpus map is used, shared rows copied, new rows averaged."""
    from helpers import LANG2ID, SCRIPT2ID, write_official

    official = write_official(tiny_model_dir, tmp_path / "official")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for lang_script in ("eng_Latn", "spa_Latn", "ell_Grek"):
        lines = [f"{s} {i}" for i in range(8) for s in SAMPLE_TEXTS[lang_script]]
        (corpus / f"{lang_script}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = load_embedding_tables(official)
    model, _ = initialised(make_config(corpus, official, tmp_path / "run", init_new_languages="mean"))
    assert model.lang2id == {"ell": 0, "eng": 1, "spa": 2} and model.script2id == {"Grek": 0, "Latn": 1}
    assert torch.equal(model.lang_embeddings.weight[1], torch.from_numpy(source.lang[LANG2ID["eng"]]))
    assert torch.equal(model.script_embeddings.weight[1], torch.from_numpy(source.script[SCRIPT2ID["Latn"]]))
    rows = model.initialised_rows
    assert rows["lang"]["spa"] == {"method": "mean", "from": ["eng"]}
    np.testing.assert_allclose(row(model, "lang", "spa"), source.lang[LANG2ID["eng"]], atol=1e-6)
    np.testing.assert_allclose(row(model, "lang", "ell"), mean_of(source, "lang", sorted(LANG2ID)), atol=1e-6)
    np.testing.assert_allclose(row(model, "script", "Grek"), mean_of(source, "script", sorted(SCRIPT2ID)),
                               atol=1e-6)
