"""The LangSAMP model: any HF masked LM plus language/script embeddings added before the LM head.

During pretraining the language embedding (L x D) and script embedding (S x D) are added to the
transformer's last hidden state at the masked positions only, and the LM head runs on those rows only
(so a 250k vocabulary stays affordable). The backbone is saved as a plain HF masked LM, loadable with
``AutoModel`` / ``AutoModelForMaskedLM`` and no custom code; the tables and id maps sit beside it.
Also reads the official LangSAMP checkpoint format (tables inside the state dict, ``full_dicts.pkl``).

Why one module of about 770 lines: it is the one place that builds, loads and writes LangSAMP models, and every
command imports its entry points (``load_backbone``, ``load_checkpoint``, ``save_checkpoint``, ``model_fingerprint``,
``quiet_transformers``, ...). Its sections follow one checkpoint from disk: the LangSAMP head, loading a
backbone, building, our format, the official format (its id maps and tables: ``official_format.py``), the
fingerprint. The tables alone, without a model: ``embedding_tables.py``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from langsamp_cli.checkpoint_info import (
    MLM_HEAD_RANDOM,
    TOKEN_TYPE_KEY,
    TOKEN_TYPE_ZEROS,
    TYPE_VOCAB_ONE,
    config_fields,
    input_side_tables,
    planned_adjustments,
    weight_files,
)
from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_dir, atomic_write_json, cache_root
from langsamp_cli.official_format import (OFFICIAL_CONFIG_FIELDS, OFFICIAL_LANG_KEY, OFFICIAL_MAP_FILES,
                                          OFFICIAL_SCRIPT_KEY, LangMap, check_id_maps, check_table_fits,
                                          is_official, is_official_config, official_tables, resolve_id_map)
from langsamp_cli.variants import variant_flags, variant_name

FORMAT_VERSION = 1
TABLES_FILE = "langsamp_embeddings.safetensors"
META_FILE = "langsamp.json"
LANG_KEY = "lang_embeddings.weight"
SCRIPT_KEY = "script_embeddings.weight"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model",
                   "spiece.model", "vocab.txt", "vocab.json", "merges.txt")
_HEAD_ATTRIBUTES = ("lm_head", "cls")  # RoBERTa/XLM-R/CamemBERT, BERT family


@dataclass
class LangSAMPOutput:
    loss: torch.Tensor           # mean cross-entropy over masked tokens (0 with a graph when none are masked)
    n_masked: int
    logits: torch.Tensor | None = None   # (n_masked, vocab), only with return_logits=True
    targets: torch.Tensor | None = None  # (n_masked,) labels of those rows, only with return_logits=True


def usable_positions(config: Any) -> int | None:
    """Tokens (with <s> and </s>) a model config's position embeddings allow; None when the config has no limit."""
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None
    # RoBERTa-family position ids start after the padding index, so 2 positions are unusable.
    offset = 2 if getattr(config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"} else 0
    return positions - offset


def model_usable_positions(model: str | Path) -> int | None:
    """:func:`usable_positions` of a local checkpoint or a hub model already in the local cache; None when unknown.

    Never reads the network: an unreachable name is reported by the model loader later, once.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(model), local_files_only=True)
    except (OSError, ValueError):
        return None
    return usable_positions(config)


def _head_attribute(mlm: nn.Module) -> str:
    for name in _HEAD_ATTRIBUTES:
        if isinstance(getattr(mlm, name, None), nn.Module):
            return name
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
        self._head_name = _head_attribute(mlm)
        self.variant = variant
        self.lang2id = dict(lang2id)
        self.script2id = dict(script2id)
        hidden = mlm.config.hidden_size
        # The paper initialises both tables randomly; the official code uses the model's normal init.
        std = getattr(mlm.config, "initializer_range", 0.02)
        self.lang_embeddings = _new_table(num_languages or _table_size(lang2id), hidden, std) if use_lang else None
        self.script_embeddings = _new_table(num_scripts or _table_size(script2id), hidden, std) if use_script else None
        # What rows new to the initial checkpoint were initialised from (pretrain/init_rows.py); saved in langsamp.json.
        self.initialised_rows: dict[str, Any] = {}
        # The move to another tokenizer's vocabulary (pretrain/vocab_transfer.py), when continuing with --tokenizer.
        self.vocab_transfer: Any = None

    @property
    def backbone(self) -> nn.Module:
        return self.mlm.base_model

    @property
    def lm_head(self) -> nn.Module:
        # Looked up, not registered: a second registration would duplicate the head's keys in state_dict().
        return getattr(self.mlm, self._head_name)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        labels: torch.Tensor,
        lang_ids: torch.Tensor | None = None,
        script_ids: torch.Tensor | None = None,
        return_logits: bool = False,
        masked_positions: torch.Tensor | None = None,
    ) -> LangSAMPOutput:
        """``lang_ids``/``script_ids``: (batch,) or (batch, seq); only their values at masked positions are read.

        ``masked_positions``: the flat indices (into ``labels.view(-1)``) where ``labels != -100``, ascending, as the
        MLM collator builds them on the host. Without it they are found here, which on a GPU makes the host wait for
        the device (the number of masked tokens decides the shapes). ``attention_mask=None`` means no padding.
        """
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if masked_positions is None:
            masked_positions = masked_positions_of(labels)
        positions = masked_positions.to(hidden.device)
        rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)
        rows = rows + _lookup(self.lang_embeddings, lang_ids, labels.shape[1], positions, "lang_ids")
        rows = rows + _lookup(self.script_embeddings, script_ids, labels.shape[1], positions, "script_ids")
        logits = self.lm_head(rows)
        targets = labels.reshape(-1).index_select(0, positions.to(labels.device))
        if targets.numel() == 0:
            loss = logits.sum() * 0.0  # keeps the graph so every rank still runs backward
        else:
            loss = nn.functional.cross_entropy(logits.float(), targets)
        return LangSAMPOutput(loss=loss, n_masked=int(targets.numel()),
                              logits=logits if return_logits else None, targets=targets if return_logits else None)

    def tables(self) -> dict[str, torch.Tensor]:
        """The learned tables under their checkpoint names (``lang_embeddings.weight``, ...)."""
        found = {LANG_KEY: self.lang_embeddings, SCRIPT_KEY: self.script_embeddings}
        return {key: table.weight for key, table in found.items() if table is not None}

    @property
    def has_tables(self) -> bool:
        return self.lang_embeddings is not None or self.script_embeddings is not None


def _new_table(rows: int, hidden: int, std: float) -> nn.Embedding:
    table = nn.Embedding(rows, hidden)
    nn.init.normal_(table.weight, mean=0.0, std=std)
    return table


def masked_positions_of(labels: torch.Tensor) -> torch.Tensor:
    """Flat indices (into ``labels.view(-1)``) of the MLM targets, ascending: the rows ``labels[labels != -100]``
    reads, in its order. Computed on the host by the collator; here only for callers that pass labels alone."""
    return (labels.reshape(-1) != -100).nonzero().squeeze(1)


def _lookup(table: nn.Embedding | None, ids: torch.Tensor | None, seq_len: int, positions: torch.Tensor,
            name: str) -> Any:
    if table is None:
        return 0.0
    if ids is None:
        raise ValueError(f"this LangSAMP model needs {name}")
    ids = ids.to(positions.device)
    # (batch,) ids: a flat position's row is position // seq_len.
    picked = ids.reshape(-1).index_select(0, positions) if ids.dim() == 2 else ids.index_select(0, positions // seq_len)
    return table(picked)


def _table_size(mapping: dict[str, int]) -> int:
    return max(mapping.values(), default=-1) + 1 or 1


def _rows(table: nn.Embedding | None) -> int | None:
    return None if table is None else table.weight.shape[0]


# ------------------------------------------------------------------------------------------- loading HF


@contextmanager
def quiet_transformers(messages: bool = True) -> Iterator[None]:
    """No tqdm 'Loading weights'/'Writing model shards' bars and (``messages``) no load report from transformers
    while it runs: our commands draw their own progress, and ``load_backbone`` checks the loaded weights itself.
    The verbosity and the progress-bar setting are restored afterwards (a notebook or script keeps its own)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    if messages:
        hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if enabled:
            hf_logging.enable_progress_bar()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_config(model: str | Path) -> Any:
    """The transformers config of a checkpoint directory or hub name; a missing one is a one-line error."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(model))
    except (OSError, ValueError) as err:
        raise LangsampError(
            f"--model {model}: no model config found, cannot load it ({_first_line(err)}); pass a checkpoint "
            "directory or hub name"
        ) from None


# ------------------------------------------------------------------------------------ loading a backbone

_NOTES_SHOWN: set[str] = set()
# Options from_pretrained takes itself even when a config object is passed; the rest of the
# config-like keyword arguments (num_labels, id2label, ...) must then be set on the config.
_LOADER_OPTIONS = ("dtype", "torch_dtype", "attn_implementation", "device_map", "local_files_only")


def note(text: str) -> None:
    """A one-line note through the ``langsamp`` logger (stderr by default), shown once per process."""
    from langsamp_cli.logs import get_logger

    if text not in _NOTES_SHOWN:
        _NOTES_SHOWN.add(text)
        get_logger().info(f"note: {text}")


def load_backbone(model: str | Path, cls: Any = None, *, config: Any = None, allow_random_head: bool = False,
                  **kwargs: Any) -> tuple[nn.Module, list[str]]:
    """``cls.from_pretrained(model, **kwargs)`` (``cls`` defaults to AutoModel) that never returns a partly random
    encoder: returns the model and the adjustments applied (names from ``checkpoint_info``).

    A weight the checkpoint lacks is an error naming it, except: a task head outside the base model (classifier,
    and the pooler), which the task trains; the MLM head when ``allow_random_head`` (pretraining trains it;
    noted); and the token-type embedding, absent from official LangSAMP checkpoints, which is set to zeros and
    frozen, reproducing the official forward pass (noted). A checkpoint with input-side language/script tables
    is refused. ValueError/TypeError from transformers (an unsupported option or architecture) pass through.
    """
    from transformers import AutoModel

    cls = cls or AutoModel
    local = local_checkpoint(model)
    source = str(local) if local is not None else str(model)
    fields = config_fields(local) if local is not None else {}
    if input_side_tables(fields):
        raise LangsampError(
            f"{local / 'config.json'}: decouple_at_input_embeddings is true, so this checkpoint adds its "
            "language/script tables to the input embeddings, which needs per-token ids langsamp does not pass; "
            "only checkpoints with the tables at the LM head (the paper's setting) are supported"
        )
    adjustments: list[str] = []
    type_vocab = fields.get("type_vocab_size")
    if config is None and isinstance(type_vocab, int) and type_vocab < 1:
        config = load_config(source)
    if config is not None and isinstance(getattr(config, "type_vocab_size", 1), int) and config.type_vocab_size < 1:
        config.type_vocab_size = 1  # the official class has no table; one zero row reproduces that
        adjustments.append(TYPE_VOCAB_ONE)
    if config is not None:
        kwargs = _config_kwargs_onto(config, kwargs)
        kwargs["config"] = config
    try:
        with quiet_transformers():
            try:
                loaded, info = cls.from_pretrained(source, output_loading_info=True, **kwargs)
            except RuntimeError as err:
                if "ignore_mismatched_sizes" not in str(err):
                    raise
                # A weight whose shape does not fit the config: load once more only to name it below.
                loaded, info = cls.from_pretrained(source, output_loading_info=True, ignore_mismatched_sizes=True,
                                                   **kwargs)
    except OSError as err:
        raise LangsampError(f"--model {model}: cannot load weights ({_first_line(err)})") from None
    except Exception as err:  # noqa: BLE001 - a damaged or pickled weights file is named; anything else passes on
        damaged = damaged_weights_error(err, local)
        if damaged is not None:
            raise damaged from None
        if not isinstance(err, RuntimeError):
            raise
        raise LangsampError(f"--model {model}: cannot load the weights ({_first_line(err)}); "
                            "is config.json the one saved with these weights?") from None
    adjustments += _settle_missing(loaded, info, source, allow_random_head)
    check_finite_weights(loaded, source)
    return loaded, list(dict.fromkeys(adjustments))


def check_finite_weights(model: nn.Module, source: str) -> None:
    """NaN/inf weights would score 0.0 everywhere without a word: refused, naming the model and the tensor."""
    bad = [name for name, tensor in model.state_dict().items()
           if tensor.is_floating_point() and tensor.device.type != "meta" and not bool(torch.isfinite(tensor).all())]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise LangsampError(f"--model {source}: weight {bad[0]}{more} holds NaN or infinite values; the checkpoint "
                            "is damaged or its training diverged, use an earlier checkpoint")


def damaged_weights_error(err: BaseException, folder: Path | None, file: Path | None = None) -> LangsampError | None:
    """A weights file that is not what it claims (truncated, random bytes, pickled objects) as one line naming
    it; None for other errors."""
    if type(err).__name__ == "SafetensorError":
        problem = f"not a readable safetensors file ({_first_line(err)}): truncated or damaged"
    elif isinstance(err, pickle.UnpicklingError):
        weights_only = "weights only" in str(err).lower()
        problem = ("holds objects other than tensors and plain values; refused, loading it could run code" if
                   weights_only else f"not a readable PyTorch weights file ({_first_line(err)[:120]})")
    elif isinstance(err, (EOFError, UnicodeDecodeError)) or (
            isinstance(err, RuntimeError) and "PytorchStreamReader" in str(err)):
        problem = f"not a readable PyTorch weights file ({_first_line(err)[:120]}): truncated or damaged"
    else:
        return None
    where = file or (next(iter(_weight_files(folder)), folder) if folder is not None else None)
    return LangsampError(f"{where or 'the model'}: {problem}; copy the checkpoint again, or re-save it from "
                         "a copy that loads")


@contextmanager
def naming_damaged(file: Path) -> Iterator[None]:
    """Reading ``file``: a damaged or pickled weights file becomes one line naming it."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - only the recognised failures are turned into a message
        damaged = damaged_weights_error(err, None, file)
        if damaged is None:
            raise
        raise damaged from None


def _config_kwargs_onto(config: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Move config-like keyword arguments onto ``config`` (from_pretrained ignores them next to a config)."""
    rest = {}
    for key, value in kwargs.items():
        if key not in _LOADER_OPTIONS and hasattr(config, key):
            setattr(config, key, value)
        else:
            rest[key] = value
    return rest


def _settle_missing(loaded: nn.Module, info: dict[str, Any], source: str, allow_random_head: bool) -> list[str]:
    """Zero the token-type table or accept a head where that is by design; refuse any other missing weight."""
    mismatched = sorted(str(item[0]) if isinstance(item, tuple) else str(item)
                        for item in info.get("mismatched_keys") or ())
    if mismatched:
        raise LangsampError(f"{source}: weight '{mismatched[0]}' has another shape than the config expects; "
                            "is config.json the one saved with these weights?")
    state_names = set(loaded.state_dict())
    base_prefix = getattr(loaded, "base_model_prefix", "")
    has_head = getattr(loaded, "base_model", loaded) is not loaded
    token_type, head, random = [], [], []
    for key in sorted(info.get("missing_keys") or ()):
        if key not in state_names:  # a buffer that is rebuilt, not loaded
            continue
        inner = key[len(base_prefix) + 1:] if has_head and key.startswith(f"{base_prefix}.") else key
        if has_head and inner == key:
            head.append(key)
        elif inner == TOKEN_TYPE_KEY:
            token_type.append(key)
        elif not inner.startswith("pooler."):  # a task's pooler is trained by the task; the encoder never reads it
            random.append(key)
    if random:
        more = f" (and {len(random) - 1} more)" if len(random) > 1 else ""
        raise LangsampError(f"{source}: the checkpoint lacks weight '{random[0]}'{more}, which would start at "
                            "random; the checkpoint is incomplete or of another architecture")
    mlm_head = bool(head) and _is_mlm_head(head)
    if mlm_head and not allow_random_head:
        raise LangsampError(f"{source}: the checkpoint lacks weight '{head[0]}', which would start at random; "
                            "is it a checkpoint of this model type?")
    adjustments = []
    for key in token_type:
        table = loaded.get_parameter(key)
        with torch.no_grad():
            table.zero_()
        table.requires_grad_(False)  # stays zero while fine-tuning or continuing pretraining, as in the original
        adjustments.append(TOKEN_TYPE_ZEROS)
        note(f"{source}: no token-type embedding in the checkpoint (as in the official LangSAMP model); "
             "using zeros, which reproduces the official forward pass")
    if mlm_head:
        adjustments.append(MLM_HEAD_RANDOM)
        note(f"{source}: no masked-LM head in the checkpoint; it starts at random and pretraining trains it")
    return adjustments


def _is_mlm_head(keys: list[str]) -> bool:
    """Missing head weights that belong to an MLM head (a classifier/tagger head is trained by its task)."""
    return any(key.split(".")[0] in _HEAD_ATTRIBUTES for key in keys)


def _load_masked_lm(model: str) -> nn.Module:
    from transformers import AutoModelForMaskedLM

    config = load_config(model)
    try:
        return load_backbone(model, AutoModelForMaskedLM, allow_random_head=True)[0]
    except ValueError as err:
        raise LangsampError(
            f"--model {model} is not a masked language model ({config.model_type}): {_first_line(err)}"
        ) from None


def _masked_lm_from_config(config: Any) -> nn.Module:
    from transformers import AutoModelForMaskedLM

    if isinstance(config, (str, Path)):
        config = load_config(config)
    try:
        return AutoModelForMaskedLM.from_config(config)
    except ValueError as err:
        raise LangsampError(
            f"config of type '{config.model_type}' is not a masked language model: {_first_line(err)}"
        ) from None


def _cached_snapshot(name: str) -> Path | None:
    """The local HF-cache snapshot of hub repo ``name``, or None (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - not a repo id, not cached, no hub library: all mean "no local copy"
        return None


def _official_hub_snapshot(name: str) -> Path | None:
    """Download an official-format hub checkpoint (weights, config, id map); None for any other model."""
    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        if not is_official_config(json.loads(Path(hf_hub_download(name, "config.json")).read_text("utf-8"))):
            return None
        files = ["*.json", "*.pkl", "*.model", "*.safetensors"]
        folder = Path(snapshot_download(name, allow_patterns=files))
        if not _weight_files(folder):
            folder = Path(snapshot_download(name, allow_patterns=[*files, "pytorch_model*.bin"]))
        return folder
    except Exception:  # noqa: BLE001 - offline / unknown repo: from_pretrained reports it in its own words
        return None


def local_checkpoint(model: str | Path) -> Path | None:
    """A local folder for ``model``: itself, its HF-cache snapshot, or (official format only) a download."""
    path = Path(model)
    if path.is_dir():
        return path
    if path.exists() or str(model).startswith((".", "/", "~")) or str(model).count("/") > 1:
        return None
    cached = _cached_snapshot(str(model))
    if cached is not None and _weight_files(cached):
        return cached
    return _official_hub_snapshot(str(model))


# ------------------------------------------------------------------------------------------- building


def build_model(
    model: str,
    lang2id: dict[str, int],
    script2id: dict[str, int],
    variant: str = "both",
    from_scratch_config: Any = None,
) -> LangSAMPForMaskedLM:
    """Wrap ``model`` (hub name or path; or a fresh model of ``from_scratch_config``) with LangSAMP tables.

    The returned model uses exactly ``lang2id``/``script2id``. Continuing from a checkpoint that has tables
    (ours or official) copies the rows of every language/script the two maps share; the others start fresh.
    """
    variant_flags(variant)
    if from_scratch_config is not None:
        return LangSAMPForMaskedLM(_masked_lm_from_config(from_scratch_config), lang2id, script2id, variant)
    local = local_checkpoint(model)
    if local is not None and ((local / META_FILE).is_file() or is_official(local)):
        if _has_id_map(local):
            loaded = load_checkpoint(local)
        else:  # an official checkpoint without full_dicts: the caller's map must be the official one
            loaded = load_checkpoint(local, lang_map=(lang2id, script2id))
            _check_covers_tables(local, loaded)
        return _remapped(loaded, variant, lang2id, script2id)
    return LangSAMPForMaskedLM(_load_masked_lm(str(model)), lang2id, script2id, variant)


def _check_covers_tables(path: Path, loaded: LangSAMPForMaskedLM) -> None:
    for table, mapping in ((loaded.lang_embeddings, loaded.lang2id), (loaded.script_embeddings, loaded.script2id)):
        if table is not None and len(mapping) != table.weight.shape[0]:
            raise LangsampError(f"{path}: no full_dicts.pkl/json beside the official tables ({table.weight.shape[0]} "
                                f"rows, the given map has {len(mapping)}); pass the official one with --lang-map PATH")


def _remapped(
    loaded: LangSAMPForMaskedLM, variant: str, lang2id: dict[str, int], script2id: dict[str, int]
) -> LangSAMPForMaskedLM:
    model = LangSAMPForMaskedLM(loaded.mlm, lang2id, script2id, variant)
    _copy_rows(loaded.lang_embeddings, loaded.lang2id, model.lang_embeddings, lang2id)
    _copy_rows(loaded.script_embeddings, loaded.script2id, model.script_embeddings, script2id)
    return model


def _copy_rows(source: nn.Embedding | None, source_ids: dict[str, int],
               target: nn.Embedding | None, target_ids: dict[str, int]) -> int:
    """Copy each code's row from ``source`` to its row in ``target``; returns how many were copied."""
    if source is None or target is None or source.weight.shape[1] != target.weight.shape[1]:
        return 0
    pairs = [(target_ids[code], source_ids[code]) for code in target_ids
             if code in source_ids and source_ids[code] < source.weight.shape[0]]
    if pairs:
        dst, src = (torch.tensor(ids) for ids in zip(*pairs))
        with torch.no_grad():
            target.weight[dst] = source.weight[src].to(target.weight.dtype)
    return len(pairs)


# ----------------------------------------------------------------------------------------- checkpoints


def save_checkpoint(model: LangSAMPForMaskedLM, tokenizer: Any, output_dir: str | Path) -> Path:
    """HF masked-LM files + tokenizer + ``langsamp_embeddings.safetensors`` + ``langsamp.json``, written atomically."""
    from safetensors.torch import save_file

    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp, quiet_transformers():
        model.mlm.save_pretrained(str(tmp))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        tables = {key: tensor.detach().cpu().contiguous() for key, tensor in model.tables().items()}
        if tables:
            save_file(tables, str(tmp / TABLES_FILE))
        atomic_write_json(tmp / META_FILE, _metadata(model))
    return output_dir


def _metadata(model: LangSAMPForMaskedLM) -> dict[str, Any]:
    use_lang, use_script = variant_flags(model.variant)
    return {
        "format_version": FORMAT_VERSION,
        "variant": model.variant,
        "use_lang_embedding": use_lang,
        "use_script_embedding": use_script,
        "num_languages": _rows(model.lang_embeddings),
        "num_scripts": _rows(model.script_embeddings),
        "lang2id": model.lang2id,
        "script2id": model.script2id,
        # Backbone weights kept fixed (the zero token-type table of an official checkpoint); reloading keeps them
        # fixed, so a resumed run trains exactly the parameters the first part did.
        "frozen": [name for name, param in model.mlm.named_parameters() if not param.requires_grad],
        **({"initialised_rows": model.initialised_rows} if getattr(model, "initialised_rows", None) else {}),
        **({"vocab_transfer": _vocab_record(model.vocab_transfer)} if getattr(model, "vocab_transfer", None) else {}),
    }


def _vocab_record(transfer: Any) -> dict[str, Any]:
    """The summary of pretrain/vocab_transfer.VocabTransfer (or the dict a reloaded checkpoint kept)."""
    return transfer if isinstance(transfer, dict) else transfer.record()


def load_checkpoint(path: str | Path, lang_map: LangMap = None, require_tables: bool = False) -> LangSAMPForMaskedLM:
    """One of our checkpoints, an official LangSAMP checkpoint, or a plain masked LM (vanilla, no tables).

    ``lang_map``: the official id map (path to ``full_dicts.pkl``/``.json`` or a (lang2id, script2id) pair), used
    when an official checkpoint does not ship one.
    """
    local = local_checkpoint(path)
    note_unused_lang_map(local, lang_map)
    if local is not None and (local / META_FILE).is_file():
        model = _load_ours(local)
    elif local is not None and is_official(local):
        model = _load_official(local, lang_map)
    else:
        if require_tables:
            raise no_tables_error(path)
        lang2id, script2id = resolve_id_map(Path(path), lang_map) if lang_map is not None else ({}, {})
        model = LangSAMPForMaskedLM(_load_masked_lm(str(path)), lang2id, script2id, "vanilla")
    if require_tables and not model.has_tables:
        raise no_tables_error(path)
    return model


def no_tables_error(path: str | Path) -> LangsampError:
    return LangsampError(
        f"{path}: no LangSAMP language/script embeddings in this checkpoint; pass a checkpoint written by "
        "'langsamp pretrain' (variant lang/script/both) or the official LangSAMP model"
    )


def read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        variant_flags(meta["variant"])
        check_id_maps(meta["lang2id"], meta["script2id"], path / META_FILE)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise LangsampError(f"{path / META_FILE}: unreadable LangSAMP metadata ({err!r}); "
                            "re-save the checkpoint") from None
    return meta


def _load_ours(path: Path) -> LangSAMPForMaskedLM:
    from safetensors.torch import load_file

    meta = read_meta(path)
    model = LangSAMPForMaskedLM(
        _load_masked_lm(str(path)), meta["lang2id"], meta["script2id"], meta["variant"],
        num_languages=meta.get("num_languages"), num_scripts=meta.get("num_scripts"),
    )
    _freeze(model.mlm, meta.get("frozen") or [])
    if isinstance(meta.get("initialised_rows"), dict):  # a resumed run keeps recording it
        model.initialised_rows = meta["initialised_rows"]
    if isinstance(meta.get("vocab_transfer"), dict):
        model.vocab_transfer = meta["vocab_transfer"]
    with naming_damaged(path / TABLES_FILE):
        tables = load_file(str(path / TABLES_FILE)) if (path / TABLES_FILE).is_file() else {}
    for key, table in model.tables().items():
        if key not in tables or tables[key].shape != table.shape:
            raise LangsampError(f"{path / TABLES_FILE}: no '{key}' of shape {tuple(table.shape)} although "
                                f"{META_FILE} says variant {model.variant}; the checkpoint is incomplete")
        table.data.copy_(tables[key])
    return model


def _freeze(mlm: nn.Module, names: list[str]) -> None:
    parameters = dict(mlm.named_parameters())
    for name in names:
        if isinstance(name, str) and name in parameters:
            parameters[name].requires_grad_(False)


# ------------------------------------------------------------------------------------ official format


_weight_files = weight_files


def read_state_dict(path: Path, keys: set[str] | None = None) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors (only ``keys`` when given); .bin files are read with weights_only=True."""
    from safetensors import safe_open

    state: dict[str, torch.Tensor] = {}
    for file in _weight_files(path):
        if file.suffix == ".safetensors":
            with naming_damaged(file), safe_open(str(file), framework="pt") as handle:
                wanted = [k for k in handle.keys() if keys is None or k in keys]
                state.update({k: handle.get_tensor(k) for k in wanted})
        else:
            with naming_damaged(file):
                loaded = torch.load(file, map_location="cpu", weights_only=True)
            state.update({k: v for k, v in loaded.items() if keys is None or k in keys})
    return state


def _has_id_map(path: Path) -> bool:
    return (path / META_FILE).is_file() or any((path / name).is_file() for name in OFFICIAL_MAP_FILES)


def note_unused_lang_map(local: Path | None, lang_map: LangMap) -> None:
    """Say so when a --lang-map file is given for a checkpoint that carries its own id map (which wins)."""
    if local is None or lang_map is None or isinstance(lang_map, tuple):
        return
    own = [name for name in (META_FILE, *OFFICIAL_MAP_FILES) if (local / name).is_file()]
    if own:
        note(f"--lang-map {lang_map} is not used: {local} carries its own language/script id map ({own[0]})")


def _load_official(path: Path, lang_map: LangMap) -> LangSAMPForMaskedLM:
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    lang2id, script2id = resolve_id_map(path, lang_map)
    fields = config_fields(path)
    lang_table, script_table = official_tables(path, read_state_dict(path, {OFFICIAL_LANG_KEY, OFFICIAL_SCRIPT_KEY}))
    check_table_fits(path, lang_table, lang2id, "language")
    check_table_fits(path, script_table, script2id, "script")
    # A plain XLM-R config: a checkpoint saved from here on loads anywhere without the official class.
    dropped = (*OFFICIAL_CONFIG_FIELDS, "architectures", "auto_map")
    plain = XLMRobertaConfig(**{k: v for k, v in fields.items() if k not in dropped})
    mlm, _ = load_backbone(path, XLMRobertaForMaskedLM, config=plain, allow_random_head=True)
    mlm.eval()  # as from_pretrained would; training code calls .train()
    model = LangSAMPForMaskedLM(
        mlm, lang2id, script2id, variant_name(lang_table is not None, script_table is not None),
        num_languages=_shape0(lang_table), num_scripts=_shape0(script_table),
    )
    for key, table in model.tables().items():
        table.data.copy_(lang_table if key == LANG_KEY else script_table)
    return model


def _shape0(table: torch.Tensor | None) -> int | None:
    return None if table is None else int(table.shape[0])


# ------------------------------------------------------------------------------------------ fingerprint


def _file_digest(file: Path) -> str:
    """sha256 of a file's bytes, remembered per (path, inode, size, mtime) so a large checkpoint is hashed once."""
    stat = file.stat()
    identity = f"{file.resolve()}|{stat.st_ino}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = cache_root() / "fingerprints" / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.json"
    try:
        saved = json.loads(memo.read_text(encoding="utf-8"))
        if saved.get("identity") == identity:
            return str(saved["sha256"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    try:
        atomic_write_json(memo, {"identity": identity, "sha256": value})
    except OSError:  # a read-only home only costs a re-hash next time
        pass
    return value


def model_fingerprint(path_or_name: str | Path) -> str:
    """A short content hash of config, weights, tables, id maps and tokenizer files; a changed model changes it.

    A hub name is hashed through its local HF-cache snapshot; a name that is not cached hashes the name itself.
    """
    directory = Path(path_or_name) if Path(path_or_name).is_dir() else _cached_snapshot(str(path_or_name))
    if directory is None:
        return hashlib.sha256(f"name:{path_or_name}".encode()).hexdigest()[:16]
    names = ["config.json", *(f.name for f in _weight_files(directory)), TABLES_FILE, META_FILE,
             *OFFICIAL_MAP_FILES, *TOKENIZER_FILES]
    digest = hashlib.sha256()
    for name in names:
        file = directory / name
        if file.is_file():
            digest.update(f"{name}\0{_file_digest(file)}\n".encode())
    adjustments = planned_adjustments(directory)
    if adjustments:  # the loader's adjustments change the numbers: caches made without them must not match
        digest.update(f"adjustments\0{','.join(adjustments)}\n".encode())
    return digest.hexdigest()[:16]
