"""The LangSAMP model: any HF masked LM plus language/script embeddings added before the LM head.

During pretraining the language embedding (L x D) and script embedding (S x D) are added to the
transformer's last hidden state at the masked positions only, and the LM head runs on those rows only
(so a 250k vocabulary stays affordable). The backbone is saved as a plain HF masked LM, loadable with
``AutoModel`` / ``AutoModelForMaskedLM`` and no custom code; the tables and id maps sit beside it.
Also reads the official LangSAMP checkpoint format (tables inside the state dict, ``full_dicts.pkl``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_dir, atomic_write_json

VARIANTS = ("vanilla", "lang", "script", "both")
FORMAT_VERSION = 1
TABLES_FILE = "langsamp_embeddings.safetensors"
META_FILE = "langsamp.json"
OFFICIAL_LANG_KEY = "roberta.embeddings.lang_type_embeddings.weight"
OFFICIAL_SCRIPT_KEY = "roberta.embeddings.script_type_embeddings.weight"
OFFICIAL_MAP_FILES = ("full_dicts.pkl", "full_dicts.json")
_HEAD_ATTRIBUTES = ("lm_head", "cls")


@dataclass
class LangSAMPOutput:
    loss: torch.Tensor
    n_masked: int
    logits: torch.Tensor | None = None


def variant_flags(variant: str) -> tuple[bool, bool]:
    if variant not in VARIANTS:
        raise LangsampError(f"unknown variant '{variant}'; choose one of {', '.join(VARIANTS)}")
    return variant in ("lang", "both"), variant in ("script", "both")


def variant_name(use_lang: bool, use_script: bool) -> str:
    return {(False, False): "vanilla", (True, False): "lang", (False, True): "script", (True, True): "both"}[
        (use_lang, use_script)
    ]


def _lm_head(mlm: nn.Module) -> nn.Module:
    for name in _HEAD_ATTRIBUTES:
        head = getattr(mlm, name, None)
        if isinstance(head, nn.Module):
            return head
    raise LangsampError(
        f"{type(mlm).__name__} has no 'lm_head' or 'cls' MLM head; use an XLM-R, RoBERTa or BERT family masked LM"
    )


class LangSAMPForMaskedLM(nn.Module):
    """A masked LM whose LM head sees hidden state + language embedding + script embedding."""

    def __init__(
        self,
        mlm: nn.Module,
        lang2id: dict[str, int],
        script2id: dict[str, int],
        variant: str = "both",
        num_languages: int | None = None,
        num_scripts: int | None = None,
    ) -> None:
        super().__init__()
        use_lang, use_script = variant_flags(variant)
        self.mlm = mlm
        self.lm_head = _lm_head(mlm)
        self.variant = variant
        self.lang2id = dict(lang2id)
        self.script2id = dict(script2id)
        hidden = mlm.config.hidden_size
        std = getattr(mlm.config, "initializer_range", 0.02)
        self.lang_embeddings = self._table(num_languages or _table_size(lang2id), hidden, std) if use_lang else None
        self.script_embeddings = self._table(num_scripts or _table_size(script2id), hidden, std) if use_script else None

    @staticmethod
    def _table(rows: int, hidden: int, std: float) -> nn.Embedding:
        table = nn.Embedding(rows, hidden)
        nn.init.normal_(table.weight, mean=0.0, std=std)
        return table

    @property
    def backbone(self) -> nn.Module:
        return self.mlm.base_model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        lang_ids: torch.Tensor | None = None,
        script_ids: torch.Tensor | None = None,
        return_logits: bool = False,
    ) -> LangSAMPOutput:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        masked = labels != -100
        rows = hidden[masked]
        rows = rows + self._aux(self.lang_embeddings, lang_ids, masked, "lang_ids")
        rows = rows + self._aux(self.script_embeddings, script_ids, masked, "script_ids")
        logits = self.lm_head(rows)
        targets = labels[masked]
        if targets.numel() == 0:
            loss = logits.sum() * 0.0
        else:
            loss = nn.functional.cross_entropy(logits.float(), targets)
        return LangSAMPOutput(loss=loss, n_masked=int(targets.numel()), logits=logits if return_logits else None)

    @staticmethod
    def _aux(table: nn.Embedding | None, ids: torch.Tensor | None, masked: torch.Tensor, name: str) -> torch.Tensor | float:
        if table is None:
            return 0.0
        if ids is None:
            raise ValueError(f"this LangSAMP model needs {name}")
        per_token = ids if ids.dim() == 2 else ids[:, None].expand_as(masked)
        return table(per_token[masked])

    def tables(self) -> dict[str, torch.Tensor]:
        out = {}
        if self.lang_embeddings is not None:
            out["lang_embeddings.weight"] = self.lang_embeddings.weight
        if self.script_embeddings is not None:
            out["script_embeddings.weight"] = self.script_embeddings.weight
        return out


def _table_size(mapping: dict[str, int]) -> int:
    return max(mapping.values(), default=-1) + 1 or 1


# ------------------------------------------------------------------------------------------- building


def _load_masked_lm(model: str) -> nn.Module:
    from transformers import AutoModelForMaskedLM

    config = _load_config(model)
    try:
        return AutoModelForMaskedLM.from_pretrained(model, config=config)
    except ValueError as err:
        raise LangsampError(f"--model {model} is not a masked language model ({config.model_type}): {_first_line(err)}") from None
    except OSError as err:
        raise LangsampError(f"--model {model}: cannot load weights ({_first_line(err)})") from None


def _load_config(model: str | Path) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(model))
    except (OSError, ValueError) as err:
        raise LangsampError(f"--model {model}: no model config found ({_first_line(err)}); pass a checkpoint directory or hub name") from None


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _masked_lm_from_config(config: Any) -> nn.Module:
    from transformers import AutoConfig, AutoModelForMaskedLM

    if isinstance(config, (str, Path)):
        config = AutoConfig.from_pretrained(str(config))
    try:
        return AutoModelForMaskedLM.from_config(config)
    except ValueError as err:
        raise LangsampError(f"config of type '{config.model_type}' is not a masked language model: {_first_line(err)}") from None


def build_model(
    model: str,
    lang2id: dict[str, int],
    script2id: dict[str, int],
    variant: str = "both",
    from_scratch_config: Any = None,
) -> LangSAMPForMaskedLM:
    """Wrap ``model`` (hub name or path; or a fresh model of ``from_scratch_config``) with new LangSAMP tables.

    Continuing from an official LangSAMP checkpoint or one of ours keeps its tables when the variant uses them.
    """
    variant_flags(variant)
    if from_scratch_config is not None:
        return LangSAMPForMaskedLM(_masked_lm_from_config(from_scratch_config), lang2id, script2id, variant)
    path = Path(model)
    if path.is_dir() and (_is_official(path) or (path / META_FILE).is_file()):
        loaded = load_checkpoint(path, lang_map=None if _has_id_map(path) else _none_map(lang2id, script2id))
        return _with_variant(loaded, variant, lang2id, script2id)
    return LangSAMPForMaskedLM(_load_masked_lm(model), lang2id, script2id, variant)


def _none_map(lang2id: dict[str, int], script2id: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    return lang2id, script2id


def _with_variant(
    loaded: LangSAMPForMaskedLM, variant: str, lang2id: dict[str, int], script2id: dict[str, int]
) -> LangSAMPForMaskedLM:
    """A model of ``variant`` that keeps the loaded tables when the id maps agree, else fresh tables."""
    model = LangSAMPForMaskedLM(loaded.mlm, loaded.lang2id, loaded.script2id, variant,
                                num_languages=_rows(loaded.lang_embeddings) or _table_size(loaded.lang2id),
                                num_scripts=_rows(loaded.script_embeddings) or _table_size(loaded.script2id))
    for name in ("lang_embeddings", "script_embeddings"):
        source, target = getattr(loaded, name), getattr(model, name)
        if source is not None and target is not None and source.weight.shape == target.weight.shape:
            target.weight.data.copy_(source.weight.data)
    return model


def _rows(table: nn.Embedding | None) -> int | None:
    return None if table is None else table.weight.shape[0]


# ----------------------------------------------------------------------------------------- checkpoints


def save_checkpoint(model: LangSAMPForMaskedLM, tokenizer: Any, output_dir: str | Path) -> Path:
    """HF masked-LM files + tokenizer + ``langsamp_embeddings.safetensors`` + ``langsamp.json``, written atomically."""
    from safetensors.torch import save_file

    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        model.mlm.save_pretrained(str(tmp))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        tables = {name: tensor.detach().cpu().contiguous() for name, tensor in model.tables().items()}
        if tables:
            save_file(tables, str(tmp / TABLES_FILE))
        use_lang, use_script = variant_flags(model.variant)
        atomic_write_json(
            tmp / META_FILE,
            {
                "format_version": FORMAT_VERSION,
                "variant": model.variant,
                "use_lang_embedding": use_lang,
                "use_script_embedding": use_script,
                "num_languages": _rows(model.lang_embeddings),
                "num_scripts": _rows(model.script_embeddings),
                "lang2id": model.lang2id,
                "script2id": model.script2id,
            },
        )
    return output_dir


def load_checkpoint(
    path: str | Path, lang_map: str | Path | tuple[dict, dict] | None = None, require_tables: bool = False
) -> LangSAMPForMaskedLM:
    """Load one of our checkpoints, an official LangSAMP checkpoint, or a plain masked LM (vanilla, no tables)."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return _load_ours(path)
    if path.is_dir() and _is_official(path):
        return _load_official(path, lang_map)
    if require_tables:
        raise LangsampError(
            f"{path}: no LangSAMP language/script embeddings (no {META_FILE} and no official tables); "
            "pass a checkpoint written by 'langsamp pretrain' or the official LangSAMP model"
        )
    lang2id, script2id = _resolve_map(path, lang_map) if lang_map is not None else ({}, {})
    return LangSAMPForMaskedLM(_load_masked_lm(str(path)), lang2id, script2id, "vanilla")


