#!/usr/bin/env python3
"""Regenerate the bundled demo pretraining corpus (``langsamp_cli/demo_corpus``) from installed packages.

Sources (all redistributable; the licence of each is checked before anything is written):

* public-domain Bible modules from Debian (read with ``mod2imp``): English (World English Bible) and
  Spanish (Reina-Valera 1909), one verse per line;
* translated message catalogs (``msgstr``) shipped inside Django (BSD-3-Clause) and Sphinx (BSD-2-Clause)
  wheels, one message per line, format placeholders and HTML tags removed.

Each language keeps a fixed, hash-selected subset (cap per language), so the output is deterministic:
running the script again with the same package versions reproduces byte-identical files. The script
installs nothing; if a source is missing it says which pip / apt package provides it.

Usage: python scripts/build_demo_corpus.py [--output-dir langsamp_cli/demo_corpus] [--check]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import html
import importlib.metadata
import importlib.util
import re
import shutil
import struct
import subprocess
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "langsamp_cli" / "demo_corpus"
TEXTS_SUBDIR = "texts"
CATALOG_CAP = 1500
MIN_LETTERS = 2  # drops lone letters (weekday/month initials) that carry no sentence context
ALLOWED_PYPI_LICENCES = {"BSD-2-Clause", "BSD-3-Clause", "MIT", "Apache-2.0", "PSF-2.0"}


@dataclass(frozen=True)
class BibleSource:
    lang_script: str
    module: str        # SWORD module name (mods.d/*.conf)
    deb_package: str
    title: str
    cap: int


@dataclass(frozen=True)
class CatalogSource:
    lang_script: str
    django_locale: str
    sphinx_locale: str | None
    cap: int = CATALOG_CAP


BIBLES = [
    BibleSource("eng_Latn", "engWEB2015eb", "sword-text-web", "World English Bible (2020 stable text)", 3000),
    BibleSource("spa_Latn", "spaRV1909eb", "sword-text-sparv", "Reina-Valera 1909", 2000),
]
CATALOGS = [
    CatalogSource("fra_Latn", "fr", "fr"),
    CatalogSource("rus_Cyrl", "ru", "ru"),
    CatalogSource("ukr_Cyrl", "uk", "uk_UA"),
    CatalogSource("arb_Arab", "ar", "ar"),
    CatalogSource("pes_Arab", "fa", "fa"),
    CatalogSource("zho_Hani", "zh_Hans", "zh_CN"),
    CatalogSource("jpn_Jpan", "ja", "ja"),
    CatalogSource("kor_Hang", "ko", "ko"),
    CatalogSource("hin_Deva", "hi", "hi"),
    CatalogSource("mar_Deva", "mr", None),
    CatalogSource("ell_Grek", "el", "el"),
    CatalogSource("heb_Hebr", "he", "he"),
    CatalogSource("tha_Thai", "th", None),
    CatalogSource("kat_Geor", "ka", "ka"),
]
PIP_PACKAGES = {"django": "Django", "sphinx": "Sphinx"}   # import name -> distribution name
APT_PACKAGES = ["libsword-utils"] + [bible.deb_package for bible in BIBLES]

# First words of the Unicode character names that count as each ISO 15924 script (letters only are counted).
SCRIPT_NAME_WORDS = {
    "Latn": ("LATIN",), "Cyrl": ("CYRILLIC",), "Arab": ("ARABIC",), "Hani": ("CJK",),
    "Jpan": ("CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"), "Hang": ("HANGUL", "CJK"), "Deva": ("DEVANAGARI",),
    "Grek": ("GREEK",), "Hebr": ("HEBREW",), "Thai": ("THAI",), "Geor": ("GEORGIAN",),
}


class MissingSource(RuntimeError):
    """A package the corpus is built from is not installed (the message says how to install it)."""


@dataclass
class LanguageResult:
    lang_script: str
    lines: list[str]
    source: str          # human-readable description for PROVENANCE.md
    licence: str
    candidates: int      # distinct kept lines before the cap
    off_script: int      # distinct lines dropped: most of their letters are in another script
    too_short: int       # distinct lines dropped: fewer than MIN_LETTERS letters


# ------------------------------------------------------------------------------------------ selection


@functools.cache
def letter_script_word(char: str) -> str | None:
    """First word of the Unicode name of a letter ("LATIN", "CJK", ...); None for non-letters."""
    return unicodedata.name(char, "?").split(" ", 1)[0] if char.isalpha() else None


def letter_counts(line: str, script: str) -> tuple[int, int]:
    """(letters of ``line`` in ``script``, all letters of ``line``)."""
    words = Counter(map(letter_script_word, line))
    words.pop(None, None)
    in_script = sum(count for word, count in words.items() if word in SCRIPT_NAME_WORDS[script])
    return in_script, sum(words.values())


def stable_key(line: str) -> bytes:
    return hashlib.sha1(line.encode("utf-8")).digest()


def select(lines: Iterable[str], cap: int) -> list[str]:
    """Deduplicate, keep the ``cap`` lines with the smallest hash (an unbiased fixed subset), sort."""
    unique = sorted(set(lines), key=stable_key)
    return sorted(unique[:cap])


def finish_language(lang_script: str, cleaned: list[str], cap: int, source: str, licence: str) -> LanguageResult:
    script = lang_script.split("_")[1]
    kept, off_script, too_short = [], 0, 0
    for line in dict.fromkeys(filter(None, cleaned)):
        in_script, letters = letter_counts(line, script)
        if in_script * 2 <= letters or not letters:
            off_script += 1
        elif in_script < MIN_LETTERS:
            too_short += 1
        else:
            kept.append(line)
    return LanguageResult(lang_script, select(kept, cap), source, licence, len(kept), off_script, too_short)


# ---------------------------------------------------------------------------------------- catalogs

PLACEHOLDER_RE = re.compile(
    r"%%"                                           # a literal percent sign: kept (see clean_message)
    r"|%\([^)]*\)[-#0+]*\d*(?:\.\d+)?[a-zA-Z]"       # %(name)s, %(count)d
    r"|%[-#0+]*\d*(?:\.\d+)?[a-zA-Z]"                # %s, %d, %.2f, strftime %Y (no ' ' flag: "50 % des")
    r"|\{[^{}]*\}"                                    # {0}, {name}
)
DANGLING_COMMA_RE = re.compile(r"[,،、，]\s*([.!?。！？])")  # "Hello, {name}!" -> "Hello!"
TAG_RE = re.compile(r"<[^<>]+>")
SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([.,:;!?)\]»。，、：；！？）])")
CONTROL_CHAR_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc (stray DEL/backspace in catalogs)
EMPTY_PAIR_RE = re.compile("|".join(
    re.escape(left) + r"\s*" + re.escape(right)
    for left, right in ["<>", "()", "[]", "“”", "„“", "«»", '""', "''", "「」", "『』", "（）", "‘’"]))


def clean_message(text: str) -> str:
    """One catalog message as one plain line: placeholders and markup removed, whitespace collapsed."""
    text = PLACEHOLDER_RE.sub(lambda match: "%" if match.group() == "%%" else " ", text)
    text = html.unescape(TAG_RE.sub(" ", text))
    text = " ".join(CONTROL_CHAR_RE.sub(" ", text).split())
    for _ in range(2):  # removing an empty pair can expose another one
        text = EMPTY_PAIR_RE.sub("", text)
        text = SPACE_BEFORE_PUNCT_RE.sub(r"\1", " ".join(text.split()))
        text = DANGLING_COMMA_RE.sub(r"\1", text)
    return text.strip(" :,;-<>")


def mo_entries(data: bytes) -> list[tuple[bytes, bytes]]:
    """(msgid, msgstr) bytes of every entry of a compiled gettext catalog, header included."""
    order = "<" if struct.unpack("<I", data[:4])[0] == 0x950412DE else ">"
    _, count, ids_at, values_at = struct.unpack(order + "4I", data[4:20])
    entries = []
    for index in range(count):
        id_length, id_offset = struct.unpack_from(order + "2I", data, ids_at + 8 * index)
        length, offset = struct.unpack_from(order + "2I", data, values_at + 8 * index)
        entries.append((data[id_offset: id_offset + id_length], data[offset: offset + length]))
    return entries


def read_mo(path: Path) -> list[str]:
    """Every translated string of a compiled gettext catalog (all plural forms; the header entry skipped)."""
    strings = []
    for msgid, msgstr in mo_entries(path.read_bytes()):
        if msgid:  # the entry with an empty msgid is the catalog header (metadata, not text)
            strings.extend(form for form in msgstr.decode("utf-8").split("\x00") if form)
    return strings


def package_dir(import_name: str) -> Path:
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        dist = PIP_PACKAGES[import_name]
        raise MissingSource(f"Python package {dist} is not installed; run: pip install {dist}")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def django_locale_dirs() -> tuple[Path, ...]:
    """Every ``locale`` folder inside Django (conf/locale and each contrib app's), walked once."""
    return tuple(sorted(package_dir("django").glob("**/locale")))


def catalog_files(source: CatalogSource) -> list[Path]:
    files = sorted(mo for locale_dir in django_locale_dirs()
                   for mo in locale_dir.glob(f"{source.django_locale}/LC_MESSAGES/*.mo"))
    if source.sphinx_locale:
        files += sorted(package_dir("sphinx").glob(f"locale/{source.sphinx_locale}/LC_MESSAGES/*.mo"))
    if not files:
        raise MissingSource(f"no Django message catalogs for {source.lang_script} ({source.django_locale}); "
                            "reinstall Django: pip install Django")
    return files


def build_catalog_language(source: CatalogSource) -> LanguageResult:
    cleaned = [clean_message(text) for path in catalog_files(source) for text in read_mo(path)]
    origin = f"Django `{source.django_locale}` catalogs (conf + contrib, django.mo + djangojs.mo)"
    licence = "BSD-3-Clause (Django)"
    if source.sphinx_locale:
        origin += f" + Sphinx `{source.sphinx_locale}` catalog"
        licence += " + BSD-2-Clause (Sphinx)"
    return finish_language(source.lang_script, cleaned, source.cap, origin, licence)


# ------------------------------------------------------------------------------------------ bibles

VERSE_KEY_RE = re.compile(r"^\$\$\$(.+) (\d+):(\d+)$")
DROPPED_ELEMENT_RE = re.compile(r"<(note|title)\b[^>]*?(?<!/)>.*?</\1>", re.DOTALL)
BLOCK_TAG_RE = re.compile(r"</?(?:l|lg|lb|div|p|milestone|chapter|item|list|title|note|speaker)\b[^>]*>")


def clean_verse(osis: str) -> str:
    """Plain text of one OSIS verse: footnotes and headings dropped, word markup removed."""
    text = DROPPED_ELEMENT_RE.sub(" ", osis)
    text = BLOCK_TAG_RE.sub(" ", text)
    text = html.unescape(TAG_RE.sub("", text))
    return SPACE_BEFORE_PUNCT_RE.sub(r"\1", " ".join(CONTROL_CHAR_RE.sub(" ", text).split()))


def iter_verses(imp_text: str) -> Iterator[str]:
    """Verse texts of a ``mod2imp`` dump in canonical order (introductions, chapter 0 / verse 0, skipped)."""
    key: re.Match[str] | None = None
    body: list[str] = []
    for line in imp_text.splitlines() + ["$$$end 0:0"]:
        if line.startswith("$$$"):
            if key and int(key.group(2)) > 0 and int(key.group(3)) > 0:
                yield clean_verse(" ".join(body))
            key, body = VERSE_KEY_RE.match(line), []
        else:
            body.append(line)


def dump_module(module: str) -> str:
    if shutil.which("mod2imp") is None:
        raise MissingSource("mod2imp is not installed; run: apt-get install libsword-utils")
    result = subprocess.run(["mod2imp", module], capture_output=True, text=True, check=False)
    if result.returncode != 0 or "$$$" not in result.stdout:
        deb = next(bible.deb_package for bible in BIBLES if bible.module == module)
        raise MissingSource(f"SWORD module {module} is not installed; run: apt-get install {deb}")
    return result.stdout


def build_bible_language(source: BibleSource) -> LanguageResult:
    verses = list(iter_verses(dump_module(source.module)))
    result = finish_language(source.lang_script, verses, source.cap, "", "public domain")
    keep = set(result.lines)
    result.lines = [verse for verse in dict.fromkeys(verses) if verse in keep]  # canonical book order
    result.source = f"{source.title}, SWORD module `{source.module}`, Debian package `{source.deb_package}`"
    return result


# ------------------------------------------------------------------------------------ provenance


def deb_version(package: str) -> str:
    if shutil.which("dpkg-query") is None:
        raise MissingSource(f"dpkg-query not found: the Bible texts come from Debian package {package}")
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise MissingSource(f"Debian package {package} is not installed; run: apt-get install {package}")
    return result.stdout


def deb_licence(package: str) -> str:
    """The ``License:`` of the ``Files: *`` stanza of the package's Debian copyright file."""
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    stanza = copyright_file.read_text(encoding="utf-8").split("Files: *", 1)[1]
    return re.search(r"^License: (\S+)", stanza, re.MULTILINE).group(1)


def pypi_licence(dist: str) -> str:
    meta = importlib.metadata.metadata(dist)
    return meta.get("License-Expression") or meta.get("License") or "unknown"


def source_versions() -> dict[str, str]:
    """Version of every package the corpus is built from (``pip:`` / ``deb:`` prefixed names)."""
    versions = {}
    for import_name, dist in PIP_PACKAGES.items():
        package_dir(import_name)
        versions[f"pip:{dist}"] = importlib.metadata.version(dist)
    for package in APT_PACKAGES:
        versions[f"deb:{package}"] = deb_version(package)
    return versions


def check_licences() -> dict[str, str]:
    """Refuse to build from a source whose licence is not the permissive/public-domain one expected."""
    licences = {f"pip:{dist}": pypi_licence(dist) for dist in PIP_PACKAGES.values()}
    licences |= {f"deb:{bible.deb_package}": deb_licence(bible.deb_package) for bible in BIBLES}
    for name, licence in licences.items():
        allowed = licence == "public-domain" if name.startswith("deb:") else licence in ALLOWED_PYPI_LICENCES
        if not allowed:
            raise SystemExit(f"{name}: licence is {licence!r}, not one this corpus may ship; update the script")
    return licences


def licence_text(dist: str) -> str:
    files = importlib.metadata.distribution(dist).files or []
    path = next(f for f in files if f.name.startswith("LICENSE") and "python" not in f.name.lower())
    return Path(path.locate()).read_text(encoding="utf-8").strip()


def provenance_markdown(results: list[LanguageResult], versions: dict[str, str], licences: dict[str, str]) -> str:
    rows = [f"| `{r.lang_script}` | {len(r.lines)} | {r.candidates} | {r.off_script} | {r.too_short} "
            f"| {r.licence} | {r.source} |" for r in results]
    package_rows = [f"| `{name}` | {version} | {licences.get(name, 'tool only, no text taken')} |"
                    for name, version in versions.items()]
    return "\n".join([
        "# Demo corpus provenance",
        "",
        "Generated by `scripts/build_demo_corpus.py`; do not edit the text files by hand, rerun the script.",
        "Layout: `texts/xxx_Scrp.txt`, UTF-8, one sentence (Bible verse or UI message) per line, Glot500-c style.",
        "",
        "## Packages (versions the committed files were built from)",
        "",
        "| package | version | licence |",
        "| --- | --- | --- |",
        *package_rows,
        "",
        "## Files",
        "",
        "`lines`: lines in the file; `distinct`: distinct cleaned lines that passed the filters, before the cap;",
        "`off-script`: distinct lines dropped because most of their letters are in another script (or none are",
        f"letters); `short`: distinct lines dropped because fewer than {MIN_LETTERS} letters are in the file's script.",
        "",
        "| file | lines | distinct | off-script | short | licence | source |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "## How the files were made",
        "",
        "* Bible files: `mod2imp MODULE` dump; introductions and chapter/verse 0 skipped; OSIS footnotes and",
        "  headings dropped, all other markup removed, whitespace collapsed; duplicates removed; the verses with",
        "  the smallest SHA-1 of their text are kept up to the cap, in canonical book order. The text of each",
        "  verse is otherwise unchanged; this excerpt is not itself 'the World English Bible' (its trademark",
        "  notice asks that changed text not carry the name).",
        "* Catalog files: every translated `msgstr` (all plural forms) of the compiled `.mo` catalogs (fuzzy",
        "  entries are not compiled in, so they are absent); printf/format placeholders (`%(name)s`, `%s`,",
        "  `{0}`), HTML tags and control characters removed, entities unescaped, empty brackets/quotes and",
        "  commas left dangling removed, whitespace collapsed; deduplicated; lines whose letters are mostly",
        f"  in another script, or with fewer than {MIN_LETTERS} letters in the file's script, dropped; the",
        f"  {CATALOG_CAP} lines with the smallest SHA-1 kept (cap); sorted by code point.",
        "* Language ids: ISO 639-3 + ISO 15924. Django `ar` (Modern Standard Arabic UI text) -> `arb_Arab` and",
        "  `fa` (Iranian Persian) -> `pes_Arab`, as Glot500-c names them; `zh_Hans` -> `zho_Hani` (Han script).",
        "",
        "## Licences",
        "",
        "* Bible texts: public domain (Debian copyright files of `sword-text-web` and `sword-text-sparv`:",
        "  `License: public-domain`). \"World English Bible\" is a trademark of eBible.org.",
        "* Django translations are distributed under Django's licence (catalog headers: \"This file is",
        "  distributed under the same license as the Django package\"); Sphinx translations likewise under",
        "  Sphinx's licence. Both notices follow, as their licences require.",
        "",
        "### Django (BSD-3-Clause)",
        "",
        "```text",
        licence_text("Django"),
        "```",
        "",
        "### Sphinx (BSD-2-Clause)",
        "",
        "```text",
        licence_text("Sphinx"),
        "```",
        "",
    ])


def parse_provenance_versions(markdown: str) -> dict[str, str]:
    """The package -> version table of a PROVENANCE.md written by this script."""
    return dict(re.findall(r"^\| `((?:pip|deb):[^`]+)` \| ([^|]+?) \|", markdown, re.MULTILINE))


# ------------------------------------------------------------------------------------------- build


def build_all() -> tuple[list[LanguageResult], dict[str, str], dict[str, str]]:
    versions = source_versions()
    licences = check_licences()
    results = [build_bible_language(bible) for bible in BIBLES]
    results += [build_catalog_language(catalog) for catalog in CATALOGS]
    return sorted(results, key=lambda r: r.lang_script), versions, licences


def rendered_files(results: list[LanguageResult], versions: dict[str, str],
                   licences: dict[str, str]) -> dict[str, str]:
    """Relative path -> file content for everything the script writes."""
    files = {f"{TEXTS_SUBDIR}/{r.lang_script}.txt": "\n".join(r.lines) + "\n" for r in results}
    files["PROVENANCE.md"] = provenance_markdown(results, versions, licences)
    return files


def write_corpus(output_dir: Path, files: dict[str, str]) -> None:
    """Replace ``texts/`` in one rename (stale languages disappear) and PROVENANCE.md atomically."""
    from langsamp_cli.io_utils import atomic_dir, atomic_write_text

    with atomic_dir(output_dir / TEXTS_SUBDIR) as tmp:
        tmp.chmod(0o755)  # temp dirs are private; the corpus is package data everyone reads
        for rel, text in files.items():
            if rel.startswith(f"{TEXTS_SUBDIR}/"):
                (tmp / Path(rel).name).write_text(text, encoding="utf-8")
    atomic_write_text(output_dir / "PROVENANCE.md", files["PROVENANCE.md"]).chmod(0o644)


def differences(output_dir: Path, files: dict[str, str]) -> list[str]:
    """Relative paths whose committed content differs from ``files`` (or is missing / extra)."""
    texts = output_dir / TEXTS_SUBDIR
    existing = {f"{TEXTS_SUBDIR}/{p.name}" for p in texts.glob("*.txt")} if texts.is_dir() else set()
    changed = [rel for rel, text in files.items()
               if not (output_dir / rel).is_file() or (output_dir / rel).read_text(encoding="utf-8") != text]
    return sorted(changed + sorted(existing - files.keys()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the files would change")
    args = parser.parse_args(argv)
    try:
        results, versions, licences = build_all()
    except MissingSource as err:
        print(f"error: {err}", file=sys.stderr)
        print(f"needs: pip install {' '.join(PIP_PACKAGES.values())}; apt-get install {' '.join(APT_PACKAGES)}",
              file=sys.stderr)
        return 2
    files = rendered_files(results, versions, licences)
    if args.check:
        changed = differences(args.output_dir, files)
        print("up to date" if not changed else "would change: " + ", ".join(changed))
        return 1 if changed else 0
    write_corpus(args.output_dir, files)
    for result in results:
        print(f"{result.lang_script}\t{len(result.lines)} lines\t{result.licence}")
    print(f"wrote {len(results)} languages to {args.output_dir / TEXTS_SUBDIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
