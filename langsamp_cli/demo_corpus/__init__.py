"""The small multilingual demo corpus bundled with the package (what `langsamp pretrain` trains on by default).

Real, redistributable text: public-domain Bible verses (English, Spanish) and the translated UI messages of
Django and Sphinx (BSD licences) in 14 more language-scripts. ``PROVENANCE.md`` beside this file names the
source package, version, licence and line count of every file; ``scripts/build_demo_corpus.py`` regenerates it.

The text files live in the ``texts/`` sub-folder (one ``xxx_Scrp.txt`` per language-script, one sentence per
line, Glot500-c layout) so that the folder handed to the corpus reader holds nothing but language files.
"""

from __future__ import annotations

from pathlib import Path

DEMO_LANGUAGES: list[str] = [
    "arb_Arab", "ell_Grek", "eng_Latn", "fra_Latn", "heb_Hebr", "hin_Deva", "jpn_Jpan", "kat_Geor",
    "kor_Hang", "mar_Deva", "pes_Arab", "rus_Cyrl", "spa_Latn", "tha_Thai", "ukr_Cyrl", "zho_Hani",
]


def demo_corpus_dir() -> Path:
    """The folder of language files (``texts/``), ready for ``langsamp pretrain --corpus``."""
    return Path(__file__).resolve().parent / "texts"


def provenance_path() -> Path:
    """``PROVENANCE.md``: sources, versions, licences and line counts of the demo corpus."""
    return Path(__file__).resolve().parent / "PROVENANCE.md"
