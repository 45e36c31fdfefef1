"""Readers for the transfer tasks: real shared files (counts), generated snippets, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from langsamp_cli.data.bible import read_bible
from langsamp_cli.data.conll import normalize_ner, read_tagged_file, repair_bio
from langsamp_cli.data.conllu import UPOS_TAGS, read_conllu
from langsamp_cli.data.sib200 import read_labels_file, read_sib200_tsv
from langsamp_cli.data.taxi1500 import join_bible, read_taxi1500_tsv
from langsamp_cli.errors import LangsampError


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- Taxi1500
def test_taxi1500_real_split_counts(shared_data: Path) -> None:
    folder = shared_data / "taxi1500" / "eng_data"
    sizes = {s: len(read_taxi1500_tsv(folder / f"eng_{s}.tsv")) for s in ("train", "dev", "test")}
    assert sizes == {"train": 860, "dev": 106, "test": 111}
    train = read_taxi1500_tsv(folder / "eng_train.tsv")
    assert sorted(set(train.labels)) == ["Description", "Faith", "Grace", "Recommendation", "Sin", "Violence"]
    assert train.ids[0] == "62003016" and train.labels[0] == "Faith"


def test_taxi1500_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "eng_test.tsv", "40001001\tFaith\tsome text\n40001002\tGrace only two fields\n")
    with pytest.raises(LangsampError, match=r"eng_test\.tsv:2: expected 3 tab-separated fields"):
        read_taxi1500_tsv(path)


def test_taxi1500_empty_and_duplicate_are_errors(tmp_path: Path) -> None:
    with pytest.raises(LangsampError, match="no rows"):
        read_taxi1500_tsv(_write(tmp_path / "empty_test.tsv", "\n"))
    dup = _write(tmp_path / "dup_test.tsv", "40001001\tFaith\ta\n40001001\tSin\tb\n")
    with pytest.raises(LangsampError, match=r"dup_test\.tsv:2: verse id 40001001 already at line 1"):
        read_taxi1500_tsv(dup)


def test_bible_join_on_generated_bible(tmp_path: Path) -> None:
    test = read_taxi1500_tsv(_write(tmp_path / "eng_test.tsv",
                                    "40001001\tFaith\tone\n40001002\tSin\ttwo\n66022021\tGrace\tthree\n"))
    bible = read_bible(_write(tmp_path / "xyz_Latn.demo.tsv", "40001001\tuno\n66022021\ttres\n43001001\totro\n"))
    joined = join_bible(test, bible, "xyz_Latn.demo.tsv")
    assert joined.texts == ["uno", "tres"]
    assert joined.labels == ["Faith", "Grace"]
    coverage = joined.notes["bible_join"]
    assert (coverage["test_verses"], coverage["covered"], coverage["missing"]) == (3, 2, 1)
    assert coverage["missing_examples"] == ["40001002"]
    with pytest.raises(LangsampError, match="none of the 3 Taxi1500 test verses"):
        join_bible(test, {1001001: "Genesis only"}, "ot.tsv")


def test_bible_join_real_bibles(shared_data: Path) -> None:
    test = read_taxi1500_tsv(shared_data / "taxi1500" / "eng_data" / "eng_test.tsv")
    covered = {}
    for path in [shared_data / "bible" / "sword" / "eng_Latn.KJV.tsv", shared_data / "bible" / "sword" / "eng_Latn.WEB.tsv",
                 shared_data / "bible" / "christos-c" / "bibles" / "Dinka-NT.xml"]:
        covered[path.name] = join_bible(test, read_bible(path), path.name).notes["bible_join"]["covered"]
    assert covered == {"eng_Latn.KJV.tsv": 111, "eng_Latn.WEB.tsv": 111, "Dinka-NT.xml": 85}


# ---------------------------------------------------------------------------- SIB-200
def test_sib200_real_split_counts(shared_data: Path) -> None:
    folder = shared_data / "sib200" / "annotated" / "eng_Latn"
    labels = read_labels_file(folder)
    assert labels is not None and len(labels) == 7
    sizes = {s: len(read_sib200_tsv(folder / f"{s}.tsv", labels)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 701, "dev": 99, "test": 204}


def test_sib200_keeps_quotes_inside_text(tmp_path: Path) -> None:
    path = _write(tmp_path / "test.tsv", 'index_id\tcategory\ttext\n1\tsports\tA "middle" quote\n'
                  '2\tsports\t"Quoted ""inner"" text"\n')
    assert read_sib200_tsv(path).texts == ['A "middle" quote', 'Quoted "inner" text']  # as pandas.read_csv reads them
    bad = _write(tmp_path / "bad.tsv", 'index_id\tcategory\ttext\n1\tsports\t"Quoted" start, and a "middle"\n')
    with pytest.raises(LangsampError, match=r"bad\.tsv:2: malformed quoting"):  # pandas skips this row silently
        read_sib200_tsv(bad)


def test_sib200_bad_input(tmp_path: Path) -> None:
    with pytest.raises(LangsampError, match=r"test\.tsv:1: header"):
        read_sib200_tsv(_write(tmp_path / "a" / "test.tsv", "id\tlabel\ttext\n1\tx\ty\n"))
    with pytest.raises(LangsampError, match=r"test\.tsv:3: expected 3 tab-separated fields, got 2"):
        read_sib200_tsv(_write(tmp_path / "b" / "test.tsv", "index_id\tcategory\ttext\n1\tsports\tok\n2\tsports\n"))
    with pytest.raises(LangsampError, match=r"test\.tsv:2: category 'cooking' is not in labels.txt"):
        read_sib200_tsv(_write(tmp_path / "c" / "test.tsv", "index_id\tcategory\ttext\n1\tcooking\tx\n"), ["sports"])
    with pytest.raises(LangsampError, match="empty file"):
        read_sib200_tsv(_write(tmp_path / "d" / "test.tsv", ""))


# ---------------------------------------------------------------------------- CoNLL-U (POS)
CONLLU = """# sent_id = 1
# text = Vámonos al mar.
1-2\tVámonos\t_\t_\t_\t_\t_\t_\t_\t_
1\tVamos\tir\tVERB\t_\t_\t0\troot\t_\t_
2\tnos\tnosotros\tPRON\t_\t_\t1\tobj\t_\t_
3-4\tal\t_\t_\t_\t_\t_\t_\t_\t_
3\ta\ta\tADP\t_\t_\t5\tcase\t_\t_
4\tel\tel\tDET\t_\t_\t5\tdet\t_\t_
5\tmar\tmar\tNOUN\t_\t_\t1\tobl\t_\t_
5.1\tva\tir\tVERB\t_\t_\t_\t_\t0:root\t_
6\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_

