"""The one sentence encoder: layer-k mean pooling, length-sorted batches, disk cache.

Protocol (the official Glot500/LangSAMP retrieval scripts): every sentence becomes
``<s> tokens </s>`` truncated at ``max_length``; its vector is the mean of ``hidden_states[layer]``
over the attention mask (special tokens included unless ``exclude_special_tokens``), where
``hidden_states[0]`` is the embedding output and ``hidden_states[8]`` the output of the 8th block
(the official "index 7 after dropping the embedding output").

What makes it fast without changing a number: only the first ``layer`` blocks run (the block list
is truncated), sentences are sorted by length so batches carry little padding, identical texts
are encoded once, and finished lists are cached on disk under a key that includes the model's
content fingerprint, so a changed model never reads a stale entry.

What keeps a GPU busy: one batched (fast) tokenizer call per list; batches cut by a token budget
(rows x longest row <= ``max_batch_tokens``; by default ``batch_size x max_length`` on a GPU, so
short sentences travel in large batches while the longest keep the memory ceiling of
``batch_size`` full rows, and ``batch_size x 128`` on CPU, where larger batches are slower); each padded
batch is built from the id lists in one NumPy step; pooled vectors stay on the device and come back
to the host in one copy per ``encode()`` call; ``torch.inference_mode`` throughout; half-precision
hidden states are pooled with a float32 accumulator instead of a float32 copy.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_write_bytes, cache_root
from langsamp_cli.model import load_config
from langsamp_cli.protocol import PAPER_LAYER

if TYPE_CHECKING:
    from transformers import PretrainedConfig

POOLING_MEAN = "mean"
MIN_ROW_FILL = 0.75  # a batch's rows are at least this share of its longest row (see token_budget_batches)
POOLING_MEAN_NO_SPECIAL = "mean-no-special"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Where encoder-style models keep their list of transformer blocks (BERT/RoBERTa/XLM-R first).
_BLOCK_PATHS = ("encoder.layer", "encoder.layers", "transformer.layer", "layers", "layer")
_MEMO_MAX_ROWS = 20_000  # remembered sentences (~60 MB at d=768)


def default_cache_dir() -> Path:
    """``$LANGSAMP_CACHE``, else ``embeddings/`` under :func:`langsamp_cli.io_utils.cache_root`."""
    env = os.environ.get("LANGSAMP_CACHE")
    return Path(env).expanduser() if env else cache_root() / "embeddings"


def text_list_hash(sentences: Sequence[str]) -> str:
    """Order-sensitive hash of a list of texts (length-prefixed, so no two lists collide by joining)."""
    digest = hashlib.sha256()
    for sentence in sentences:
        data = sentence.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class EmbeddingCache:
    """One ``.npy`` file per (encoder key, text list); written atomically, unreadable files ignored."""

    def __init__(self, root: Path, encoder_key: str) -> None:
        self.dir = Path(root) / encoder_key[:32]

    def path(self, list_hash: str) -> Path:
        return self.dir / f"{list_hash}.npy"

    def load(self, list_hash: str, expected_rows: int) -> np.ndarray | None:
        path = self.path(list_hash)
        if not path.exists():
            return None
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            warnings.warn(f"ignoring unreadable embedding cache file {path}: {err}", stacklevel=2)
            return None
        return array if array.ndim == 2 and array.shape[0] == expected_rows else None

    def save(self, list_hash: str, array: np.ndarray) -> Path | None:
        """Write one entry; a cache that cannot be written (a file in the way, read-only, full disk, no home)
        is skipped with a one-line note: it never fails a run, which only gets slower."""
        if self.dir.parent in _UNWRITABLE_CACHES:
            return None
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        try:
            return atomic_write_bytes(self.path(list_hash), buffer.getvalue())
        except OSError as err:
            _UNWRITABLE_CACHES.add(self.dir.parent)
            from langsamp_cli.logs import get_logger

            get_logger().warning(f"note: the embedding cache {self.dir.parent} cannot be written "
                                 f"({err.strerror or err}); continuing without it (set $LANGSAMP_CACHE to a "
                                 "writable folder to keep vectors between runs)")
            return None


_UNWRITABLE_CACHES: set[Path] = set()  # cache roots that failed once in this process: not tried again


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise LangsampError(f"--device {device!r} is not a torch device ({err}); use cpu, cuda or cuda:N") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise LangsampError(f"--device {device} requested but CUDA is not available here; use --device cpu")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """float32 everywhere by default (bit-comparable with the official scripts); half only on CUDA."""
    if dtype == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype not in DTYPES:
        raise LangsampError(f"--dtype {dtype!r} is unknown; use one of auto, {', '.join(DTYPES)}")
    if dtype != "float32" and device.type != "cuda":
        raise LangsampError(f"--dtype {dtype} is only supported on CUDA (device is {device}); use --dtype float32")
    return DTYPES[dtype]


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of the full tokenizer definition (fast: normaliser, pre-tokeniser, vocabulary)."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode("utf-8"))
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode("utf-8"))
    digest.update(json.dumps(tokenizer.all_special_tokens).encode("utf-8"))
    return digest.hexdigest()


def find_blocks(model: torch.nn.Module) -> tuple[torch.nn.Module, str, torch.nn.ModuleList] | None:
    """(owner, attribute, blocks) of the transformer block list, or None for unknown layouts."""
    for dotted in _BLOCK_PATHS:
        owner: torch.nn.Module | None = model
        *parents, attr = dotted.split(".")
        for name in parents:
            owner = getattr(owner, name, None)
        blocks = getattr(owner, attr, None) if owner is not None else None
        if isinstance(blocks, torch.nn.ModuleList) and len(blocks) > 0:
            return owner, attr, blocks
    return None


def _load_tokenizer(model: str):
    from transformers import AutoTokenizer

    from langsamp_cli.model_source import require_tokenizer

    require_tokenizer(model)
    try:
        return AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as err:
        raise LangsampError(f"cannot load a tokenizer from --model {model!r}: {err}".splitlines()[0]) from err


def _load_backbone(model: str, dtype: torch.dtype) -> torch.nn.Module:
    """AutoModel without the pooler and with SDPA attention where the architecture allows it.

    Loaded through ``model.load_backbone``: a weight missing from the checkpoint is refused, except the
    token-type table of official LangSAMP checkpoints, which is zeroed (noted once).
    """
    from transformers import AutoModel

    from langsamp_cli.model import load_backbone

    attempts = (
        {"add_pooling_layer": False, "attn_implementation": "sdpa"},
        {"attn_implementation": "sdpa"},
        {"add_pooling_layer": False},
        {},
    )
    last_error: Exception | None = None
    for extra in attempts:
        try:
            return load_backbone(model, AutoModel, dtype=dtype, **extra)[0]
        except (TypeError, ValueError) as err:  # option not supported by this architecture
            last_error = err
    raise LangsampError(f"cannot load --model {model!r} as an encoder: {last_error}".splitlines()[0])


def config_depth(config) -> int:
    """Transformer blocks of a model config (an encoder needs at least one)."""
    for name in ("num_hidden_layers", "n_layers", "num_layers"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            if value < 1:
                where = getattr(config, "name_or_path", "") or "the model"
                raise LangsampError(f"{where}: config.json says {name}: {value}; an encoder needs at least one "
                                    "layer; fix config.json or pass another model")
            return value
    raise LangsampError(f"cannot tell how many layers {type(config).__name__} has; pass a BERT/XLM-R style encoder")


class SentenceEncoder:
    """Mean-pooled sentence vectors for any Hugging Face encoder (name or path).

    ``layer`` is where the network ends (``hidden_states[layer]``, the blocks after it are dropped):
    :meth:`encode` pools it, :meth:`encode_layers` pools any set of layers up to it from the same pass.
    """

    def __init__(
        self,
        model: str,
        layer: int = PAPER_LAYER,
        max_length: int = 512,
        batch_size: int = 32,
        exclude_special_tokens: bool = False,
        device: str | None = None,
        cache_dir: Path | None = None,
        use_cache: bool = True,
        dtype: str = "float32",
        max_batch_tokens: int | None = None,
        config: PretrainedConfig | None = None,
    ) -> None:
        """``config``: the model's config when the caller has read it already (otherwise read here)."""
        self.model_name = str(model)
        self.batch_size = int(batch_size)
        self.exclude_special_tokens = exclude_special_tokens
        self.pooling = POOLING_MEAN_NO_SPECIAL if exclude_special_tokens else POOLING_MEAN
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.use_cache = use_cache
        if self.batch_size < 1:
            raise LangsampError(f"--batch-size must be at least 1 (got {batch_size})")

        config = config if config is not None else load_config(self.model_name)
        self.num_layers = config_depth(config)
        self.hidden_size = int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0))
        self.layer = self._check_layer(layer)
        self.max_length = self._check_max_length(max_length, config)
        self.max_batch_tokens = int(max_batch_tokens or self._default_batch_tokens())
        if self.max_batch_tokens < 1:
            raise LangsampError(f"max_batch_tokens must be at least 1 (got {max_batch_tokens})")
        self.tokenizer = _load_tokenizer(self.model_name)
        self.fingerprint = self._fingerprint()
        self.cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_dir(), self.fingerprint)
        self.sentences_encoded = 0  # texts that went through the network (tests and benchmarks read it)
        self._model: torch.nn.Module | None = None
        self._read_last_hidden = True
        self._memo: OrderedDict[str, dict[int, np.ndarray]] = OrderedDict()  # sentence -> layer -> row

    # ----------------------------------------------------------------- set-up checks
    def _check_layer(self, layer: int) -> int:
        if not 0 <= layer <= self.num_layers:
            raise LangsampError(
                f"--layer {layer} is out of range: {self.model_name} has {self.num_layers} layers "
                f"(0 = embeddings, {self.num_layers} = last block); pick 0..{self.num_layers}"
            )
        return int(layer)

    def _check_max_length(self, max_length: int, config) -> int:
        from langsamp_cli.model import usable_positions

        limit = usable_positions(config)
        if max_length < 3 or (limit is not None and max_length > limit):
            raise LangsampError(f"--max-length {max_length} is invalid for {self.model_name}; use 3..{limit}")
        return int(max_length)

    def _default_batch_tokens(self) -> int:
        """Padded tokens per forward pass: on a GPU the memory of ``batch_size`` full-length rows; on CPU
        ``batch_size`` rows of 128 tokens, since batches much larger than that run slower there."""
        return self.batch_size * (self.max_length if self.device.type == "cuda" else min(self.max_length, 128))

    def _fingerprint(self) -> str:
        from langsamp_cli.model import model_fingerprint

        self.model_fingerprint = model_fingerprint(self.model_name)
        self._tokenizer_fingerprint = tokenizer_fingerprint(self.tokenizer)
        return self.fingerprint_for(self.layer)

    def fingerprint_for(self, layer: int) -> str:
        """The fingerprint a single-layer encoder at ``layer`` (same model and options) would have."""
        key = {
            "model": self.model_fingerprint,
            "tokenizer": self._tokenizer_fingerprint,
            "layer": int(layer),
            "pooling": self.pooling,
            "max_length": self.max_length,
            "dtype": str(self.dtype),
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    # ----------------------------------------------------------------- model
    @property
    def model(self) -> torch.nn.Module:
        """The backbone cut after ``layer`` blocks; loaded on the first cache miss."""
        if self._model is None:
            self._model = self._build_truncated_model()
        return self._model

    def _build_truncated_model(self) -> torch.nn.Module:
        model = _load_backbone(self.model_name, self.dtype)
        found = find_blocks(model)
        if found is not None:
            owner, attr, blocks = found
            # Layer 0 keeps one block: an empty stack records no hidden states in some versions.
            setattr(owner, attr, torch.nn.ModuleList(list(blocks)[: max(self.layer, 1)]))
        model.to(self.device).eval()
        # Read last_hidden_state only where it is exactly hidden_states[layer] (no final norm, known
        # block list); otherwise ask for all hidden states of the (possibly truncated) stack.
        self._read_last_hidden = found is not None and self.layer > 0 and self._last_equals_layer(model)
        return model

    def _last_equals_layer(self, model: torch.nn.Module) -> bool:
        probe = self.tokenizer(["probe sentence"], return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = model(**probe, output_hidden_states=True)
        states = out.hidden_states
        return states is not None and len(states) == self.layer + 1 and torch.equal(states[-1], out.last_hidden_state)

    # ----------------------------------------------------------------- encoding
    def encode(self, sentences: list[str], progress: bool = False, remember: bool = False) -> np.ndarray:
        """float32 (n, d) of this encoder's ``layer``, in input order, NOT normalised.

        ``remember`` keeps the rows in a bounded in-memory memo so lists that share sentences
        (the English side of many language pairs) are not encoded again even with the cache off.
        """
        return self.encode_layers(sentences, [self.layer], progress, remember)[self.layer]

    def encode_layers(self, sentences: list[str], layers: Sequence[int], progress: bool = False,
                      remember: bool = False) -> dict[int, np.ndarray]:
        """{layer: float32 (n, d)} for every requested layer from one forward pass per batch.

        Each layer's rows equal ``SentenceEncoder(model, layer=k).encode(sentences)`` exactly (same
        batches, same pooling) and use that encoder's disk cache entry, so single- and multi-layer
        runs share cached vectors. Layers must not be past this encoder's ``layer`` (where its network ends).
        """
        layers = self._within_network(layers)
        sentences = list(sentences)
        list_hash = text_list_hash(sentences)
        out = self._cached(list_hash, len(sentences), layers)
        missing = [k for k in layers if k not in out]
        if missing:
            computed = self._encode_unique(list(dict.fromkeys(sentences)), missing, progress)
            for k in missing:
                out[k] = self._in_input_order(sentences, computed[k])
                if self.use_cache:
                    self._cache_of(k).save(list_hash, out[k])
        if remember:
            self._memorise(sentences, out)
        return {k: out[k] for k in layers}

    def _within_network(self, layers: Sequence[int]) -> list[int]:
        layers = sorted({int(k) for k in layers})
        too_deep = [k for k in layers if not 0 <= k <= self.layer]
        if too_deep:
            raise LangsampError(f"layers {too_deep} are deeper than this encoder's layer {self.layer}; "
                                "build it with layer = the deepest layer wanted")
        return layers

    def _cached(self, list_hash: str, rows: int, layers: list[int]) -> dict[int, np.ndarray]:
        if not self.use_cache:
            return {}
        found = {k: self._cache_of(k).load(list_hash, rows) for k in layers}
        return {k: array for k, array in found.items() if array is not None}

    def _cache_of(self, layer: int) -> EmbeddingCache:
        return self.cache if layer == self.layer else EmbeddingCache(self.cache.dir.parent, self.fingerprint_for(layer))

    def _in_input_order(self, sentences: list[str], rows: dict[str, np.ndarray]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, self.hidden_size), np.float32)
        return np.stack([rows[s] for s in sentences])

    def _memorise(self, sentences: list[str], rows: dict[int, np.ndarray]) -> None:
        memo = self._memo
        for i, sentence in enumerate(sentences):
            entry = memo.setdefault(sentence, {})
            entry.update({k: array[i] for k, array in rows.items()})
            memo.move_to_end(sentence)
        while len(memo) > max(_MEMO_MAX_ROWS // max(len(rows), 1), 1):
            memo.popitem(last=False)

    def _encode_unique(self, texts: list[str], layers: list[int], progress: bool) -> dict[int, dict[str, np.ndarray]]:
        """{layer: {text: row}} of distinct texts: remembered rows first, the network for the rest."""
        memo = self._memo
        known = [t for t in texts if t in memo and all(k in memo[t] for k in layers)]
        vectors = {k: {t: memo[t][k] for t in known} for k in layers}
        seen = set(known)
        todo = [t for t in texts if t not in seen]
        if todo:
            computed = self._run_network(todo, layers, progress)
            for k in layers:
                vectors[k].update(zip(todo, computed[k]))
        return vectors

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """``<s> tokens </s>`` ids, truncated at ``max_length`` (the official [cls]+tokenize()+[sep])."""
        return self.tokenizer(texts, truncation=True, max_length=self.max_length, return_attention_mask=False,
                              return_token_type_ids=False)["input_ids"]

    def _run_network(self, texts: list[str], layers: list[int], progress: bool) -> dict[int, np.ndarray]:
        """{layer: float32 (n, d)} in input order, every layer pooled from the same forward passes."""
        ids = self.tokenize(texts)  # one call: a fast tokenizer batches it in Rust
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")  # longest first, ties in input order
        batches = PaddedBatches(ids, order, lengths, self._pad_id())
        spans = token_budget_batches(batches.lengths, self.max_batch_tokens)
        pooled: torch.Tensor | None = None  # (layers, n, d) float32 on the device, rows in length order
        _ = self.model  # load before inference mode, so the weights stay ordinary tensors
        with torch.inference_mode():
            for start, end in _progress(spans, progress, _encoding_note(len(texts), len(layers))):
                vectors = self._encode_batch(*batches.tensors(start, end, self.device), layers)
                if pooled is None:
                    pooled = torch.empty((len(layers), len(texts), vectors.shape[2]), dtype=torch.float32,
                                         device=self.device)
                pooled[:, start:end] = vectors
        width = self.hidden_size if pooled is None else pooled.shape[2]
        host = pooled.cpu().numpy() if pooled is not None else None  # the one device-to-host copy of this call
        out = {}
        for i, k in enumerate(layers):
            rows = np.empty((len(texts), width), dtype=np.float32)
            if host is not None:
                rows[order] = host[i]
            self._check_finite(rows, k)
            out[k] = rows
        self.sentences_encoded += len(texts)
        return out

    def _check_finite(self, vectors: np.ndarray, layer: int) -> None:
        """NaN/inf vectors would rank at random and score ~0 without a word: an error naming the model."""
        bad = int((~np.isfinite(vectors)).any(axis=1).sum()) if vectors.size else 0
        if bad:
            raise LangsampError(f"--model {self.model_name}: {bad} of {len(vectors)} sentence vectors at layer "
                                f"{layer} are NaN or infinite (damaged weights, or an overflow in --dtype "
                                f"{str(self.dtype).removeprefix('torch.')}); use float32 or another checkpoint")

    def _pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def _encode_batch(self, input_ids: torch.Tensor, attention: torch.Tensor, layers: list[int]) -> torch.Tensor:
        """(layers, rows, d) pooled float32 vectors of one padded batch, left on the device."""
        last_only = self._read_last_hidden and layers == [self.layer]
        out = self.model(input_ids=input_ids, attention_mask=attention, output_hidden_states=not last_only)
        mask = self._pool_mask(attention)
        hidden = [out.last_hidden_state] if last_only else [out.hidden_states[k] for k in layers]
        return torch.stack([mean_pool(states, mask) for states in hidden])

    def _pool_mask(self, attention: torch.Tensor) -> torch.Tensor:
        if not self.exclude_special_tokens:
            return attention
        # Official variant: drop the first (<s>) and the last real (</s>) position of each row.
        mask = attention.clone()
        mask[:, 0] = 0
        last = attention.sum(dim=1) - 1
        mask[torch.arange(mask.shape[0], device=mask.device), last] = 0
        return mask


def model_depth(model: str) -> int:
    """Transformer blocks of ``model`` (from its config; no weights load)."""
    return config_depth(load_config(str(model)))


def parse_layers(value: str | Sequence[int], num_layers: int, flag: str = "--layers") -> list[int]:
    """``all`` (0..num_layers: 0 = embeddings), or a comma list such as ``4,6,8``; sorted, unique, checked."""
    if isinstance(value, (list, tuple)):
        parts = [str(v) for v in value]
    else:
        text = str(value).strip()
        if text.lower() == "all":
            return list(range(num_layers + 1))
        parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise LangsampError(f"{flag} {value!r}: give 'all' or a comma list of layer numbers such as 4,6,8")
    layers = sorted({int(p) for p in parts})
    out_of_range = [k for k in layers if k > num_layers]
    if out_of_range:
        raise LangsampError(f"{flag} {value!r}: the model has {num_layers} layers (0 = embeddings, {num_layers} = "
                            f"last block); {', '.join(map(str, out_of_range))} out of range")
    return layers


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, L, D) over ``mask`` (B, L), in float32; rows with an empty mask give 0.

    Half-precision states are summed with a float32 accumulator (no float32 copy of the whole
    batch); for float32 states this is exactly the plain float32 mean.
    """
    weights = mask.to(hidden.dtype).unsqueeze(-1)  # 0/1: exact in any dtype
    summed = (hidden * weights).sum(dim=1, dtype=torch.float32)
    return summed / mask.sum(dim=1, keepdim=True).to(torch.float32).clamp(min=1.0)


def token_budget_batches(sorted_lengths: np.ndarray, max_tokens: int,
                         min_fill: float = MIN_ROW_FILL) -> list[tuple[int, int]]:
    """``(start, end)`` slices of a longest-first length list: rows x longest row <= ``max_tokens``, and no row
    shorter than ``min_fill`` x the batch's longest, so padding stays under 1 - ``min_fill`` of every row.

    The second rule matters for the few hundred sentences of one language: a budget alone would put
    5-token and 40-token sentences in one batch (on CPU twice the work of the bounded batches).
    A row longer than the budget still gets a batch of its own.
    """
    lengths = np.asarray(sorted_lengths)
    spans, start, total = [], 0, len(lengths)
    while start < total:
        longest = max(int(lengths[start]), 1)
        end = min(total, start + max(1, int(max_tokens) // longest))
        short = np.flatnonzero(lengths[start:end] < min_fill * longest)
        if len(short):
            end = start + max(1, int(short[0]))
        spans.append((start, end))
        start = end
    return spans


class PaddedBatches:
    """Token ids in a given order, flattened once, cut into right-padded (ids, attention) batches."""

    def __init__(self, ids: list[list[int]], order: np.ndarray, lengths: np.ndarray, pad_id: int) -> None:
        self.lengths = lengths[order]
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths)))
        self.flat = np.fromiter(itertools.chain.from_iterable(ids[i] for i in order), dtype=np.int64,
                                count=int(self.offsets[-1]))
        self.pad_id = int(pad_id)

    def arrays(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        lengths = self.lengths[start:end]
        width = int(lengths.max()) if len(lengths) else 0
        attention = np.arange(width)[None, :] < lengths[:, None]
        input_ids = np.full(attention.shape, self.pad_id, dtype=np.int64)
        input_ids[attention] = self.flat[self.offsets[start]:self.offsets[end]]  # row-major: each row's prefix
        return input_ids, attention.astype(np.int64)

    def tensors(self, start: int, end: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        input_ids, attention = self.arrays(start, end)
        return (torch.from_numpy(input_ids).to(device, non_blocking=True),
                torch.from_numpy(attention).to(device, non_blocking=True))


def _encoding_note(sentences: int, layers: int) -> str:
    return f"encoding {sentences} sentences" + (f", {layers} layers" if layers > 1 else "")


def _progress(items: list, show: bool, description: str):
    if not show:
        yield from items
        return
    from rich.console import Console

    from langsamp_cli.progress import make_progress

    with make_progress(Console(stderr=True), unit="batch", transient=True) as bar:
        task = bar.add_task(description, total=len(items))
        for item in items:
            yield item
            bar.advance(task)
