"""The four model variants: which of the language and script embeddings a model adds to its LM head.

A module of its own (no torch) so that planning an experiment need not load the model code.
"""

from __future__ import annotations

from langsamp_cli.errors import LangsampError

VARIANTS = ("vanilla", "lang", "script", "both")


def variant_flags(variant: str) -> tuple[bool, bool]:
    """(use_lang, use_script) of a variant name."""
    if variant not in VARIANTS:
        raise LangsampError(f"unknown variant '{variant}'; choose one of {', '.join(VARIANTS)}")
    return variant in ("lang", "both"), variant in ("script", "both")


def variant_name(use_lang: bool, use_script: bool) -> str:
    return {(False, False): "vanilla", (True, False): "lang", (False, True): "script", (True, True): "both"}[
        (use_lang, use_script)
    ]
