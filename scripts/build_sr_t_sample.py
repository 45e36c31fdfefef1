"""Build the tiny SR-T smoke sample shipped in ``langsamp_cli/samples/sr-t/``.

Real English-X pairs, redistributable: the English message ids and their translations in Django's
gettext catalogs (BSD-3-Clause), written in the official Tatoeba file layout
(``tatoeba.{lang}-eng_Latn.{lang}`` + ``tatoeba.{lang}-eng_Latn.eng_Latn``). They are not Tatoeba sentences;
they only let ``langsamp eval sr-t`` run end to end on a fresh install (CI's wheel smoke test, the README).

    pip download --no-deps -d /tmp/django "Django==5.2.19"
    python scripts/build_sr_t_sample.py --django /tmp/django/django-5.2.19-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import re
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "langsamp_cli" / "samples" / "sr-t"
LOCALES = {"fra_Latn": "fr", "rus_Cyrl": "ru", "zho_Hani": "zh_Hans"}
PAIRS = 40
MIN_CHARS, MAX_CHARS = 12, 100
PRINTF_RE = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]|\{[^}]*\}")
TAG_RE = re.compile(r"<[^>]+>")


def _load_demo_builder():
    spec = importlib.util.spec_from_file_location("build_demo_corpus", REPO_ROOT / "scripts" / "build_demo_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


def read_mo_pairs(data: bytes, mo_entries) -> list[tuple[str, str]]:
    """(msgid, msgstr) of every singular entry of a compiled gettext catalog (header and plurals skipped)."""
    pairs = []
    for msgid, msgstr in mo_entries(data):
        source, target = msgid.decode("utf-8"), msgstr.decode("utf-8")
        if source and "\x00" not in source and "\x04" not in source and target:
            pairs.append((source, target))
    return pairs


def catalogs(django: Path, locale: str) -> list[bytes]:
    pattern = re.compile(rf"^django/(?:.+/)?locale/{re.escape(locale)}/LC_MESSAGES/django\.mo$")
    if django.suffix == ".whl":
        with zipfile.ZipFile(django) as wheel:
            return [wheel.read(name) for name in sorted(wheel.namelist()) if pattern.match(name)]
    return [p.read_bytes() for p in sorted(django.glob(f"**/locale/{locale}/LC_MESSAGES/django.mo"))]


def sample(django: Path, locale: str, builder) -> list[tuple[str, str]]:
    """Up to PAIRS (English, translation) pairs, cleaned by the demo-corpus builder's own rules."""
    clean = builder.clean_message
    chosen: dict[str, str] = {}
    for data in catalogs(django, locale):
        for source, target in read_mo_pairs(data, builder.mo_entries):
            if PRINTF_RE.search(source) or TAG_RE.search(source):
                continue  # placeholders make pairs trivially matchable by their markup
            source, target = clean(source), clean(target)
            if MIN_CHARS <= len(source) <= MAX_CHARS and target and target != source:
                chosen.setdefault(source, target)
    ranked = sorted(chosen.items(), key=lambda kv: hashlib.sha256(kv[0].encode()).hexdigest())
    return ranked[:PAIRS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--django", type=Path, required=True, help="Django wheel (.whl) or installed package dir")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    builder = _load_demo_builder()
    args.output.mkdir(parents=True, exist_ok=True)
    for lang, locale in LOCALES.items():
        pairs = sample(args.django, locale, builder)
        if len(pairs) < PAIRS:
            raise SystemExit(f"{locale}: only {len(pairs)} usable pairs in {args.django}")
        stem = args.output / f"tatoeba.{lang}-eng_Latn"
        Path(f"{stem}.{lang}").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
        Path(f"{stem}.eng_Latn").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
        print(f"{lang}: {len(pairs)} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
