"""Hostile and broken inputs through the real CLI: each is exit code 2, one line of error, no traceback,
and nothing written anywhere (not under --output-dir, not beside or above it, not in the cache)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from langsamp_cli.cli import main
from helpers import ENGLISH_WORDS, OTHER_WORDS, sentences, write_lines

Row = Callable[[Path, Path], tuple[list[str], str]]  # (inputs folder, tiny model) -> (argv, expected text)


def _tatoeba(inputs: Path) -> Path:
    data = inputs / "tatoeba"
    data.mkdir(exist_ok=True)
    write_lines(data / "tatoeba.deu_Latn-eng_Latn.deu_Latn", sentences(OTHER_WORDS["deu_Latn"], 12, seed=1))
    write_lines(data / "tatoeba.deu_Latn-eng_Latn.eng_Latn", sentences(ENGLISH_WORDS, 12, seed=2))
    return data


def _file(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _sr_t(inputs: Path, model: Path, *extra: str) -> list[str]:
    return ["eval", "sr-t", "--model", str(model), "--data-dir", str(_tatoeba(inputs)), *extra]


def _ner_data(inputs: Path, bad_train: bool) -> Path:
    good = "John\tB-PER\nlives\tO\nhere\tO\n\nMary\tB-PER\nleft\tO\n"
    train = "John\tB-PER\nlives\tO\nParis\tX-LOC\n\nMary\tB-PER\n" if bad_train else good
    for lang in ("eng_Latn", "deu_Latn"):
        for split in ("train", "dev", "test"):
            _file(inputs / "ner" / lang / split, train if (lang, split) == ("eng_Latn", "train") else good)
    return inputs / "ner"


def _corpus(inputs: Path) -> Path:
    return _file(inputs / "corpus" / "eng_Latn.txt", "".join(f"an english line {i}\n" for i in range(50))).parent


def _pretrain(inputs: Path, *extra: str) -> list[str]:
    return ["pretrain", "--preset", "demo", "--max-steps", "1", *extra]


# ---------------------------------------------------------------------------- the table
def task_escapes_output(inputs: Path, model: Path):
    config = _file(inputs / "escape.yaml", "include: sr-t\ntask: ../../escaped_task\n")
    return _sr_t(inputs, model, "--config", str(config)), "key 'task' is '../../escaped_task'; a task name is a folder"


def task_absolute_path(inputs: Path, model: Path):
    config = _file(inputs / "abs.yaml", f"include: sr-t\ntask: {inputs / 'abs_task'}\n")
    return _sr_t(inputs, model, "--config", str(config)), "key 'task' is '/"


def transfer_task_escapes(inputs: Path, model: Path):
    config = _file(inputs / "ner-escape.yaml", "include: ner\ntask: ../ner-elsewhere\n")
    return (["eval", "ner", "--model", str(model), "--data-dir", str(_ner_data(inputs, False)), "--config",
             str(config)], "key 'task' is '../ner-elsewhere'")


def languages_file_not_utf8_eval(inputs: Path, model: Path):
    listing = _file(inputs / "langs.txt", b"deu_Latn\n# caf\xe9\n")
    return _sr_t(inputs, model, "--languages", str(listing)), "langs.txt:2: not UTF-8 text (byte offset 14)"


def languages_file_not_utf8_pretrain(inputs: Path, model: Path):
    listing = _file(inputs / "langs.txt", b"eng_Latn\n\xff\xfe\n")
    return _pretrain(inputs, "--corpus", str(_corpus(inputs)), "--languages", str(listing)), \
        "langs.txt:2: not UTF-8 text"


def unknown_retrieval_key(inputs: Path, model: Path):
    config = _file(inputs / "typo.yaml", "include: sr-t\npairz: 10\n")
    return _sr_t(inputs, model, "--config", str(config)), "unknown key 'pairz' for a retrieval task; did you mean 'pairs'"


def unknown_classification_key(inputs: Path, model: Path):
    config = _file(inputs / "frob.yaml", "frobnicate: 1\n")
    return (["eval", "sib200", "--model", str(model), "--data-dir", str(inputs), "--config", str(config)],
            "unknown key 'frobnicate' for a classification task")


def languages_file_only_comments(inputs: Path, model: Path):
    listing = _file(inputs / "langs.txt", "# nothing here yet\n\n   # still nothing\n")
    return _sr_t(inputs, model, "--languages", str(listing)), "langs.txt: no language ids in the file"


def languages_empty_eval(inputs: Path, model: Path):
    return _sr_t(inputs, model, "--languages", ""), "--languages '': no language ids given"


def languages_empty_pretrain(inputs: Path, model: Path):
    return _pretrain(inputs, "--corpus", str(_corpus(inputs)), "--languages", ""), "--languages '': no language ids"


def ner_tag_line(inputs: Path, model: Path):
    return (["eval", "ner", "--model", str(model), "--data-dir", str(_ner_data(inputs, True)), "--epochs", "1",
             "--seeds", "1"], "eng_Latn/train:3: tag 'X-LOC' is neither O nor B-/I-/E-/S-TYPE")


def emoji_and_markup_stay_literal(inputs: Path, model: Path):
    return _sr_t(inputs, model, "--languages", "deu_Latn,:x:[bold]"), ":x:[bold]"


def corpus_symlink_loop(inputs: Path, model: Path):
    corpus = _corpus(inputs)
    (corpus / "deu_Latn").symlink_to("../", target_is_directory=True)
    return _pretrain(inputs, "--corpus", str(corpus)), "a folder that contains the corpus itself"


def corpus_only_binary(inputs: Path, model: Path):
    corpus = inputs / "binary-corpus"
    _file(corpus / "deu_Latn.txt", bytes(range(256)) * 50)
    return _pretrain(inputs, "--corpus", str(corpus)), "no usable text in the corpus (deu_Latn: no usable file (not UTF-8"


def _pretrain_yaml(text: str, expected: str) -> Row:
    def row(inputs: Path, model: Path):
        config = _file(inputs / "run.yaml", text)
        return _pretrain(inputs, "--corpus", str(_corpus(inputs)), "--config", str(config)), expected
    row.__name__ = f"pretrain_yaml_{text.split(':')[0]}"
    return row


def tokenizer_only_special_tokens(inputs: Path, model: Path):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = Tokenizer(WordLevel({token: i for i, token in enumerate(specials)}, unk_token="<unk>"))
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>", mask_token="<mask>").save_pretrained(inputs / "only_special")
    XLMRobertaConfig(vocab_size=10, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=66, type_vocab_size=1).save_pretrained(inputs / "arch")
    return (["pretrain", "--corpus", str(_corpus(inputs)), "--model", str(inputs / "arch"), "--from-scratch",
             "--tokenizer", str(inputs / "only_special"), "--max-seq-len", "32", "--batch-size", "2", "--max-steps", "2",
             "--no-progress"], "no ordinary (non-special) tokens")


ROWS: list[Row] = [
    task_escapes_output, task_absolute_path, transfer_task_escapes,
    languages_file_not_utf8_eval, languages_file_not_utf8_pretrain,
    unknown_retrieval_key, unknown_classification_key,
    languages_file_only_comments, languages_empty_eval, languages_empty_pretrain,
    ner_tag_line, emoji_and_markup_stay_literal,
    corpus_symlink_loop, corpus_only_binary,
    _pretrain_yaml('batch_size: "two"\n', "batch_size: 'two' is not a whole number"),
    _pretrain_yaml("lr: [1, 2]\n", "lr: [1, 2] is not a number"),
    _pretrain_yaml('alpha: "x"\n', "alpha: 'x' is not a number"),
    tokenizer_only_special_tokens,
]


def _snapshot(root: Path) -> set[str]:
    """Every file and folder under ``root``."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("row", ROWS, ids=[row.__name__ for row in ROWS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(row: Row, tiny_model_dir: Path, tmp_path: Path,
                                                         monkeypatch, capsys) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args, expected = row(inputs, tiny_model_dir)
    out = tmp_path / "runs" / "deep" / "out"  # '../..' from here would land inside tmp_path, where it is seen
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(SystemExit) as info:
        main([*args, "--output-dir", str(out)])
    captured = capsys.readouterr()
    lines = [line for line in (captured.err + captured.out).splitlines() if line.strip()]
    assert info.value.code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and expected in lines[0], lines
    assert "Traceback" not in captured.err
    assert _snapshot(tmp_path) == before, "files were left behind"
    assert not out.exists() or not any(out.iterdir()), "the output folder was written to"
