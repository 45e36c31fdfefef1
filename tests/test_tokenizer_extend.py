"""`langsamp tokenizer extend`: base ids kept, deterministic, a fertility table that shows the gain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from helpers import run_cli
from langsamp_cli.demo_corpus import demo_corpus_dir
from langsamp_cli.errors import LangsampError
from langsamp_cli.tokenizer import train_unigram_tokenizer
from langsamp_cli.tokenizer_extend import RECORD_FILE, ExtendSettings, extend_tokenizer


@pytest.fixture(scope="module")
def english_heavy_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A base like XLM-R for a tail language: every script's characters, but pieces learned mostly on English."""
    root = Path(demo_corpus_dir())
    texts = root.joinpath("eng_Latn.txt").read_text(encoding="utf-8").splitlines()[:1500]
    for path in sorted(root.glob("*.txt")):
        if path.stem != "eng_Latn":
            texts += path.read_text(encoding="utf-8").splitlines()[-25:]
    out = tmp_path_factory.mktemp("base")
    train_unigram_tokenizer(texts, 700, out)
    return out


def settings(base: Path, out: Path, **overrides) -> ExtendSettings:
    return ExtendSettings(**{**dict(base=str(base), add=1200, output_dir=str(out), sample_lines=6000,
                                    heldout_lines=60), **overrides})


@pytest.fixture(scope="module")
def extension(english_heavy_base: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ext") / "tok"
    return extend_tokenizer(settings(english_heavy_base, out)), out


def test_every_base_piece_keeps_its_id_and_new_pieces_follow(english_heavy_base, extension) -> None:
    result, out = extension
    base, extended = AutoTokenizer.from_pretrained(str(english_heavy_base)), AutoTokenizer.from_pretrained(str(out))
    base_vocab, new_vocab = base.get_vocab(), extended.get_vocab()
    assert all(new_vocab[piece] == index for piece, index in base_vocab.items())
    assert len(extended) == len(base) + result.added and result.added == 1200
    assert sorted(new_vocab.values()) == list(range(len(extended)))
    assert extended.mask_token_id == base.mask_token_id and extended.all_special_tokens == base.all_special_tokens
    added = [piece for piece, index in new_vocab.items() if index >= len(base)]
    assert not set(added) & set(base_vocab)
    record = json.loads((out / RECORD_FILE).read_text(encoding="utf-8"))
    assert record["added_pieces"] == 1200 and sum(record["new_pieces_per_script"].values()) == 1200


def test_two_runs_are_byte_identical(english_heavy_base, extension, tmp_path) -> None:
    _, first = extension
    extend_tokenizer(settings(english_heavy_base, tmp_path / "again"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (first / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_fertility_falls_most_where_the_base_was_worst(extension) -> None:
    result, _ = extension
    rows = {row.lang_script: row for row in result.fertility}
    assert len(rows) == 16 and result.fertility[0].base_fertility >= result.fertility[-1].base_fertility
    worst = sorted((row for row in result.fertility if row.base_unk_rate < 0.05),
                   key=lambda row: -row.base_fertility)[:5]
    assert all(row.extended_fertility < 0.9 * row.base_fertility for row in worst), [
        (r.lang_script, r.base_fertility, r.extended_fertility) for r in worst]
    english = rows["eng_Latn"]
    assert english.extended_fertility <= english.base_fertility
    # the counts are the tokenizers' own on the held-out lines
    assert all(row.words > 0 and row.base_tokens >= row.base_unk for row in result.fertility)


def test_cli_prints_the_table_and_refuses_bad_input(english_heavy_base, tmp_path, capsys) -> None:
    out = tmp_path / "tok"
    assert run_cli(["tokenizer", "extend", "--base", str(english_heavy_base), "--add", "200", "--output-dir",
                    str(out), "--sample-lines", "3000", "--languages", "rus_Cyrl,eng_Latn"]) == 0
    printed = capsys.readouterr().out
    assert "rus_Cyrl" in printed and "base tok/word" in printed and "same ids" in printed
    assert "new pieces per script: Cyrl" in printed or "Latn" in printed
    assert run_cli(["tokenizer", "extend", "--base", str(english_heavy_base), "--add", "200", "--output-dir",
                    str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert run_cli(["tokenizer", "extend", "--base", str(english_heavy_base), "--output-dir", str(tmp_path / "x")]) == 2
    assert "--add is required" in capsys.readouterr().err
    assert run_cli(["tokenizer", "extend", "--base", str(tmp_path / "nope"), "--add", "5", "--output-dir",
                    str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "--base" in err and len(err.strip().splitlines()) == 1
    assert run_cli(["tokenizer", "extend", "--base", str(english_heavy_base), "--add", "500", "--train-vocab-size",
                    "300", "--output-dir", str(tmp_path / "z")]) == 2
    assert "--train-vocab-size 300 is smaller than --add 500" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists() and not (tmp_path / "z").exists()


def test_a_tokenizer_that_is_not_unigram_is_refused(tmp_path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"<unk>": 0, "a": 1}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>").save_pretrained(str(tmp_path / "wl"))
    with pytest.raises(LangsampError, match="WordLevel tokenizer; only SentencePiece Unigram"):
        extend_tokenizer(settings(tmp_path / "wl", tmp_path / "out"))