def _load_ours(path: Path) -> LangSAMPForMaskedLM:
    from safetensors.torch import load_file

    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    model = LangSAMPForMaskedLM(
        _load_masked_lm(str(path)), meta["lang2id"], meta["script2id"], meta["variant"],
        num_languages=meta.get("num_languages"), num_scripts=meta.get("num_scripts"),
    )
    tables = load_file(str(path / TABLES_FILE)) if (path / TABLES_FILE).is_file() else {}
    for name, table in (("lang_embeddings", model.lang_embeddings), ("script_embeddings", model.script_embeddings)):
        if table is None:
            continue
        key = f"{name}.weight"
        if key not in tables:
            raise LangsampError(f"{path / TABLES_FILE}: missing '{key}' although {META_FILE} says variant {model.variant}")
        table.weight.data.copy_(tables[key])
    return model


# ------------------------------------------------------------------------------------ official format


def _weight_files(path: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = path / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            return [path / shard for shard in shards]
    return [p for p in (path / "model.safetensors", path / "pytorch_model.bin") if p.is_file()][:1]


def _state_dict_keys(path: Path) -> set[str]:
    keys: set[str] = set()
    for file in _weight_files(path):
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as handle:
                keys |= set(handle.keys())
        else:
            keys |= set(torch.load(file, map_location="meta", weights_only=True).keys())
    return keys


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for file in _weight_files(path):
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state.update(load_file(str(file)))
        else:
            state.update(torch.load(file, map_location="cpu", weights_only=True))
    return state


def _is_official(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    fields = json.loads(config.read_text(encoding="utf-8"))
    return "use_lang_embedding" in fields or "lang_size" in fields


def _has_id_map(path: Path) -> bool:
    return (path / META_FILE).is_file() or any((path / name).is_file() for name in OFFICIAL_MAP_FILES)


def _resolve_map(path: Path, lang_map: str | Path | tuple[dict, dict] | None) -> tuple[dict[str, int], dict[str, int]]:
    if isinstance(lang_map, tuple):
        return lang_map
    for name in OFFICIAL_MAP_FILES:
        if (path / name).is_file():
            return read_id_map(path / name)
    if lang_map is not None:
        return read_id_map(lang_map)
    raise LangsampError(
        f"{path}: no language/script id mapping (full_dicts.pkl or full_dicts.json) in the checkpoint; "
        "pass it with --lang-map PATH"
    )


def _load_official(path: Path, lang_map: str | Path | tuple[dict, dict] | None) -> LangSAMPForMaskedLM:
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    lang2id, script2id = _resolve_map(path, lang_map)
    fields = json.loads((path / "config.json").read_text(encoding="utf-8"))
    use_lang = bool(fields.get("use_lang_embedding", True))
    use_script = bool(fields.get("use_script_embedding", True))
    extra = ("use_lang_embedding", "use_script_embedding", "lang_size", "script_size", "decouple_at_input_embeddings")
    config = XLMRobertaConfig(**{k: v for k, v in fields.items() if k not in extra and k not in ("architectures", "auto_map")})
    state = _read_state_dict(path)
    lang_table = state.pop(OFFICIAL_LANG_KEY, None)
    script_table = state.pop(OFFICIAL_SCRIPT_KEY, None)
    mlm = XLMRobertaForMaskedLM(config)
    result = mlm.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith(("position_ids", "lm_head.decoder.weight", "lm_head.decoder.bias"))]
    if missing:
        raise LangsampError(f"{path}: official checkpoint lacks weights {', '.join(missing[:3])}; is it complete?")
    mlm.tie_weights()
    model = LangSAMPForMaskedLM(
        mlm, lang2id, script2id, variant_name(use_lang and lang_table is not None, use_script and script_table is not None),
        num_languages=None if lang_table is None else lang_table.shape[0],
        num_scripts=None if script_table is None else script_table.shape[0],
    )
    if model.lang_embeddings is not None:
        model.lang_embeddings.weight.data.copy_(lang_table)
    if model.script_embeddings is not None:
        model.script_embeddings.weight.data.copy_(script_table)
    return model


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers only: any class or function reference is refused, so nothing can execute."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_id_map(path: str | Path) -> tuple[dict[str, int], dict[str, int]]:
    """The official ``full_dicts.pkl`` ([id2lang, id2script, lang2id, script2id]) or its JSON twin -> (lang2id, script2id)."""
    path = Path(path)
    if not path.is_file():
        raise LangsampError(f"--lang-map {path}: file not found")
    if path.suffix == ".json":
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    else:
        try:
            data = _DataOnlyUnpickler(io.BytesIO(path.read_bytes())).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as err:
            raise LangsampError(f"{path}: not a plain id-map pickle ({err}); only dicts of codes and ids are accepted") from None
    return _maps_from(data, path)


def _maps_from(data: Any, path: Path) -> tuple[dict[str, int], dict[str, int]]:
    if isinstance(data, list) and len(data) == 4:
        lang2id, script2id = data[2], data[3]
    elif isinstance(data, dict) and "lang2id" in data and "script2id" in data:
        lang2id, script2id = data["lang2id"], data["script2id"]
    else:
        raise LangsampError(f"{path}: expected [id2lang, id2script, lang2id, script2id] or {{lang2id, script2id}}")
    for mapping in (lang2id, script2id):
        if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in mapping.items()):
            raise LangsampError(f"{path}: id maps must map codes (str) to ids (int)")
    return dict(lang2id), dict(script2id)


