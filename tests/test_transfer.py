"""Zero-shot transfer: encoding, seeds, resume, source language, bad input, and the CLI per task.

Datasets are generated in tmp_path from the conftest sample sentences; the model is the tiny one.
End-to-end runs on the real shared data are marked slow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import SAMPLE_TEXTS, hand_macro_f1, run_cli_captured
from langsamp_cli.cli import main
from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks.tagging import TaggingTask
from langsamp_cli.tasks.transfer import parse_seeds

QUICK = ["--max-train-samples", "16", "--epochs", "1", "--batch-size", "4", "--grad-accum", "1", "--seeds", "1"]
TAXI_LABELS = ["Description", "Faith", "Grace", "Recommendation", "Sin", "Violence"]
SIB_LABELS = ["entertainment", "geography", "health", "politics", "science/technology", "sports", "travel"]


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    """Run ``langsamp`` in-process; returns (exit code, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


def units(out: Path, task: str, seed: int = 1) -> dict[str, dict]:
    """Unit files of one seed by language, with the record's ``extra`` lifted to the top level."""
    found = {}
    for path in sorted(out.glob(f"{task}/*/seed{seed}/units/*.json")):
        unit = json.loads(path.read_text(encoding="utf-8"))
        found[unit["lang_script"]] = {**unit, **unit.get("extra", {})}
    return found


def _texts(lang: str, n: int) -> list[str]:
    base = SAMPLE_TEXTS[lang]
    return [f"{base[i % len(base)]} {i}" for i in range(n)]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- generated datasets
def make_taxi(root: Path) -> Path:
    for split, n, start in (("train", 24, 40001001), ("dev", 8, 41001001), ("test", 10, 43001001)):
        rows = [f"{start + i}\t{TAXI_LABELS[i % 6]}\t{t}" for i, t in enumerate(_texts("eng_Latn", n))]
        _write(root / "eng_data" / f"eng_{split}.tsv", "\n".join(rows) + "\n")
    spanish = [f"{43001001 + i}\t{TAXI_LABELS[i % 6]}\t{t}" for i, t in enumerate(_texts("spa_Latn", 10))]
    _write(root / "spa_Latn_test.tsv", "\n".join(spanish) + "\n")
    return root


def make_sib(root: Path, train_langs=("eng_Latn", "hin_Deva"), test_langs=("eng_Latn", "hin_Deva", "rus_Cyrl")) -> Path:
    def table(lang: str, n: int) -> str:
        rows = [f"{i}\t{SIB_LABELS[i % 7]}\t{t}" for i, t in enumerate(_texts(lang, n))]
        return "index_id\tcategory\ttext\n" + "\n".join(rows) + "\n"

    for lang in set(train_langs) | set(test_langs):
        if lang in train_langs:
            _write(root / lang / "train.tsv", table(lang, 21))
        _write(root / lang / "dev.tsv", table(lang, 7))
        if lang in test_langs:
            _write(root / lang / "test.tsv", table(lang, 14))
    return root


def _iob2(lang: str, n: int) -> str:
    blocks = []
    for s, text in enumerate(_texts(lang, n)):
        words = text.split()
        tags = ["B-PER" if i == 0 else "I-PER" if i == 1 else "B-LOC" if i == 3 else "O" for i in range(len(words))]
        lines = [f"# sent_id = {s}"] + [f"{i + 1}\t{w}\t{t}\t-\t-" for i, (w, t) in enumerate(zip(words, tags))]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def make_uner(root: Path) -> Path:
    for split, n in (("train", 20), ("dev", 6), ("test", 6)):
        _write(root / "UNER_English-EWT" / f"en_ewt-ud-{split}.iob2", _iob2("eng_Latn", n))
    _write(root / "UNER_Russian-PUD" / "ru_pud-ud-test.iob2", _iob2("rus_Cyrl", 6))
    return root


def _conllu(lang: str, n: int) -> str:
    tags = ["DET", "ADJ", "NOUN", "VERB", "ADP", "PRON", "PUNCT"]
    blocks = []
    for text in _texts(lang, n):
        rows = [f"{i + 1}\t{w}\t_\t{tags[i % len(tags)]}\t_\t_\t0\tdep\t_\t_" for i, w in enumerate(text.split())]
        blocks.append("# text = " + text + "\n" + "\n".join(rows))
    return "\n\n".join(blocks) + "\n"


def make_ud(root: Path) -> Path:
    for split, n in (("train", 20), ("dev", 6), ("test", 6)):
        _write(root / "UD_English-EWT" / f"en_ewt-ud-{split}.conllu", _conllu("eng_Latn", n))
    _write(root / "UD_Greek-GDT" / "el_gdt-ud-test.conllu", _conllu("ell_Grek", 6))
    return root


# ---------------------------------------------------------------------------- units
def test_parse_seeds() -> None:
    assert parse_seeds("1,2,3") == [1, 2, 3]
    assert parse_seeds("3-5,1") == [1, 3, 4, 5]
    assert parse_seeds([2, 1]) == [1, 2]
    assert parse_seeds(None) == [1]
    with pytest.raises(LangsampError, match="--seeds"):
        parse_seeds("one")


def test_first_subtoken_positions_and_splitting(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    words = ["In", "the", "beginning", "was", "the", "word"]
    pieces = [len(tokenizer(w, add_special_tokens=False)["input_ids"]) for w in words]
    [encoded] = TaggingTask("pos", max_length=64).encode(tokenizer, words)
    expected, position = [], 1
    for n in pieces:
        expected.append(position)
        position += n
    assert encoded.first_pieces == expected
    sep = tokenizer.sep_token_id
    assert encoded.input_ids[0] == tokenizer.cls_token_id and encoded.input_ids[-2:] == [sep, sep]
    assert len(encoded.input_ids) == sum(pieces) + 3 and (encoded.start, encoded.stop) == (0, 6)
    first, *rest = TaggingTask("pos", max_length=3 + pieces[0] + pieces[1]).encode(tokenizer, words)
    assert first.first_pieces == expected[:2] and (first.start, first.stop) == (0, 2)
    assert len(first.input_ids) == 3 + pieces[0] + pieces[1]
    assert rest and rest[0].start == 2 and rest[-1].stop == 6  # the rest is split off, not dropped


def test_restrict_languages_serves_bare_codes_in_the_data_script() -> None:
    from langsamp_cli.tasks import requested_languages
    from langsamp_cli.tasks.transfer import TransferData, restrict_languages

    data = TransferData("sib200", "eng_Latn", train=list, dev=list, source_files=[],
                        targets={"uzb_Cyrl": list, "zho_Hans": list, "eng_Latn": list},
                        problems={"srp_Latn": "no test split"})
    requested, bare = requested_languages("uzb,zho,srp,kaz_Latn")
    restricted = restrict_languages(data, requested, "data", bare)
    assert sorted(restricted.targets) == ["uzb_Cyrl", "zho_Hans"]  # bare codes: units named by the data's ids
    assert restricted.problems == {"srp_Latn": "no test split", "kaz_Latn": "data: no sib200 test data for kaz_Latn"}
    explicit = TransferData("sib200", "eng_Latn", train=list, dev=list, source_files=[], targets={"zho_Hans": list})
    requested, bare = requested_languages("zho_Hani")
    assert list(restrict_languages(explicit, requested, "data", bare).targets) == ["zho_Hani"]  # the Glot500 id


# ---------------------------------------------------------------------------- CLI end to end (generated data)
# Fine-tunes dominate this file's time: a run that several tests read is made once per module.
def kept_model(out: Path, task: str, seed: int = 1) -> Path:
    [folder] = out.glob(f"{task}/*/seed{seed}/model")
    return folder


@pytest.fixture(scope="module")
def taxi_run(tmp_path_factory, tiny_model_dir: Path) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("taxi_run")
    data = make_taxi(root / "taxi")
    bible = _write(root / "bibles" / "rus_Cyrl.demo.tsv",
                   "".join(f"{43001001 + i}\t{t}\n" for i, t in enumerate(_texts("rus_Cyrl", 7))))
    out = root / "out"
    code, err = run_cli_captured(["eval", "taxi1500", "--model", tiny_model_dir, "--data-dir", data, "--bible", bible,
                              "--output-dir", out, *QUICK])
    assert code == 0, err
    return out, err


def test_taxi1500_cli_with_bible_target(taxi_run) -> None:
    out, err = taxi_run
    found = units(out, "taxi1500")
    assert set(found) == {"eng_Latn", "spa_Latn", "rus_Cyrl"}
    russian = found["rus_Cyrl"]
    assert russian["n"] == 7
    assert russian["bible_join"]["covered"] == 7 and russian["bible_join"]["test_verses"] == 10
    assert "covers 7/10 test verses" in err
    assert found["eng_Latn"]["training"]["train_n"] == 16


def test_taxi1500_scores_equal_the_kept_model_scored_by_hand(taxi_run, tiny_model_dir: Path) -> None:
    """Oracle: the kept fine-tuned model, one unpadded sentence at a time, macro-F1 and accuracy by hand."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out, _ = taxi_run
    model = AutoModelForSequenceClassification.from_pretrained(str(kept_model(out, "taxi1500"))).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    texts = _texts("spa_Latn", 10)
    gold = [TAXI_LABELS[i % 6] for i in range(10)]
    with torch.no_grad():
        predicted = [model.config.id2label[int(model(**tokenizer(t, return_tensors="pt")).logits.argmax())]
                     for t in texts]
    recorded = units(out, "taxi1500")["spa_Latn"]["metrics"]
    assert recorded["accuracy"] == pytest.approx(sum(g == p for g, p in zip(gold, predicted)) / 10)
    assert recorded["macro_f1"] == pytest.approx(hand_macro_f1(gold, predicted))


@pytest.fixture(scope="module")
def sib_data(tmp_path_factory) -> Path:
    return make_sib(tmp_path_factory.mktemp("sib_data") / "sib")


@pytest.fixture(scope="module")
def sib_two_seeds(tmp_path_factory, sib_data: Path, tiny_model_dir: Path) -> Path:
    """Seeds 1 and 2 on eng_Latn and hin_Deva; read-only for the tests (copy it before a rerun)."""
    out = tmp_path_factory.mktemp("sib_two_seeds") / "out"
    code, err = run_cli_captured(["eval", "sib200", "--model", tiny_model_dir, "--data-dir", sib_data, "--output-dir", out,
                              *QUICK, "--seeds", "1,2", "--languages", "eng_Latn,hin_Deva"])
    assert code == 0, err
    return out


def test_sib200_each_seed_fine_tunes_its_own_model(sib_two_seeds: Path) -> None:
    assert set(units(sib_two_seeds, "sib200", 1)) == set(units(sib_two_seeds, "sib200", 2)) == {"eng_Latn", "hin_Deva"}
    histories = [units(sib_two_seeds, "sib200", seed)["eng_Latn"]["training"]["history"] for seed in (1, 2)]
    assert histories[0] != histories[1]


def test_sib200_resume_and_model_reuse(sib_two_seeds: Path, sib_data: Path, tiny_model_dir: Path, tmp_path: Path,
                                       capsys) -> None:
    out = tmp_path / "out"
    shutil.copytree(sib_two_seeds, out)
    first = units(out, "sib200", 1)["eng_Latn"]["metrics"]
    base = ["eval", "sib200", "--model", tiny_model_dir, "--data-dir", sib_data, "--output-dir", out, *QUICK]
    code, err = run_cli([*base, "--seeds", "1,2", "--languages", "eng_Latn,hin_Deva"], capsys)
    assert code == 0 and err.count("fine-tuning skipped") == 2 and "fine-tuning on" not in err

    code, err = run_cli([*base, "--seeds", "1"], capsys)  # a new language: the kept model is reused
    assert code == 0, err
    assert "reusing the fine-tuned model" in err and "fine-tuning on" not in err
    assert set(units(out, "sib200", 1)) == {"eng_Latn", "hin_Deva", "rus_Cyrl"}
    assert units(out, "sib200", 1)["eng_Latn"]["metrics"] == first  # untouched on rerun


def test_same_seed_gives_same_scores(sib_two_seeds: Path, sib_data: Path, tiny_model_dir: Path, tmp_path: Path,
                                     capsys) -> None:
    out = tmp_path / "again"
    code, err = run_cli(["eval", "sib200", "--model", tiny_model_dir, "--data-dir", sib_data, "--output-dir", out,
                         *QUICK, "--seeds", "1", "--languages", "eng_Latn,hin_Deva"], capsys)
    assert code == 0, err
    again, before = units(out, "sib200", 1), units(sib_two_seeds, "sib200", 1)
    assert {lang: u["metrics"] for lang, u in again.items()} == {lang: u["metrics"] for lang, u in before.items()}
    assert again["eng_Latn"]["training"]["history"] == before["eng_Latn"]["training"]["history"]


@pytest.fixture(scope="module")
def sib_odd_run(tmp_path_factory, tiny_model_dir: Path) -> tuple[Path, str]:
    """One fine-tune on Hindi (--source-lang) scored on targets with a broken file and an unknown label."""
    root = tmp_path_factory.mktemp("sib_odd")
    data = make_sib(root / "sib", test_langs=("eng_Latn", "hin_Deva", "rus_Cyrl"))
    broken = data / "rus_Cyrl" / "test.tsv"
    broken.write_text(broken.read_text(encoding="utf-8") + "99\tonly-two-fields\n", encoding="utf-8")
    hindi = data / "hin_Deva" / "test.tsv"
    hindi.write_text(hindi.read_text(encoding="utf-8") + "98\tcooking\tकुछ\n", encoding="utf-8")
    out = root / "out"
    code, err = run_cli_captured(["eval", "sib200", "--model", tiny_model_dir, "--data-dir", data, "--output-dir", out,
                              "--source-lang", "hin_Deva", *QUICK])
    assert code == 0, err
    return out, err


def test_source_language_option_and_its_error(sib_odd_run, sib_data: Path, tiny_model_dir: Path, tmp_path: Path,
                                              capsys) -> None:
    out, _ = sib_odd_run
    found = units(out, "sib200")
    assert {u["training"]["source_lang"] for u in found.values() if "training" in u} == {"hin_Deva"}
    assert found["eng_Latn"]["training"]["train_source"].endswith("hin_Deva/train.tsv")
    code, err = run_cli(["eval", "sib200", "--model", tiny_model_dir, "--data-dir", sib_data, "--output-dir",
                         tmp_path / "o", "--source-lang", "rus_Cyrl", *QUICK], capsys)
    assert code == 2
    assert "no train split for source language rus_Cyrl" in err and "eng_Latn, hin_Deva" in err


def test_bad_target_is_a_recorded_skip_and_unknown_labels_are_counted(sib_odd_run) -> None:
    out, err = sib_odd_run
    found = units(out, "sib200")
    assert "test.tsv:16: expected 3 tab-separated fields" in found["rus_Cyrl"]["reason"]
    assert found["hin_Deva"]["n"] == 14
    assert found["hin_Deva"]["unknown_label_rows"] == 1 and found["hin_Deva"]["unknown_labels"] == {"cooking": 1}
    assert "warning seed 1 hin_Deva: 1 row(s) with labels outside the model's label set left out (cooking x1)" in err
    assert "metrics" in found["eng_Latn"]


def test_ner_cli_uner_layout(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    data = make_uner(tmp_path / "uner")
    out = tmp_path / "out"
    code, err = run_cli(["eval", "ner", "--model", tiny_model_dir, "--data-dir", data, "--output-dir", out,
                         *QUICK], capsys)
    assert code == 0, err
    found = units(out, "ner")
    assert set(found) == {"eng_Latn", "rus_Cyrl"}
    assert set(found["rus_Cyrl"]["metrics"]) == {"f1", "precision", "recall", "accuracy"}
    assert found["rus_Cyrl"]["n"] == 6


def test_ner_missing_train_split_names_the_fix(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    data = make_uner(tmp_path / "uner")
    train = data / "UNER_English-EWT" / "en_ewt-ud-train.iob2"
    moved = train.rename(tmp_path / "prerelease-train.iob2")
    code, err = run_cli(["eval", "ner", "--model", tiny_model_dir, "--data-dir", data, "--output-dir", tmp_path / "o",
                         *QUICK], capsys)
    assert code == 2 and "no train split for source language eng_Latn" in err and "--train-file" in err
    code, err = run_cli(["eval", "ner", "--model", tiny_model_dir, "--data-dir", data, "--output-dir", tmp_path / "o",
                         "--train-file", moved, *QUICK], capsys)
    assert code == 0, err
    assert units(tmp_path / "o", "ner")["eng_Latn"]["training"]["train_source"] == str(moved)


@pytest.fixture(scope="module")
def pos_run(tmp_path_factory, tiny_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("pos_run")
    data = make_ud(root / "ud")
    out = root / "out"
    code, err = run_cli_captured(["eval", "pos", "--model", tiny_model_dir, "--data-dir", data, "--output-dir", out,
                              *QUICK])
    assert code == 0, err
    return out


def test_pos_cli_ud_layout(pos_run: Path) -> None:
    found = units(pos_run, "pos")
    assert set(found) == {"eng_Latn", "ell_Grek"}
    assert found["ell_Grek"]["n"] == 6 and found["ell_Grek"]["tokens"] == sum(len(t.split()) for t in
                                                                                _texts("ell_Grek", 6))


def test_pos_accuracy_equals_the_kept_model_scored_by_hand(pos_run: Path, tiny_model_dir: Path) -> None:
    """Oracle: each word's tag is the argmax at its first piece, inputs <s> pieces </s></s> (XLM-R's tagging
    layout), one sentence at a time; token accuracy counted by hand."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(str(kept_model(pos_run, "pos"))).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tags = ["DET", "ADJ", "NOUN", "VERB", "ADP", "PRON", "PUNCT"]
    right = total = 0
    for text in _texts("ell_Grek", 6):
        words = text.split()
        ids, first = [tokenizer.cls_token_id], []
        for word in words:
            first.append(len(ids))
            ids += tokenizer(word, add_special_tokens=False)["input_ids"]
        ids += [tokenizer.sep_token_id] * 2
        with torch.no_grad():
            best = model(input_ids=torch.tensor([ids])).logits[0].argmax(-1).tolist()
        predicted = [model.config.id2label[best[i]] for i in first]
        right += sum(p == tags[i % len(tags)] for i, p in enumerate(predicted))
        total += len(words)
    assert units(pos_run, "pos")["ell_Grek"]["metrics"]["accuracy"] == pytest.approx(right / total)


def test_bad_flags_are_one_line_errors(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    data = make_sib(tmp_path / "sib")
    base = ["eval", "sib200", "--model", tiny_model_dir, "--data-dir", data, "--output-dir", tmp_path / "o"]
    code, err = run_cli([*base, "--mixed-precision", "fp16", "--device", "cpu"], capsys)
    assert code == 2 and "needs a CUDA device" in err
    code, err = run_cli([*base, "--epochs", "0"], capsys)
    assert code == 2 and "epochs" in err and "Traceback" not in err
    code, err = run_cli(["eval", "sib200", "--model", tiny_model_dir, "--data-dir", tmp_path / "nope"], capsys)
    assert code == 2 and "is not a directory" in err


def test_short_model_caps_the_default_max_length(tmp_path: Path, short_model_dir: Path, capsys) -> None:
    """The 160-token SIB-200 default would overflow a model with 32 usable positions: capped, with a note."""
    data = make_sib(tmp_path / "sib", test_langs=("eng_Latn",))
    base = ["eval", "sib200", "--model", short_model_dir, "--data-dir", data, "--output-dir", tmp_path / "o", *QUICK]
    code, err = run_cli(base, capsys)
    assert code == 0, err
    assert "max_length 160 capped at 32" in err
    assert units(tmp_path / "o", "sib200")["eng_Latn"]["config"]["max_length"] == 32
    code, err = run_cli([*base, "--max-length", "256"], capsys)
    assert code == 2 and "--max-length 256 is more than" in err and "Traceback" not in err


# ---------------------------------------------------------------------------- real data (slow)
REAL = {
    "taxi1500": lambda d: ["--data-dir", d / "taxi1500", "--bible-dir", d / "bible" / "christos-c" / "bibles"],
    "sib200": lambda d: ["--data-dir", d / "sib200" / "annotated", "--languages", "eng_Latn,hin_Deva,zho_Hans,yor_Latn"],
    "ner": lambda d: ["--data-dir", d / "ner" / "uner", "--train-file",
                      d / "ner" / "uner" / "UNER_English-EWT" / "prerelease_0c7ce0d" / "en_ewt-ud-train.iob2"],
    "pos": lambda d: ["--data-dir", d / "ud", "--languages", "eng_Latn,zho_Hani,jpn_Jpan,hin_Deva,ara_Arab"],
}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(REAL))
def test_real_data_end_to_end(task: str, shared_data: Path, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code, err = run_cli(["eval", task, "--model", tiny_model_dir, *REAL[task](shared_data), "--output-dir", out,
                         "--max-train-samples", "64", "--max-eval-samples", "200", "--epochs", "1"], capsys)
    assert code == 0, err
    found = units(out, task)
    assert "eng_Latn" in found and "metrics" in found["eng_Latn"]
    assert len(found) >= 3
