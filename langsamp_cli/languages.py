"""Language-script ids (``eng_Latn``): parsing, aliases, script detection and report groups.

Canonical ids are ISO 639-3 + ``_`` + ISO 15924 (``eng_Latn``, ``zho_Hani``), as Glot500 and LangSAMP use.
The group facts (head = covered by XLM-R, language family) are data files in ``langsamp_cli/task_configs/languages/``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from langsamp_cli.errors import LangsampError

GROUP_ORDER = ["tail", "head", "Latn", "non-Latn", "all"]
# Shipped inside the package (langsamp_cli/task_configs/languages), so an installed wheel has them too.
LANGUAGE_TABLES = Path(__file__).resolve().parent / "task_configs" / "languages"

# A canonical id as a file name or key: ISO 639-3 (three letters) + "_" + ISO 15924 script.
LANG_SCRIPT_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
_ID_RE = re.compile(r"^([A-Za-z]{2,8})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|\d{3}))?$")

# Script codes that ISO 15924 lists but pycountry may lack, plus the composite codes Glot500 uses.
_EXTRA_SCRIPTS = {"Hani", "Hans", "Hant", "Jpan", "Kore", "Hang", "Zyyy", "Zinh", "Zzzz"}

# Equivalence classes of ids that name the same data under different conventions (FLORES vs Glot500 vs ISO macro).
_ALIAS_CLASSES: list[tuple[str, ...]] = [
    ("zho_Hani", "zho_Hans", "zho_Hant", "cmn_Hani", "cmn_Hans", "cmn_Hant"),
    ("swa_Latn", "swh_Latn"),
    ("arb_Arab", "ara_Arab"),
    ("pes_Arab", "fas_Arab"),
    ("zsm_Latn", "msa_Latn"),
    ("npi_Deva", "nep_Deva"),
    ("ekk_Latn", "est_Latn"),
    ("lvs_Latn", "lav_Latn"),
    ("azj_Latn", "aze_Latn"),
    ("uzn_Latn", "uzb_Latn"),
    ("khk_Cyrl", "mon_Cyrl"),
    ("plt_Latn", "mlg_Latn"),
    ("als_Latn", "sqi_Latn"),
    ("gaz_Latn", "orm_Latn"),
    ("pbt_Arab", "pus_Arab"),
    ("ory_Orya", "ori_Orya"),
    ("tgl_Latn", "fil_Latn"),
    ("nob_Latn", "nor_Latn"),
    ("kmr_Latn", "kur_Latn"),
    ("yue_Hani", "yue_Hant"),
    ("quy_Latn", "que_Latn"),
    ("ayr_Latn", "aym_Latn"),
    ("kor_Hang", "kor_Kore"),
]

# LASER Tatoeba file codes whose Glot500 id is not "<code>_<main script>".
_LASER_SPECIAL = {
    "cmn": "cmn_Hani",
    "yue": "yue_Hani",
    "wuu": "wuu_Hani",
    "jpn": "jpn_Jpan",
    "kor": "kor_Hang",
    "ber": "ber_Latn",
    "kab": "kab_Latn",
    "kur": "kur_Latn",
    "arq": "arq_Arab",
    "ara": "ara_Arab",
    "kzj": "kzj_Latn",  # Coastal Kadazan: retired in ISO 639-3 (merged into dtp, which has its own file)
    "tat": "tat_Cyrl",
    "uig": "uig_Arab",
    "srp": "srp_Latn",
    "bos": "bos_Latn",
    "aze": "aze_Latn",
    "uzb": "uzb_Cyrl",
    "kaz": "kaz_Cyrl",
    "mon": "mon_Cyrl",
    "tuk": "tuk_Latn",
    "swh": "swh_Latn",
    "pes": "pes_Arab",
    "zsm": "zsm_Latn",
    "yid": "yid_Hebr",
    "dsb": "dsb_Latn",
    "hsb": "hsb_Latn",
    "awa": "awa_Deva",
    "mhr": "mhr_Cyrl",
}


@dataclass(frozen=True)
class LangScript:
    lang: str
    script: str

    @property
    def id(self) -> str:
        return f"{self.lang}_{self.script}"

    def __str__(self) -> str:
        return self.id


# Codes that real multilingual data sets still use although ISO 639-3 retired them (ajp -> apc, kzj -> dtp,
# eml -> egl/rgn) or that are ISO 639-2/5 collective codes (ber, nah): Glot500, FLORES and Tatoeba name data with them.
_RETIRED_OR_COLLECTIVE = frozenset({"ajp", "kzj", "eml", "ber", "nah"})


@lru_cache(maxsize=1)
def _iso639_3_codes() -> frozenset[str]:
    import pycountry

    return frozenset(lang.alpha_3 for lang in pycountry.languages) | _RETIRED_OR_COLLECTIVE


@lru_cache(maxsize=1)
def _iso639_1_to_3() -> dict[str, str]:
    import pycountry

    return {lang.alpha_2: lang.alpha_3 for lang in pycountry.languages if hasattr(lang, "alpha_2")}


@lru_cache(maxsize=1)
def _iso639_2b_to_3() -> dict[str, str]:
    import pycountry

    return {lang.bibliographic: lang.alpha_3 for lang in pycountry.languages if hasattr(lang, "bibliographic")}


@lru_cache(maxsize=1)
def _script_codes() -> frozenset[str]:
    import pycountry

    return frozenset(s.alpha_4 for s in pycountry.scripts) | _EXTRA_SCRIPTS


def _suggest(value: str, options: frozenset[str] | list[str]) -> str:
    prefixed = [opt for opt in (value[:4], value[:3]) if opt in options]
    close = list(dict.fromkeys(prefixed + difflib.get_close_matches(value, sorted(options), n=5, cutoff=0.6)))[:5]
    return f"; did you mean: {', '.join(close)}" if close else ""


@lru_cache(maxsize=4096)
def parse_language(code: str) -> str:
    """Any ISO 639 code (``en``, ``eng``, ``ger``) -> ISO 639-3, else LangsampError with close matches."""
    value = code.strip().lower()
    if value in _iso639_3_codes():
        return value
    if value in _iso639_1_to_3():
        return _iso639_1_to_3()[value]
    if value in _iso639_2b_to_3():
        return _iso639_2b_to_3()[value]
    by_name = _language_by_name(value)
    if by_name:
        return by_name
    raise LangsampError(
        f"unknown language code '{code}' (expected ISO 639-1/-3, e.g. 'eng' or 'en'){_suggest(value, _iso639_3_codes())}"
    )


def _language_by_name(name: str) -> str | None:
    import pycountry

    try:
        return pycountry.languages.lookup(name).alpha_3
    except LookupError:
        return None


@lru_cache(maxsize=512)
def parse_script(code: str) -> str:
    """Any ISO 15924 code in any case (``latn``) -> title case (``Latn``)."""
    value = code.strip().title()
    if value in _script_codes():
        return value
    raise LangsampError(f"unknown script code '{code}' (expected ISO 15924, e.g. 'Latn'){_suggest(value, _script_codes())}")


@lru_cache(maxsize=4096)
def main_script(lang: str) -> str | None:
    """The usual script of an ISO 639-3 language (CLDR likely subtags via langcodes), or None if unknown."""
    import langcodes

    try:
        script = langcodes.Language.get(lang).maximize().script
    except (LookupError, ValueError):
        return None
    if script in ("Hans", "Hant"):
        return "Hani"
    return script


def parse_lang_script(code: str, text_sample: str | None = None) -> LangScript:
    """``eng_Latn``, ``eng-Latn``, ``en``, ``zh-Hans``, ``eng`` ... -> LangScript.

    A bare language gets its usual script, or the script detected in ``text_sample`` when given.
    """
    if isinstance(code, LangScript):
        return code
    match = _ID_RE.match(code.strip())
    if not match:
        raise LangsampError(f"'{code}' is not a language-script id; write it like 'eng_Latn' (ISO 639-3 + ISO 15924)")
    lang = parse_language(match.group(1))
    if match.group(2):
        return LangScript(lang, parse_script(match.group(2)))
    script = detect_script(text_sample) if text_sample else main_script(lang)
    if script is None:
        raise LangsampError(f"no known script for language '{code}'; write it with its script, like '{lang}_Latn'")
    return LangScript(lang, script)


def canonical_id(code: str) -> str:
    return parse_lang_script(code).id


# Language + script as file names write it, ISO 639-1 codes and hyphens included (``en-Latn``).
_WRITTEN_ID_RE = re.compile(r"^[a-z]{2,3}[_-][A-Z][a-z]{3}$")


def written_id(name: str) -> str | None:
    """The canonical id of a name written as language + script (``eng_Latn``, ``en-Latn``); None otherwise."""
    return parse_lang_script(name).id if _WRITTEN_ID_RE.match(name) else None


def id_with_detected_script(code: str, sample: str | None) -> str:
    """``code``'s language with the script detected in ``sample``; its usual script when none is detected."""
    script = detect_script(sample) if sample else None
    if script and script not in ("Zyyy", "Zinh", "Zzzz"):
        return f"{parse_language(code)}_{script}"
    return parse_lang_script(code, text_sample=sample or None).id


