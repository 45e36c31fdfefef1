"""What a checkpoint folder holds, read without building a model: its config fields and weight names.

Torch-free (the names inside a ``.bin`` file need torch, imported only then), so that result provenance
and cache keys can say which loading adjustments a checkpoint needs without loading it. ``model.load_backbone``
applies the same adjustments and uses the same names for them.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

TOKEN_TYPE_KEY = "embeddings.token_type_embeddings.weight"
# Adjustment names, as recorded in provenance and mixed into the model fingerprint.
TOKEN_TYPE_ZEROS = "token_type_embeddings=zeros"
TYPE_VOCAB_ONE = "type_vocab_size=1"
MLM_HEAD_RANDOM = "mlm_head=random"
# Families whose embeddings hold a token-type table even when config.json omits type_vocab_size.
_TOKEN_TYPE_MODELS = {"bert", "roberta", "xlm-roberta", "camembert", "electra", "xlm-roberta-xl"}
_names_memo: dict[str, set[str] | None] = {}


def weight_files(path: Path) -> list[Path]:
    """The weight files of a checkpoint folder (all shards of a sharded one); safetensors first."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = path / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            return [path / shard for shard in shards]
    return [p for p in (path / "model.safetensors", path / "pytorch_model.bin") if p.is_file()][:1]


def config_fields(path: Path) -> dict[str, Any]:
    """config.json of a folder as a dict; {} when absent or unreadable (the loader reports those itself)."""
    try:
        fields = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return fields if isinstance(fields, dict) else {}


def weight_names(path: Path) -> set[str] | None:
    """Every tensor name the checkpoint's weight files hold; None when they cannot be read."""
    path = Path(path)
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index_name).is_file():
            try:
                return set(json.loads((path / index_name).read_text(encoding="utf-8"))["weight_map"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
    files = weight_files(path)
    if not files:
        return None
    stat = files[0].stat()
    memo_key = f"{files[0].resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if memo_key not in _names_memo:
        _names_memo[memo_key] = _names_in(files[0])
    return _names_memo[memo_key]


def _names_in(file: Path) -> set[str] | None:
    try:
        if file.suffix == ".safetensors":
            with file.open("rb") as handle:
                (header_size,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(header_size))
            return {name for name in header if name != "__metadata__"}
        import torch

        try:
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # the legacy (non-zip) format cannot be memory-mapped
            state = torch.load(file, map_location="cpu", weights_only=True)
        return set(state)
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the loader, not here
        return None


def has_token_types(fields: dict[str, Any]) -> bool:
    return "type_vocab_size" in fields or fields.get("model_type") in _TOKEN_TYPE_MODELS


def input_side_tables(fields: dict[str, Any]) -> bool:
    """True for an official checkpoint that adds its language/script tables to the input embeddings."""
    return bool(fields.get("decouple_at_input_embeddings")) and bool(
        fields.get("use_lang_embedding") or fields.get("use_script_embedding")
    )


def planned_adjustments(folder: str | Path | None) -> list[str]:
    """The adjustments ``load_backbone`` applies to this checkpoint folder (its head aside), read from files only."""
    if folder is None or not Path(folder).is_dir():
        return []
    fields = config_fields(Path(folder))
    if not has_token_types(fields):
        return []
    adjustments = []
    type_vocab = fields.get("type_vocab_size")
    if isinstance(type_vocab, int) and type_vocab < 1:
        adjustments.append(TYPE_VOCAB_ONE)
    names = weight_names(Path(folder))
    if adjustments or (names is not None and not any(name.endswith(TOKEN_TYPE_KEY) for name in names)):
        adjustments.append(TOKEN_TYPE_ZEROS)
    return adjustments


def model_adjustments(model: str | Path | None) -> list[str] | None:
    """``planned_adjustments`` of a local folder or a hub name's cached snapshot; None when neither is here."""
    if model is None:
        return None
    folder: Path | None = Path(model) if Path(model).is_dir() else None
    if folder is None:
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(model), local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached / not a repo id: nothing to say
            return None
    return planned_adjustments(folder)
