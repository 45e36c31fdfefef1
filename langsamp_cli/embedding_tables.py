"""A LangSAMP checkpoint's language and script embedding tables: where the checkpoint is, and which row serves an id.

``open_tables(model, lang_map)`` is the one way `plot-embeddings` and `donor` get the tables: the name checked
as every ``--model`` is, a local folder used as is, a hub name taken from the Hugging Face cache (downloaded
only when missing and online), the released checkpoint when ``model`` is None. Reading the files themselves is
:func:`load_embedding_tables` (no backbone is built). ``language_key`` / ``script_key`` find the row serving a
``lang_Script`` id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from langsamp_cli.errors import LangsampError

DEFAULT_MODEL = "yihongLiu/LangSAMP"


@dataclass
class OpenedTables:
    """The tables of one checkpoint and where they came from."""

    tables: EmbeddingTables
    model: str | None  # --model as checked (a user path expanded); None for the released checkpoint
    path: str          # the local checkpoint folder
    found: str         # how it was found: local path, Hugging Face cache, downloaded


@dataclass
class EmbeddingTables:
    lang: np.ndarray | None    # (num_languages, hidden) float32
    script: np.ndarray | None  # (num_scripts, hidden) float32
    lang2id: dict[str, int]
    script2id: dict[str, int]


def load_embedding_tables(path: str | Path, lang_map: Any = None) -> EmbeddingTables:
    """Only the learned tables and id maps of a checkpoint, ours or the official format (no backbone is built).

    ``lang_map``: the official id map (a path or a (lang2id, script2id) pair) for an official checkpoint without one.
    """
    from langsamp_cli import model as checkpoints
    from langsamp_cli.official_format import (OFFICIAL_LANG_KEY, OFFICIAL_SCRIPT_KEY, check_table_fits, is_official,
                                              official_tables, resolve_id_map)

    local = checkpoints.local_checkpoint(path)
    checkpoints.note_unused_lang_map(local, lang_map)
    if local is not None and (local / checkpoints.META_FILE).is_file():
        result = _our_tables(local)
    elif local is not None and is_official(local):
        lang2id, script2id = resolve_id_map(local, lang_map)
        state = checkpoints.read_state_dict(local, {OFFICIAL_LANG_KEY, OFFICIAL_SCRIPT_KEY})
        lang, script = official_tables(local, state)
        check_table_fits(local, lang, lang2id, "language")
        check_table_fits(local, script, script2id, "script")
        result = EmbeddingTables(_f32(lang), _f32(script), lang2id, script2id)
    else:
        result = EmbeddingTables(None, None, {}, {})
    if result.lang is None and result.script is None:
        raise checkpoints.no_tables_error(path)
    return result


def _our_tables(path: Path) -> EmbeddingTables:
    from safetensors.numpy import load_file

    from langsamp_cli import model as checkpoints

    meta = checkpoints.read_meta(path)
    tables_file = path / checkpoints.TABLES_FILE
    with checkpoints.naming_damaged(tables_file):
        tables = load_file(str(tables_file)) if tables_file.is_file() else {}
    return EmbeddingTables(_f32(tables.get(checkpoints.LANG_KEY)), _f32(tables.get(checkpoints.SCRIPT_KEY)),
                           meta["lang2id"], meta["script2id"])


def _f32(table: Any) -> np.ndarray | None:
    if table is None:
        return None
    if hasattr(table, "detach"):  # a torch tensor
        table = table.detach().float().cpu().numpy()
    return np.asarray(table, dtype=np.float32)


def open_tables(model: str | None, lang_map: str | Path | None = None) -> OpenedTables:
    """The embedding tables of ``--model`` (None: the released checkpoint); a folder of tables is enough."""
    from langsamp_cli.model_source import resolve_model

    if model is None:
        resolve_model(DEFAULT_MODEL, default=True)
    else:
        model = resolve_model(model, needs_config=False)
    path, found = resolve_checkpoint(model)
    tables = load_embedding_tables(path, lang_map=str(lang_map) if lang_map else None)
    return OpenedTables(tables, model, path, found)


def _offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("TRANSFORMERS_OFFLINE", "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def resolve_checkpoint(model: str | None) -> tuple[str, str]:
    """(local path, how it was found) for ``--model``; the released checkpoint when omitted.

    A local directory is used as is. A hub name is looked up in the Hugging Face cache first (no
    network); only when it is missing and we are not offline is it downloaded.
    """
    if model and Path(model).expanduser().exists():
        return str(Path(model).expanduser()), "local path"
    name = model or DEFAULT_MODEL
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True), "Hugging Face cache"
    except Exception:  # noqa: BLE001 - any failure here only means "not cached"; we try the network next
        pass
    hint = ("pass --model PATH (a LangSAMP checkpoint directory, ours or the official format)" if model is None
            else "check the name, or pass a local LangSAMP checkpoint directory (ours or the official format)")
    if _offline():
        raise LangsampError(f"{name} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
                            f"download it once while online or {hint}")
    try:
        return snapshot_download(name, etag_timeout=10, ignore_patterns=["*.h5", "*.msgpack", "*.onnx", "*.ot"]), \
            "downloaded"
    except Exception as err:  # noqa: BLE001 - network/auth/repo errors all end the same way for the user
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise LangsampError(f"cannot get {name} from the Hugging Face hub ({first}); {hint}") from err


def alias_ids(lang_script: str) -> list[str]:
    """The other ids naming the same language (zho_Hani <-> zho_Hans ...); none for an unknown id."""
    try:
        from langsamp_cli.languages import lang_script_aliases

        return [a for a in lang_script_aliases(lang_script) if a != lang_script]
    except (ImportError, LangsampError):
        return []


def language_key(lang_script: str, key2id: dict[str, int]) -> str | None:
    """The row of the language table serving ``lang_script``: the id itself, its ISO code, then aliases."""
    for candidate in [lang_script, *alias_ids(lang_script)]:
        for key in (candidate, candidate.split("_", 1)[0]):
            if key in key2id:
                return key
    return None


def script_key(lang_script: str, key2id: dict[str, int]) -> str | None:
    """The row of the script table serving ``lang_script``: its script, then its aliases' scripts."""
    for candidate in [lang_script, *alias_ids(lang_script)]:
        script = candidate.split("_", 1)[1] if "_" in candidate else None
        if script in key2id:
            return script
    return None