# sent_id = 2
1\tSí\tsí\tINTJ\t_\t_\t0\troot\t_\t_
"""


def test_conllu_multiword_tokens_and_empty_nodes(tmp_path: Path) -> None:
    path = _write(tmp_path / "es_demo-ud-test.conllu", CONLLU)
    sentences = read_conllu(path, "syntactic")
    assert sentences.tokens == [["Vamos", "nos", "a", "el", "mar", "."], ["Sí"]]
    assert sentences.tags == [["VERB", "PRON", "ADP", "DET", "NOUN", "PUNCT"], ["INTJ"]]
    assert sentences.notes == {"multiword_ranges": 2, "empty_nodes": 1, "ud_preparation": "syntactic"}
    assert sentences.lines == [1, 13]  # first line of each sentence block
    fused = read_conllu(path)  # the default: Glot500's preparation (tests/test_conformance_2.py)
    assert fused.tokens == [["Vámonos", "al", "mar", "."], ["Sí"]]
    assert fused.tags == [["VERB", "ADP", "NOUN", "PUNCT"], ["INTJ"]]


def test_conllu_real_ewt_train_counts(shared_data: Path) -> None:
    train = read_conllu(shared_data / "ud" / "UD_English-EWT" / "en_ewt-ud-train.conllu", "syntactic")
    assert (len(train), train.n_tokens) == (12_544, 204_577)  # stats.xml: words exclude multiword ranges
    assert {tag for tags in train.tags for tag in tags} == set(UPOS_TAGS)


def test_conllu_bad_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "x-ud-test.conllu", "# c\n1\tword\tword\tNOUN\n")
    with pytest.raises(LangsampError, match=r"x-ud-test\.conllu:2: CoNLL-U word lines have 10 tab-separated fields, got 4"):
        read_conllu(path)


# ---------------------------------------------------------------------------- NER formats
def test_uner_real_dev(shared_data: Path) -> None:
    dev = normalize_ner(read_tagged_file(shared_data / "ner" / "uner" / "UNER_English-EWT" / "en_ewt-ud-dev.iob2"))
    assert len(dev) == 2001
    assert dev.tokens[0][:4] == ["where", "can", "I", "get"]
    assert {t for tags in dev.tags for t in tags} <= {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"}


def test_masakhaner_date_maps_to_o(shared_data: Path) -> None:
    test = normalize_ner(read_tagged_file(shared_data / "ner" / "masakhaner2" / "yor" / "test.txt"))
    assert test.notes["tags_mapped_to_O"]["DATE"] > 0
    assert not any("DATE" in t for tags in test.tags for t in tags)


def test_two_column_prefix_is_stripped_only_when_every_token_has_it(tmp_path: Path) -> None:
    prefixed = read_tagged_file(_write(tmp_path / "en" / "test", "en:Paris\tB-LOC\nen:is\tO\n\nen:12:30\tO\n"))
    assert prefixed.tokens == [["Paris", "is"], ["12:30"]]
    assert prefixed.notes["stripped_token_prefix"] == "en:"
    mixed = read_tagged_file(_write(tmp_path / "de" / "test", "de:facto\tO\nParis\tB-LOC\n"))
    assert mixed.tokens == [["de:facto", "Paris"]]


def test_space_separated_masakhaner_style(tmp_path: Path) -> None:
    sentences = read_tagged_file(_write(tmp_path / "yor" / "dev.txt", "Ade B-PER\nlo O\n\n\nEko B-LOC\n"))
    assert sentences.tokens == [["Ade", "lo"], ["Eko"]]
    assert sentences.lines == [1, 5]


def test_tag_mapping_and_bio_repair(tmp_path: Path) -> None:
    text = "A\tI-PER\nB\tI-PER\nC\tO\nD\tI-LOC\nE\tB-PER\nF\tI-LOC\nG\tB-DATE\nH\tS-ORG\nI\tB-OTH\nJ\tI-OTH\n"
    sentences = normalize_ner(read_tagged_file(_write(tmp_path / "x" / "test", text)))
    assert sentences.tags == [["B-PER", "I-PER", "O", "B-LOC", "B-PER", "B-LOC", "O", "B-ORG", "O", "O"]]
    assert sentences.notes["tags_mapped_to_O"] == {"DATE": 1, "OTH": 2}
    assert sentences.notes["bio_repaired"] == 3
    assert repair_bio(["O", "I-X", "I-X", "B-Y", "I-Y"]) == ["O", "B-X", "I-X", "B-Y", "I-Y"]
    keep_date = normalize_ner(read_tagged_file(tmp_path / "x" / "test"), ("PER", "LOC", "ORG", "DATE"))
    assert keep_date.tags[0][6] == "B-DATE"


def test_ner_bad_input(tmp_path: Path) -> None:
    with pytest.raises(LangsampError, match=r"test:2: expected 'token<TAB>tag'"):
        read_tagged_file(_write(tmp_path / "a" / "test", "ok\tO\nthree\tcolumns\there\n"))
    with pytest.raises(LangsampError, match=r"test:1: tag 'PERSON' is neither O nor"):
        normalize_ner(read_tagged_file(_write(tmp_path / "b" / "test", "Ann\tPERSON\n")))
    with pytest.raises(LangsampError, match="no sentences"):
        read_tagged_file(_write(tmp_path / "c" / "test", "\n\n"))


# ---------------------------------------------------------------------------- discovery (real layouts)
def test_discovery_of_real_layouts(shared_data: Path) -> None:
    from langsamp_cli.data.conll import discover_tagging
    from langsamp_cli.data.conllu import discover_treebanks
    from langsamp_cli.data.sib200 import discover_sib200
    from langsamp_cli.data.taxi1500 import discover_taxi1500

    taxi, problems = discover_taxi1500(shared_data / "taxi1500")
    assert set(taxi) == {"eng_Latn"} and set(taxi["eng_Latn"]) == {"train", "dev", "test"} and not problems
    sib, problems = discover_sib200(shared_data / "sib200")  # the repository root finds annotated/
    assert len(sib) == 205 and not problems
    assert sum("train" in splits for splits in sib.values()) == 45
    ud = discover_treebanks(shared_data / "ud")
    assert len(ud.files) == 19 and set(ud.files["eng_Latn"]) == {"train", "dev", "test"}
    assert {"zho_Hani", "jpn_Jpan", "ara_Arab", "hin_Deva", "kor_Hang", "ell_Grek"} <= set(ud.files)
    uner = discover_tagging(shared_data / "ner" / "uner", extensions=("iob2",))
    assert set(uner.files["eng_Latn"]) == {"dev", "test"}  # the prerelease train file is not picked up
    assert len(uner.files) == 7
    masakha = discover_tagging(shared_data / "ner" / "masakhaner2", extensions=("iob2",))
    assert len(masakha.files) == 20 and set(masakha.files["yor_Latn"]) == {"dev", "test"} and not masakha.problems
