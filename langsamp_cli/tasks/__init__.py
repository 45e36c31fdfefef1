"""Tasks the evaluation commands drive: retrieval.py, classification.py, tagging.py, transfer.py."""

from __future__ import annotations

import re
from pathlib import Path

from langsamp_cli.errors import LangsampError

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


def fit_max_length(settings: dict, console, explicit: bool = False) -> None:
    """Fit ``settings["max_length"]`` to what ``settings["model"]`` can take (its position embeddings).

    The task defaults (512 for retrieval, 256 for transfer) are the paper's; a model with fewer
    positions (the 128-token demo models) would crash on them, so a configured value is capped, with
    a note. XLM-R-sized models take 512, so their settings never change. An ``explicit`` value (a
    --max-length flag) is not changed: too large is a one-line error.
    """
    wanted = int(settings["max_length"])
    limit = model_length_limit(str(settings["model"]))
    usable = wanted if limit is None else min(wanted, limit)
    if usable >= wanted:
        return
    if explicit:
        raise LangsampError(f"--max-length {wanted} is more than {settings['model']} takes ({usable} tokens with "
                            f"<s> and </s>); pass --max-length {usable} or less")
    console.print(f"note: max_length {wanted} capped at {usable}, the most {settings['model']} takes "
                  "(its position embeddings); pass --max-length to choose", highlight=False, soft_wrap=True)
    settings["max_length"] = usable


def model_length_limit(model: str) -> int | None:
    """Tokens (with <s> and </s>) a model's position embeddings allow; None when unknown (never the network)."""
    from langsamp_cli.model import model_usable_positions

    return model_usable_positions(model)
