"""Tasks the evaluation commands drive: retrieval.py, classification.py, tagging.py, transfer.py."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from rich.console import Console

from langsamp_cli.errors import LangsampError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from langsamp_cli.tasks.task_settings import TaskSettings

SettingsT = TypeVar("SettingsT", bound="TaskSettings")

_HAS_SCRIPT = re.compile(r"[_-][A-Za-z]{4}$")


def requested_languages(value) -> tuple[list[str] | None, frozenset[str]]:
    """``--languages`` (a comma list, a file, or a YAML list) -> (canonical ids or None, ids given without a script).

    A bare code (``uzb``, ``en``) gets its main script from ``parse_language_list``; the second set
    lets the data serve it in another script when that is all there is (``match_requested``).
    """
    from langsamp_cli.languages import canonical_id, names_a_file, parse_language_list

    if isinstance(value, (list, tuple)):
        value = ",".join(map(str, value))
    ids = parse_language_list(value)
    if ids is None:
        return None, frozenset()
    path = Path(str(value))
    if names_a_file(path):
        lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
        items = [line.split()[0] for line in lines if line]
    else:
        items = [part.strip() for part in str(value).split(",") if part.strip()]
    return ids, frozenset(canonical_id(item) for item in items if not _HAS_SCRIPT.search(item))


def check_model(settings: SettingsT, explicit_max_length: bool) -> tuple[SettingsT, PretrainedConfig]:
    """After the cheap checks (flags, data, languages), before any weights load: ``settings`` with the model
    resolved (a missing one or one without a tokenizer is an error) and max_length fitted to it, and the
    model's config (read here once for the whole command)."""
    from langsamp_cli.model import load_config, usable_positions
    from langsamp_cli.model_source import require_tokenizer, resolve_model

    model = resolve_model(settings.model)
    require_tokenizer(model)
    config = load_config(model)
    max_length = fitted_max_length(model, settings.max_length, usable_positions(config), explicit_max_length)
    return replace(settings, model=model, max_length=max_length), config


def fitted_max_length(model: str, wanted: int, limit: int | None, explicit: bool) -> int:
    """``wanted`` capped at ``limit``, the tokens ``model`` can take (its position embeddings; None: no limit).

    The task defaults (512 for retrieval, 256 for transfer) are the paper's; a model with fewer
    positions (the 128-token demo models) would crash on them, so a configured value is capped, with
    a note. XLM-R-sized models take 512, so their settings never change. An ``explicit`` value (a
    --max-length flag) is not changed: too large is a one-line error.
    """
    usable = wanted if limit is None else min(wanted, limit)
    if usable >= wanted:
        return wanted
    if explicit:
        raise LangsampError(f"--max-length {wanted} is more than {model} takes ({usable} tokens with "
                            f"<s> and </s>); pass --max-length {usable} or less")
    Console(stderr=True, emoji=False).print(
        f"note: max_length {wanted} capped at {usable}, the most {model} takes (its position embeddings); "
        "pass --max-length to choose", highlight=False, soft_wrap=True)
    return usable
