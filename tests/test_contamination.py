"""`langsamp contamination`: normalisation, planted test items found exactly, the clean copy, bad input."""

from __future__ import annotations

import gzip
import json
import shutil
import unicodedata
from pathlib import Path

from helpers import run_cli

from langsamp_cli.contamination.normalise import code_points, normalise, normalise_block, tables
from langsamp_cli.contamination.record import CLEAN_RECORD, read_clean_record
from langsamp_cli.contamination.scan import REPORT_JSON, ContaminationSettings, check_contamination
from langsamp_cli.data.bible import read_bible
from langsamp_cli.data.sib200 import read_sib200_tsv
from langsamp_cli.data.taxi1500 import read_taxi1500_tsv
from langsamp_cli.task_config import bundled_dir

DEMO = bundled_dir("demo_corpus") / "texts"
SAMPLE_SRT = bundled_dir("samples") / "sr-t"


def _reference(text: str) -> str:
    """The definition, character by character: letters and marks of casefold(NFKC(text))."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if unicodedata.category(c)[0] in "LM")


# ---------------------------------------------------------------------------------------- normalisation


def test_normalise_ignores_case_spacing_punctuation_and_digits():
    assert normalise("  Hello,  WORLD!  42 ") == normalise("hello world") == "helloworld"
    assert normalise("Straße ﬁne") == "strassefine"
    assert normalise("Hello , world .") == normalise("Hello, world.")      # tokenised test files
    assert normalise("3 In the beginning") == normalise("In the beginning")  # verse numbers
    assert normalise("!!! 123") == ""


def test_block_fast_path_equals_unicodedata_on_every_demo_language():
    t = tables()
    for path in sorted(DEMO.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        expected = t.keep[code_points(unicodedata.normalize("NFKC", text).casefold())]
        assert normalise_block(text).tolist() == expected[expected != 0].tolist(), path.name
    tricky = "ক\u09c7\u09be e\u0301\u0323 \u0915\u093c \u0930\u093c \u1100\u1161 A\u0301 ǅ İstanbul"
    for line in tricky.split():
        assert normalise(line) == _reference(line), line


def test_block_fast_path_equals_unicodedata_on_205_flores_languages(shared_data):
    t = tables()
    for test in sorted((shared_data / "sib200/annotated").glob("*/test.tsv")):
        text = test.read_text(encoding="utf-8")
        expected = t.keep[code_points(unicodedata.normalize("NFKC", text).casefold())]
        assert normalise_block(text).tolist() == expected[expected != 0].tolist(), test.parent.name


# ---------------------------------------------------------------------------------------- planted items


def _test_data(shared: Path, root: Path) -> list[str]:
    """A few real test files (copied, never committed) in the layouts `eval` takes; the --against values."""
    tatoeba = root / "tatoeba"
    tatoeba.mkdir()
    for name in ("tatoeba.fra-eng.fra", "tatoeba.fra-eng.eng"):
        shutil.copy(shared / "tatoeba/v1" / name, tatoeba / name)
    sib = root / "sib200"
    for lang in ("eng_Latn", "fra_Latn", "zho_Hans"):
        shutil.copytree(shared / "sib200/annotated" / lang, sib / lang)
    return [f"sr-t={tatoeba}", f"sr-b={shared / 'bible/sword'}", f"sib200={sib}",
            f"taxi1500={shared / 'taxi1500/eng_data'}"]


def _scan(corpus: Path, against: list[str], out: Path, clean: Path | None = None):
    settings = ContaminationSettings(corpus=str(corpus), output_dir=str(out), progress=False,
                                     write_clean=str(clean) if clean else None, examples=10)
    return check_contamination(settings, against)


def _rows(report) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    return {(r.corpus_lang, r.task, r.test_lang): (r.found_whole, r.found_overlap, r.found) for r in report.rows}


def _found_ids(report) -> dict[tuple[str, str, str], set[str]]:
    found: dict[tuple[str, str, str], set[str]] = {}
    for row in report.rows:
        if row.found:
            found[(row.corpus_lang, row.task, row.test_lang)] = {e["item_id"] for e in row.examples}
    return found


def _sr_b_spanish(shared: Path) -> tuple[str, str]:
    """A verse of the SR-B Spanish test side (the first 500 verses the Spanish and English Bibles share)."""
    spanish, english = read_bible(shared / "bible/sword/spa_Latn.RV1909.tsv"), read_bible(
        shared / "bible/sword/eng_Latn.KJV.tsv")
    verse = sorted(spanish.keys() & english.keys())[123]
    return str(verse), spanish[verse]


def test_planted_items_are_found_exactly_and_the_clean_copy_lacks_exactly_them(shared_data, tmp_path):
    against = _test_data(shared_data, tmp_path)
    demo = tmp_path / "demo"
    demo.mkdir()
    for lang in ("eng_Latn", "fra_Latn", "spa_Latn", "zho_Hani"):
        shutil.copy(DEMO / f"{lang}.txt", demo / f"{lang}.txt")
    # The demo corpus itself holds some test items (its Spanish is the RV1909 Bible): its clean copy is the base.
    _scan(demo, against, tmp_path / "r0", clean=tmp_path / "base")
    base = {lang: (tmp_path / "base" / f"{lang}.txt").read_bytes().decode().splitlines(keepends=True)
            for lang in ("eng_Latn", "fra_Latn", "spa_Latn", "zho_Hani")}
    assert _found_ids(_scan(tmp_path / "base", against, tmp_path / "r1")) == {}

    fra = (tmp_path / "tatoeba/tatoeba.fra-eng.fra").read_text(encoding="utf-8").splitlines()
    eng = (tmp_path / "tatoeba/tatoeba.fra-eng.eng").read_text(encoding="utf-8").splitlines()
    sib_eng = read_sib200_tsv(tmp_path / "sib200/eng_Latn/test.tsv")
    sib_zho = read_sib200_tsv(tmp_path / "sib200/zho_Hans/test.tsv")
    taxi = read_taxi1500_tsv(shared_data / "taxi1500/eng_data/eng_test.tsv")
    verse_id, verse = _sr_b_spanish(shared_data)
    long_fra = next(i for i, s in enumerate(fra) if len(normalise(s)) >= 60 and fra.count(s) == 1)
    short_fra = next(i for i, s in enumerate(fra) if 12 <= len(normalise(s)) < 30 and fra.count(s) == 1)
    short_eng = next(i for i, s in enumerate(eng) if 15 <= len(normalise(s)) < 40 and eng.count(s) == 1)
    plants = {
        "eng_Latn": [
            eng[short_eng].upper() + "\n",                                   # SR-T English side, re-cased
            "Yesterday's news: " + sib_eng.texts[5] + " More at eleven.\n",   # SIB-200 inside a longer line
            "17 " + taxi.texts[7].replace(" ,", ",").replace(" .", ".") + "\n",  # Taxi1500, verse number, untokenised
            "He said: " + eng[short_eng] + " and left.\n",                   # near miss: short item inside a line
            normalise(sib_eng.texts[9])[:45] + "\n",                         # near miss: prefix shorter than the n-gram
        ],
        "fra_Latn": [
            fra[long_fra] + "\n",                                            # SR-T, exact
            "Il dit : « " + fra[short_fra] + " » puis partit.\n",            # near miss: short item inside a line
            fra[short_fra][:-1] + "x\n",                                     # near miss: one letter changed
        ],
        "spa_Latn": ["  " + "   ".join(verse.split()) + " \n"],             # SR-B verse, re-spaced
        "zho_Hani": ["新闻：" + sib_zho.texts[3] + "完。\n"],                  # SIB-200 zho_Hans inside a longer line
    }
    planted = tmp_path / "planted"
    planted.mkdir()
    for lang, lines in base.items():
        mixed = lines[:10] + plants[lang][:1] + lines[10:] + plants[lang][1:]
        data = "".join(mixed).encode()
        if lang == "eng_Latn":
            (planted / "eng_Latn.txt.gz").write_bytes(gzip.compress(data))
        elif lang == "spa_Latn":
            (planted / "spa_Latn").mkdir()
            (planted / "spa_Latn" / "part1.txt").write_bytes(data)
        else:
            (planted / f"{lang}.txt").write_bytes(data)

    report = _scan(planted, against, tmp_path / "r2", clean=tmp_path / "clean")

    assert _found_ids(report) == {
        ("eng_Latn", "sr-t", "eng_Latn"): {f"fra_Latn pair {short_eng + 1}"},
        ("eng_Latn", "sib200", "eng_Latn"): {sib_eng.ids[5]},
        ("eng_Latn", "taxi1500", "eng_Latn"): {taxi.ids[7]},
        ("fra_Latn", "sr-t", "fra_Latn"): {f"pair {long_fra + 1}"},
        ("spa_Latn", "sr-b", "spa_Latn"): {verse_id},
        ("zho_Hani", "sib200", "zho_Hans"): {sib_zho.ids[3]},
    }
    rows = _rows(report)
    assert rows[("eng_Latn", "sr-t", "eng_Latn")] == (1, 0, 1)
    assert rows[("eng_Latn", "sib200", "eng_Latn")] == (0, 1, 1)
    assert rows[("eng_Latn", "taxi1500", "eng_Latn")][0] == 1
    assert rows[("zho_Hani", "sib200", "zho_Hans")] == (0, 1, 1)
    assert report.rows[0].share > 0 and report.rows[-1].found == 0  # worst first
    assert {lang: s.matched_lines for lang, s in report.languages.items()} == {
        "eng_Latn": 3, "fra_Latn": 1, "spa_Latn": 1, "zho_Hani": 1}

    clean = tmp_path / "clean"
    assert gzip.decompress((clean / "eng_Latn.txt.gz").read_bytes()).decode() == "".join(
        base["eng_Latn"][:10] + base["eng_Latn"][10:] + plants["eng_Latn"][3:])
    assert (clean / "fra_Latn.txt").read_text(encoding="utf-8") == "".join(base["fra_Latn"] + plants["fra_Latn"][1:])
    assert (clean / "spa_Latn" / "part1.txt").read_text(encoding="utf-8") == "".join(base["spa_Latn"])
    assert (clean / "zho_Hani.txt").read_text(encoding="utf-8") == "".join(base["zho_Hani"])
    record = read_clean_record(clean)
    assert record["removed_lines"] == 6 and record["languages"]["eng_Latn"]["removed"] == 3
    saved = json.loads((tmp_path / "r2" / REPORT_JSON).read_text(encoding="utf-8"))
    assert saved["rows"][0]["found"] == report.rows[0].found
    assert "corpus_lang,task,test_lang" in (tmp_path / "r2" / "contamination_report.csv").read_text()

    from langsamp_cli.pretrain.corpus import scan_corpus

    assert scan_corpus(clean).languages == ["eng_Latn", "fra_Latn", "spa_Latn", "zho_Hani"]  # record ignored


# ---------------------------------------------------------------------------------------- bad input (CLI)


def _sample_corpus(root: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir()
    fra = (SAMPLE_SRT / "tatoeba.fra_Latn-eng_Latn.fra_Latn").read_text(encoding="utf-8").splitlines()
    (corpus / "fra_Latn.txt").write_text("Une ligne sans rapport.\n" + fra[2] + "\n", encoding="utf-8")
    (corpus / "deu_Latn.txt").write_text("Eine Zeile.\n", encoding="utf-8")
    return corpus


def _one_line_error(capsys, args: list[str], expected: str) -> None:
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err and "Traceback" not in err, err


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    corpus = _sample_corpus(tmp_path)
    base = ["contamination", "--no-progress", "--output-dir", str(tmp_path / "out")]
    _one_line_error(capsys, [*base, "--corpus", str(tmp_path / "nope"), "--against", f"sr-t={SAMPLE_SRT}"],
                    "no such directory")
    _one_line_error(capsys, [*base, "--corpus", str(corpus), "--against", "sr-t"], "expected TASK=PATH")
    _one_line_error(capsys, [*base, "--corpus", str(corpus), "--against", "foo=x"], "unknown task")
    _one_line_error(capsys, [*base, "--corpus", str(corpus)], "--against")
    _one_line_error(capsys, [*base, "--corpus", str(corpus), "--against", f"sr-t={tmp_path / 'missing'}"],
                    "not found")
    _one_line_error(capsys, [*base, "--corpus", str(corpus), "--against", f"sib200={SAMPLE_SRT}"],
                    "sib200")  # a test set in a layout the task does not read
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "mine.txt").write_text("keep me\n")
    _one_line_error(capsys, [*base, "--corpus", str(corpus), "--against", f"sr-t={SAMPLE_SRT}",
                             "--write-clean", str(occupied)], "not a clean copy written by langsamp")
    assert (occupied / "mine.txt").read_text() == "keep me\n"


def test_scan_goes_on_past_bad_test_sets_files_and_one_sided_languages(tmp_path, capsys):
    corpus = _sample_corpus(tmp_path)
    (corpus / "rus_Cyrl.txt.gz").write_bytes(b"\x1f\x8b\x08\x00broken gzip")
    args = ["contamination", "--no-progress", "--output-dir", str(tmp_path / "out"), "--corpus", str(corpus),
            "--against", f"sr-t={SAMPLE_SRT}", "--against", f"sr-t={tmp_path / 'missing'}"]
    assert run_cli(args) == 0
    captured = capsys.readouterr()
    assert "corpus file" in captured.err and "rus_Cyrl.txt.gz: cannot read" in captured.err
    assert "test set --against sr-t=" in captured.err and "not found" in captured.err
    assert "corpus deu_Latn: no test set" in captured.err
    assert "language(s) with no corpus text" in captured.err and "zho_Hani" in captured.err
    saved = json.loads((tmp_path / "out" / REPORT_JSON).read_text(encoding="utf-8"))
    fra = next(r for r in saved["rows"] if r["corpus_lang"] == "fra_Latn" and r["test_lang"] == "fra_Latn")
    assert (fra["found_whole"], fra["found"]) == (1, 1)

    clean = tmp_path / "clean"
    assert run_cli([*args, "--write-clean", str(clean)]) == 2
    assert "not written" in capsys.readouterr().err
    assert not clean.exists() and not list(tmp_path.glob(".clean.*"))  # no half-written copy left behind


def test_clean_copy_is_replaced_only_with_overwrite(tmp_path, capsys):
    corpus = _sample_corpus(tmp_path)
    args = ["contamination", "--no-progress", "--output-dir", str(tmp_path / "out"), "--corpus", str(corpus),
            "--against", f"sr-t={SAMPLE_SRT}", "--write-clean", str(tmp_path / "clean")]
    assert run_cli(args) == 0
    assert (tmp_path / "clean" / "fra_Latn.txt").read_text(encoding="utf-8") == "Une ligne sans rapport.\n"
    assert (tmp_path / "clean" / "deu_Latn.txt").read_text(encoding="utf-8") == "Eine Zeile.\n"
    assert (tmp_path / "clean" / CLEAN_RECORD).is_file()
    capsys.readouterr()
    _one_line_error(capsys, args, "--overwrite")
    assert run_cli([*args, "--overwrite"]) == 0


def test_model_card_says_what_the_corpus_was_cleaned_with(tmp_path):
    from langsamp_cli.model_card import contamination_section

    record = {"format": "langsamp-clean-corpus", "against": [{"task": "sr-t", "path": "/data/tatoeba"}],
              "removed_lines": 12, "ngram": 50, "report": "/r/contamination_report.json"}
    text = contamination_section({"config": {}, "contamination": record})
    assert "sr-t (/data/tatoeba)" in text and "12 line(s) removed" in text
    assert "no record" in contamination_section({"config": {}, "contamination": None})
    assert contamination_section({}) == ""


def test_overlap_needs_a_shared_span_of_exactly_n_characters():
    from langsamp_cli.contamination.index import LanguageIndex, TestItem, match_block

    item = "".join("abcdefghijklmnoprstuvwxyz"[(i * 7) % 25] for i in range(80))  # no 'q'
    index = LanguageIndex.build([TestItem("t", "eng_Latn", "1", item)], 50)
    for offset in range(12):  # every alignment of the span against the probes
        for size, expected in ((50, [(0, 0)]), (49, [])):
            line = "q" * (3 + offset) + item[7:7 + size] + "q" * 20
            assert match_block(index, normalise_block(line + "\n")).overlap == expected, (offset, size)


def test_pretrain_records_the_clean_copy_in_run_json_and_the_model_card(corpus_dir, tiny_model_dir, small_arch,
                                                                        tmp_path):
    from helpers import small_pretrain_settings

    from langsamp_cli.pretrain.config import build_config
    from langsamp_cli.pretrain.trainer import pretrain

    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_dir, corpus)
    clean = tmp_path / "clean"
    settings = ContaminationSettings(corpus=str(corpus), output_dir=str(tmp_path / "report"), progress=False,
                                     write_clean=str(clean))
    check_contamination(settings, [f"sr-t={SAMPLE_SRT}"])
    out = tmp_path / "run"
    config = build_config("demo", None, small_pretrain_settings(clean, small_arch, tiny_model_dir, out, max_steps=2))
    result = pretrain(config, progress=False)
    recorded = json.loads((out / "run.json").read_text(encoding="utf-8"))["contamination"]
    assert recorded == read_clean_record(clean) and recorded["against"][0]["task"] == "sr-t"
    card = (result.final_dir / "README.md").read_text(encoding="utf-8")
    assert "## Test-set contamination" in card and "sr-t (" in card


def test_clean_copy_keeps_every_other_byte_across_blocks_and_long_lines(tmp_path, monkeypatch):
    import langsamp_cli.contamination.scan as scan

    monkeypatch.setattr(scan, "BLOCK_BYTES", 64)        # many blocks, and lines longer than a block
    monkeypatch.setattr(scan, "MAX_PIECE_BYTES", 256)   # a line over this is checked in pieces
    fra = (SAMPLE_SRT / "tatoeba.fra_Latn-eng_Latn.fra_Latn").read_text(encoding="utf-8").splitlines()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    keep = [b"Premi\xc3\xa8re ligne.\r\n", b"\n", b"bad \xff\xfe bytes\n", b"x" * 1000 + b"\n",
            ("Autre ligne, " * 10).encode() + b"\n"]
    planted = fra[2].upper().encode() + b"\r\n"
    (corpus / "fra_Latn.txt").write_bytes(b"".join(keep[:3] + [planted] + keep[3:]) + b"last line, no newline")
    settings = ContaminationSettings(corpus=str(corpus), output_dir=str(tmp_path / "out"), progress=False,
                                     write_clean=str(tmp_path / "clean"))
    report = check_contamination(settings, [f"sr-t={SAMPLE_SRT}"])
    assert report.languages["fra_Latn"].matched_lines == 1
    assert (tmp_path / "clean" / "fra_Latn.txt").read_bytes() == b"".join(keep) + b"last line, no newline"