_HAN_LIKE = {"Hani", "Hans", "Hant"}


def detect_script(text: str) -> str:
    """The majority ISO 15924 script of the letters in ``text`` (GlotScript's Unicode ranges).

    Han mixed with kana is Japanese (``Jpan``); Hangul (with or without Han) is ``Hang``; Han alone is ``Hani``.
    """
    from GlotScript import sp

    script, _, info = sp(text)
    details: dict[str, float] = info.get("details", {}) if isinstance(info, dict) else {}
    if not details:
        raise LangsampError("cannot detect a script: the text has no letters")
    if {"Hira", "Kana"} & set(details):
        return "Jpan"
    if "Hang" in details and details["Hang"] >= max(details.values()) * 0.5:
        return "Hang"
    if script in _HAN_LIKE:
        return "Hani"
    return script


def names_a_file(path: Path) -> bool:
    """Whether ``path`` is a file; a comma list too long to be a file name (ENAMETOOLONG) is not one."""
    try:
        return path.is_file()
    except OSError:
        return False


def parse_language_list(value: str | None, flag: str = "--languages") -> list[str] | None:
    """A comma list or a file (one id per line, first column; '#' comments) -> canonical ids, in order, deduplicated.

    None means "every language"; an empty value, or a file with no id in it, is an error (never "every language"
    and never "none"). ``flag`` is the option errors name.
    """
    if value is None:
        return None
    path = Path(value)
    items: list[tuple[str, str]] = []
    if str(value).strip() and names_a_file(path):
        for number, line in enumerate(read_utf8_text(path).splitlines(), start=1):
            stripped = line.split("#", 1)[0].strip()
            if stripped:
                items.append((stripped.split()[0], f"{path}:{number}"))
        if not items:
            raise LangsampError(f"{path}: no language ids in the file (only blank lines or # comments); "
                                f"list one id per line, e.g. eng_Latn, or leave {flag} out for every language")
    else:
        items = [(part.strip(), flag) for part in str(value).split(",") if part.strip()]
        if not items:
            raise LangsampError(f"{flag} {str(value)!r}: no language ids given; pass a comma list such as "
                                f"eng_Latn,deu_Latn or a file, or leave {flag} out for every language")
    ids: list[str] = []
    for item, where in items:
        try:
            lang_id = canonical_id(item)
        except LangsampError as err:
            raise LangsampError(f"{where}: {err}") from None
        if lang_id not in ids:
            ids.append(lang_id)
    return ids


