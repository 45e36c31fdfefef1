"""The bundled demo corpus (langsamp_cli/demo_corpus) and the script that regenerates it."""

from __future__ import annotations

import gettext
import re
import struct
import unicodedata
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from helpers import load_script
from langsamp_cli.demo_corpus import DEMO_LANGUAGES, demo_corpus_dir, provenance_path

REPO_ROOT = Path(__file__).resolve().parents[1]
ID_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
# Unicode name words of the letters each ISO 15924 script may contain (an independent table from the build script's).
SCRIPT_LETTER_WORDS = {
    "Latn": {"LATIN"}, "Cyrl": {"CYRILLIC"}, "Arab": {"ARABIC"}, "Hani": {"CJK"}, "Hang": {"HANGUL", "CJK"},
    "Jpan": {"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"}, "Deva": {"DEVANAGARI"}, "Grek": {"GREEK"},
    "Hebr": {"HEBREW"}, "Thai": {"THAI"}, "Geor": {"GEORGIAN"},
}


@pytest.fixture(scope="module")
def build_script() -> ModuleType:
    return load_script(REPO_ROOT / "scripts" / "build_demo_corpus.py")


def corpus_files() -> dict[str, Path]:
    return {path.name.removesuffix(".txt"): path for path in sorted(demo_corpus_dir().iterdir())}


def corpus_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8").split("\n")[:-1]


def mostly_in_script(line: str, script: str) -> bool:
    words = Counter(unicodedata.name(ch, "?").split(" ")[0] for ch in line if ch.isalpha())
    return 2 * sum(words[word] for word in SCRIPT_LETTER_WORDS[script]) > sum(words.values())


# ------------------------------------------------------------------------------------ committed corpus


def test_corpus_has_enough_languages_and_scripts() -> None:
    files = corpus_files()
    assert sorted(files) == DEMO_LANGUAGES
    assert all(path.suffix == ".txt" and path.is_file() for path in files.values())
    assert len(files) >= 8
    assert len({lang_script.split("_")[1] for lang_script in files}) >= 4


def test_file_names_are_canonical_language_script_ids() -> None:
    for lang_script in corpus_files():
        assert ID_RE.match(lang_script), lang_script
    try:
        from langsamp_cli.languages import parse_lang_script
    except ImportError:
        return
    for lang_script in corpus_files():
        assert parse_lang_script(lang_script).id == lang_script


def test_every_line_is_non_empty_clean_utf8() -> None:
    for lang_script, path in corpus_files().items():
        raw = path.read_bytes()
        assert raw.endswith(b"\n") and b"\r" not in raw, lang_script
        for number, line in enumerate(corpus_lines(path), 1):  # decode above is strict: invalid UTF-8 raises
            assert line and line == line.strip(), f"{lang_script}:{number}: {line!r}"
            assert not any(unicodedata.category(ch) == "Cc" for ch in line), f"{lang_script}:{number}"


def test_lines_are_in_the_script_the_file_name_says() -> None:
    for lang_script, path in corpus_files().items():
        script = lang_script.split("_")[1]
        lines = corpus_lines(path)
        matching = sum(mostly_in_script(line, script) for line in lines)
        assert matching >= 0.95 * len(lines), f"{lang_script}: only {matching}/{len(lines)} lines in {script}"


def test_lines_are_unique_and_sizes_are_small_but_unequal() -> None:
    counts = {}
    for lang_script, path in corpus_files().items():
        lines = corpus_lines(path)
        assert len(set(lines)) == len(lines), f"{lang_script}: duplicate lines"
        counts[lang_script] = len(lines)
    total_bytes = sum(path.stat().st_size for path in corpus_files().values())
    assert 200_000 <= total_bytes <= 3_000_000
    assert all(300 <= n <= 5000 for n in counts.values()), counts
    assert max(counts.values()) >= 3 * min(counts.values())  # exercises temperature sampling


def provenance_rows() -> dict[str, list[str]]:
    rows = {}
    for line in provenance_path().read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| `") and ID_RE.match(cells[0].strip("`")):
            rows[cells[0].strip("`")] = cells
    return rows


def test_provenance_names_licence_source_and_line_count_of_every_file() -> None:
    rows = provenance_rows()
    assert sorted(rows) == DEMO_LANGUAGES
    for lang_script, path in corpus_files().items():
        lines, _distinct, _off_script, _short, licence, source = rows[lang_script][1:]
        assert int(lines) == len(corpus_lines(path)), lang_script
        assert re.search(r"BSD-[23]-Clause|public domain", licence), licence
        assert re.search(r"Django|Sphinx|Bible|Reina-Valera", source), source
    text = provenance_path().read_text(encoding="utf-8")
    assert "Redistribution and use in source and binary forms" in text  # BSD notices travel with the text
    assert "`pip:Django`" in text and "`deb:sword-text-web`" in text


def test_corpus_reader_accepts_the_demo_folder() -> None:
    corpus_module = pytest.importorskip("langsamp_cli.pretrain.corpus")
    corpus = corpus_module.scan_corpus(demo_corpus_dir())
    assert corpus.languages == DEMO_LANGUAGES
    assert not corpus.skipped
    for lang_script, path in corpus_files().items():
        assert corpus.sources[lang_script].lines == len(corpus_lines(path))