# --------------------------------------------------------------------------------------------- tables


@dataclass
class EmbeddingTables:
    lang: np.ndarray | None
    script: np.ndarray | None
    lang2id: dict[str, int]
    script2id: dict[str, int]


def load_embedding_tables(path: str | Path, lang_map: str | Path | None = None) -> EmbeddingTables:
    """Only the learned tables and id maps (no backbone is built): ours or the official format."""
    path = Path(path)
    if (path / META_FILE).is_file():
        from safetensors.numpy import load_file

        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        tables = load_file(str(path / TABLES_FILE)) if (path / TABLES_FILE).is_file() else {}
        result = EmbeddingTables(
            _f32(tables.get("lang_embeddings.weight")), _f32(tables.get("script_embeddings.weight")),
            meta["lang2id"], meta["script2id"],
        )
    elif path.is_dir() and _is_official(path):
        lang2id, script2id = _resolve_map(path, lang_map)
        state = _read_official_tables(path)
        result = EmbeddingTables(_f32(state.get(OFFICIAL_LANG_KEY)), _f32(state.get(OFFICIAL_SCRIPT_KEY)), lang2id, script2id)
    else:
        result = EmbeddingTables(None, None, {}, {})
    if result.lang is None and result.script is None:
        raise LangsampError(
            f"{path}: no LangSAMP language/script embeddings in this checkpoint; pass a checkpoint written by "
            "'langsamp pretrain' (variant lang/script/both) or the official LangSAMP model"
        )
    return result