def read_utf8_text(path: Path) -> str:
    """The text of a small user file; not UTF-8 is a one-line error naming the line and byte offset."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # an editor's invisible byte-order mark is no text
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise LangsampError(f"{path}:{line}: not UTF-8 text (byte offset {err.start}); "
                            "save the file as UTF-8") from None


def _read_table_lines(name: str) -> list[list[str]]:
    rows = []
    for line in (LANGUAGE_TABLES / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            rows.append(line.split("\t"))
    return rows


@lru_cache(maxsize=1)
def head_language_scripts() -> frozenset[str]:
    """Language-scripts covered by XLM-R (the paper's 'head' group)."""
    return frozenset(row[0] for row in _read_table_lines("xlmr_head.tsv"))


@lru_cache(maxsize=1)
def language_families() -> dict[str, str]:
    families: dict[str, str] = {}
    for family, codes in _read_table_lines("families.tsv"):
        for code in codes.split():
            families[code] = family
    return families


def _split_id(lang_script: str) -> tuple[str, str]:
    lang, _, script = lang_script.partition("_")
    return lang, script


def groups_for(lang_script: str) -> dict[str, str | None]:
    """The paper's groups for one id: head/tail, Latn/non-Latn, and the language family when known."""
    lang, script = _split_id(lang_script)
    return {
        "head_tail": "head" if lang_script in head_language_scripts() else "tail",
        "script_group": "Latn" if script == "Latn" else "non-Latn",
        "family": language_families().get(lang),
    }


@lru_cache(maxsize=1)
def _alias_index() -> dict[str, tuple[str, ...]]:
    return {member: cls for cls in _ALIAS_CLASSES for member in cls}


def lang_script_aliases(lang_script: str) -> list[str]:
    """Other ids that name the same language-script under another convention (FLORES, ISO macrolanguage ...)."""
    return [alias for alias in _alias_index().get(lang_script, ()) if alias != lang_script]


def resolve_alias(wanted: str, available: list[str] | set[str]) -> str | None:
    """``wanted`` if available, else the first available alias of it (e.g. zho_Hani -> zho_Hans), else None."""
    available = set(available)
    if wanted in available:
        return wanted
    return next((alias for alias in lang_script_aliases(wanted) if alias in available), None)


def laser_code_to_lang_script(code: str) -> str:
    """A LASER Tatoeba file code (``cmn``, ``swh``, ``ber`` ...) -> the ``xxx_Scrp`` id Glot500/LangSAMP report."""
    code = code.strip().lower()
    if code in _LASER_SPECIAL:
        return _LASER_SPECIAL[code]
    return parse_lang_script(code).id