# --------------------------------------------------------------------------------------- build script


def write_mo(path: Path, messages: dict[str, str]) -> None:
    """A little-endian GNU .mo file (format documented in the gettext manual)."""
    keys = sorted(messages)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(messages[k].encode() + b"\0" for k in keys)
    count, header = len(keys), 28
    ids_start = header + 16 * count
    strs_start = ids_start + len(ids)
    id_table, str_table, id_pos, str_pos = b"", b"", ids_start, strs_start
    for key in keys:
        id_table += struct.pack("<2I", len(key.encode()), id_pos)
        str_table += struct.pack("<2I", len(messages[key].encode()), str_pos)
        id_pos += len(key.encode()) + 1
        str_pos += len(messages[key].encode()) + 1
    head = struct.pack("<7I", 0x950412DE, 0, count, header, header + 8 * count, 0, 0)
    path.write_bytes(head + id_table + str_table + ids + strs)


def test_read_mo_returns_every_translation_and_skips_the_header(tmp_path: Path, build_script: ModuleType) -> None:
    path = tmp_path / "django.mo"
    write_mo(path, {
        "": "Project-Id-Version: x\nContent-Type: text/plain; charset=UTF-8\n",
        "Delete": "Удалить",
        "%(n)s item\0%(n)s items": "%(n)s объект\0%(n)s объекта\0%(n)s объектов",
    })
    with open(path, "rb") as handle:
        assert gettext.GNUTranslations(handle).gettext("Delete") == "Удалить"  # the file is a valid catalog
    expected = ["Удалить", "%(n)s объект", "%(n)s объекта", "%(n)s объектов"]
    assert sorted(build_script.read_mo(path)) == sorted(expected)


@pytest.mark.parametrize(("message", "expected"), [
    ("Ensure this value has at most %(limit_value)d characters (it has %(show_value)d).",
     "Ensure this value has at most characters (it has)."),
    ('Delete selected <a href="%(url)s">%(name)s</a> objects?', "Delete selected objects?"),
    ("Привет, {0}!", "Привет!"),
    ("100%% done &amp; saved", "100% done & saved"),
    ("Line one\nline two", "Line one line two"),
    ("%s:", ""),
    ("50 % des tests, %(n)d échecs", "50 % des tests, échecs"),
])
def test_clean_message(message: str, expected: str, build_script: ModuleType) -> None:
    assert build_script.clean_message(message) == expected


def test_iter_verses_skips_introductions_and_strips_markup(build_script: ModuleType) -> None:
    imp = "\n".join([
        "$$$[ Module Heading ]",
        "$$$Genesis 0:0",
        "<title>Preface</title> An introduction.",
        "$$$Genesis 1:1",
        '<title type="x">Creation</title><w lemma="strong:H1">In</w> <w lemma="strong:H2">the</w> beginning,'
        ' God<note placement="foot"><reference>1:1</reference>Note text.</note> created'
        ' <transChange>the</transChange> heavens &amp; earth .',
        "$$$Psalms 23:1",
        '<l level="1"/>Yahweh is my shepherd:<l level="2"/>I shall lack nothing.',
        "$$$Genesis 1:2",
    ])
    assert list(build_script.iter_verses(imp)) == [
        "In the beginning, God created the heavens & earth.",
        "Yahweh is my shepherd: I shall lack nothing.",
        "",
    ]


def test_selection_filters_dedups_caps_and_is_order_independent(build_script: ModuleType) -> None:
    valid = ["Привет мир", "Сохранить", "Удалить объект", "Отмена"]
    lines = valid[:1] + ["Hello world", "Привет мир", "Д", ""] + valid[1:]
    result = build_script.finish_language("rus_Cyrl", lines, 3, "src", "lic")
    again = build_script.finish_language("rus_Cyrl", list(reversed(lines)), 3, "src", "lic")
    assert result.lines == again.lines == sorted(result.lines)
    assert len(result.lines) == 3 and set(result.lines) < set(valid)
    assert (result.candidates, result.off_script, result.too_short) == (4, 1, 1)


def test_missing_package_is_named_with_its_install_command(build_script: ModuleType, monkeypatch, capsys) -> None:
    monkeypatch.setattr(build_script, "PIP_PACKAGES", {"not_a_real_package_xyz": "NotARealDist"})
    assert build_script.main(["--output-dir", "unused", "--check"]) == 2
    err = capsys.readouterr().err
    assert "pip install NotARealDist" in err and "apt-get install libsword-utils" in err


def test_regenerating_reproduces_the_committed_corpus(build_script: ModuleType) -> None:
    try:
        versions = build_script.source_versions()
    except build_script.MissingSource as err:
        pytest.skip(f"demo corpus sources not installed: {err}")
    committed = build_script.parse_provenance_versions(provenance_path().read_text(encoding="utf-8"))
    if versions != committed:
        pytest.skip(f"installed source versions {versions} differ from the committed ones {committed}")
    results, versions, licences = build_script.build_all()
    files = build_script.rendered_files(results, versions, licences)
    assert build_script.differences(demo_corpus_dir().parent, files) == []
