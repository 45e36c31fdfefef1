"""The official LangSAMP checkpoint format, the parts that need no model: how it is recognised (its config
fields), its language/script id maps (``full_dicts.pkl`` / ``.json``, read without running code) and its tables
inside the state dict. ``model.py`` builds the model from them."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import torch

from langsamp_cli.checkpoint_info import config_fields
from langsamp_cli.errors import LangsampError

OFFICIAL_LANG_KEY = "roberta.embeddings.lang_type_embeddings.weight"
OFFICIAL_SCRIPT_KEY = "roberta.embeddings.script_type_embeddings.weight"
OFFICIAL_CONFIG_FIELDS = ("use_lang_embedding", "use_script_embedding", "lang_size", "script_size",
                          "decouple_at_input_embeddings")
OFFICIAL_MAP_FILES = ("full_dicts.pkl", "full_dicts.json")

IdMaps = tuple[dict[str, int], dict[str, int]]
LangMap = str | Path | IdMaps | None


def is_official_config(fields: dict[str, Any]) -> bool:
    return "use_lang_embedding" in fields or "lang_size" in fields


def is_official(path: Path) -> bool:
    return is_official_config(config_fields(path))


def resolve_id_map(path: Path, lang_map: LangMap) -> IdMaps:
    """The checkpoint's own full_dicts.pkl/.json, else ``lang_map``, else an error naming --lang-map."""
    for name in OFFICIAL_MAP_FILES:
        if (path / name).is_file():
            return read_id_map(path / name)
    if isinstance(lang_map, tuple):
        return lang_map
    if lang_map is not None:
        return read_id_map(lang_map)
    raise LangsampError(
        f"{path}: no language/script id mapping (full_dicts.pkl or full_dicts.json) in the checkpoint; "
        "pass the official one with --lang-map PATH"
    )


def official_tables(path: Path, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The tables the official config says it uses; a flagged table missing from the weights is an error."""
    fields = config_fields(path)
    use_lang, use_script = bool(fields.get("use_lang_embedding", True)), bool(fields.get("use_script_embedding", True))
    tables = []
    for used, key in ((use_lang, OFFICIAL_LANG_KEY), (use_script, OFFICIAL_SCRIPT_KEY)):
        if used and key not in state:
            raise LangsampError(f"{path}: config.json enables the table '{key}' but the weights lack it; "
                                "is the checkpoint complete?")
        tables.append(state.get(key) if used else None)
    return tables[0], tables[1]


def check_table_fits(path: Path, table: torch.Tensor | None, mapping: dict[str, int], what: str) -> None:
    if table is not None and mapping and max(mapping.values()) >= table.shape[0]:
        raise LangsampError(f"{path}: the {what} id map has id {max(mapping.values())} but the {what} table has "
                            f"{table.shape[0]} rows; pass the matching --lang-map")


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers only: any class or function reference is refused, so nothing can execute."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_id_map(path: str | Path) -> IdMaps:
    """(lang2id, script2id) from the official ``full_dicts.pkl`` ([id2lang, id2script, lang2id, script2id])
    or its JSON twin ({"lang2id": ..., "script2id": ...})."""
    path = Path(path)
    if not path.is_file():
        raise LangsampError(f"--lang-map {path}: file not found; pass the official full_dicts.pkl or full_dicts.json")
    if path.suffix == ".json":
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise LangsampError(f"{path}: not valid JSON ({err})") from None
    else:
        try:
            data = _DataOnlyUnpickler(io.BytesIO(path.read_bytes())).load()
        except Exception as err:  # noqa: BLE001 - any malformed pickle is the same user error
            raise LangsampError(f"{path}: not a plain id-map pickle ({err}); only dicts of codes and ids are "
                                "accepted") from None
    return _maps_from(data, path)


def _maps_from(data: Any, path: Path) -> IdMaps:
    if isinstance(data, (list, tuple)) and len(data) == 4:
        lang2id, script2id = data[2], data[3]
    elif isinstance(data, dict) and "lang2id" in data and "script2id" in data:
        lang2id, script2id = data["lang2id"], data["script2id"]
    else:
        raise LangsampError(f"{path}: expected [id2lang, id2script, lang2id, script2id] or {{lang2id, script2id}}")
    check_id_maps(lang2id, script2id, path)
    return dict(lang2id), dict(script2id)


def check_id_maps(lang2id: Any, script2id: Any, path: Path) -> None:
    for mapping in (lang2id, script2id):
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in mapping.items()
        ):
            raise LangsampError(f"{path}: id maps must map codes (str) to non-negative ids (int)")