def _read_official_tables(path: Path) -> dict[str, torch.Tensor]:
    wanted = {OFFICIAL_LANG_KEY, OFFICIAL_SCRIPT_KEY}
    found: dict[str, torch.Tensor] = {}
    for file in _weight_files(path):
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as handle:
                found.update({k: handle.get_tensor(k) for k in wanted & set(handle.keys())})
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
            found.update({k: state[k] for k in wanted & set(state)})
    return found


def _f32(table: Any) -> np.ndarray | None:
    if table is None:
        return None
    if isinstance(table, torch.Tensor):
        table = table.float().numpy()
    return np.asarray(table, dtype=np.float32)


# ------------------------------------------------------------------------------------------ fingerprint


def _cache_root() -> Path:
    return Path(os.environ.get("LANGSAMP_CACHE", Path.home() / ".cache" / "langsamp"))


def _file_digest(file: Path) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime) so a large checkpoint is hashed once."""
    stat = file.stat()
    key = hashlib.sha256(f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    memo = _cache_root() / "fingerprints" / f"{key}.txt"
    if memo.is_file():
        return memo.read_text(encoding="utf-8").strip()
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(value, encoding="utf-8")
    except OSError:
        pass
    return value


def _local_dir(path_or_name: str) -> Path | None:
    path = Path(path_or_name)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(path_or_name, local_files_only=True))
    except Exception:  # not in the local HF cache: the name is all we know
        return None


def model_fingerprint(path_or_name: str | Path) -> str:
    """A short content hash of config + weights (+ LangSAMP tables); a changed model changes it."""
    directory = _local_dir(str(path_or_name))
    if directory is None:
        return hashlib.sha256(f"name:{path_or_name}".encode()).hexdigest()[:16]
    files = [directory / "config.json", *_weight_files(directory), directory / TABLES_FILE]
    digest = hashlib.sha256()
    for file in files:
        if file.is_file():
            digest.update(file.name.encode())
            digest.update(_file_digest(file).encode())
    return digest.hexdigest()[:16]
