"""Where a ``--model`` comes from, decided before anything heavy loads: a local directory or a hub name.

Every command calls :func:`resolve_model` once per model flag after its cheap checks (flags, data folders,
language lists) and before loading a model, so that

- a value that looks like a path (``runs/x/final``, ``./m``, ``~/m``, ``/abs``) and does not exist is one
  line naming the path, at once, instead of a minute of hub retries ending in an unrelated hub error;
- a hub name on a machine that cannot reach the hub is detected once, with one short TCP probe (no HTTP
  retries), and the message says how to fix it: a local path, or ``HF_HUB_OFFLINE=1`` with a filled cache;
- with ``HF_HUB_OFFLINE=1`` a hub name missing from the local cache is reported without any network use.
"""

from __future__ import annotations

import os
import re
import socket
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from langsamp_cli.errors import LangsampError

PROBE_TIMEOUT_S = 3.0
DEFAULT_ENDPOINT = "https://huggingface.co"
# Hub ids: "name" or "owner/name"; letters, digits, '-', '_', '.' (never starting with '.' or '-').
_HUB_ID_RE = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")
_TRUE = ("1", "true", "yes", "on")


def resolve_model(name: str, flag: str = "--model", default: bool = False, needs_config: bool = True) -> str:
    """``name`` as the loaders should get it (a user path expanded), or a one-line LangsampError.

    ``default``: the name was not given by the user (a command's built-in default), which changes the advice.
    ``needs_config``: a local folder must hold a model's config.json (False for a tokenizer folder).
    """
    text = str(name).strip()
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise LangsampError(f"{flag} {text}: {path} is a file, not a model directory; pass the folder that "
                                "holds config.json (e.g. runs/pretrain-demo/final)")
        if needs_config and not (path / "config.json").is_file():
            raise LangsampError(f"{flag} {text}: no config.json in this folder, so it is not a model; "
                                f"{_model_folder_hint(path)}")
        return str(path)
    if looks_like_path(text):
        raise LangsampError(f"{flag} {text}: no such directory ({path.absolute()}); pass an existing checkpoint "
                            "directory (e.g. runs/pretrain-demo/final) or a Hugging Face model name")
    if not _HUB_ID_RE.match(text):
        raise LangsampError(f"{flag} {text!r}: not a local directory and not a Hugging Face model name "
                            "(owner/name); pass an existing checkpoint directory")
    what = f"{text} (the default of {flag})" if default else f"{flag} {text}"
    local = "pass --model PATH to a local checkpoint directory" if default else \
        "pass a local checkpoint directory instead"
    cached = in_hub_cache(text)
    if hub_offline():
        if cached:
            return text
        raise LangsampError(f"{what}: not a local directory and not in the Hugging Face cache ({hub_cache_dir()}), "
                            f"and HF_HUB_OFFLINE is set; {local}, or download it once on a machine that is online")
    reachable, why = hub_reachable()
    if reachable:
        return text
    if cached:
        raise LangsampError(f"{what}: the Hugging Face hub is unreachable ({why}) but the model is in the local "
                            f"cache; rerun with HF_HUB_OFFLINE=1 to use it, or {local}")
    raise LangsampError(f"{what}: not a local directory, and the Hugging Face hub is unreachable ({why}); {local}, "
                        "or set HF_HUB_OFFLINE=1 on a machine whose Hugging Face cache has the model")


def _model_folder_hint(path: Path) -> str:
    """Where the model probably is: a run folder's final/ (or its newest checkpoint), else the general advice."""
    inside = sorted(p.parent for p in path.glob("*/config.json"))
    final = [p for p in inside if p.name in ("final", "best")]
    if final or inside:
        return f"pass {(final or inside)[-1]}"
    return "pass the folder that holds config.json and the weights (e.g. runs/pretrain-demo/final)"


def looks_like_path(text: str) -> bool:
    """A value no hub id can be: ./x, ../x, ~/x, /abs, a\\b, a/b/c, x/ ; or a/b whose first part is a local folder."""
    if text.startswith((".", "~", "/")) or "\\" in text or text.endswith("/") or text.count("/") > 1:
        return True
    return "/" in text and Path(text.split("/", 1)[0]).expanduser().is_dir()


def hub_offline() -> bool:
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def in_hub_cache(repo_id: str) -> bool:
    """True when the local Hugging Face cache holds a snapshot of the model (no network)."""
    snapshots = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").strip() or DEFAULT_ENDPOINT


@lru_cache(maxsize=None)
def _probe(host: str, port: int, timeout: float) -> tuple[bool, str]:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except socket.timeout:
        return False, f"no answer from {host}:{port} within {timeout:.0f} s"
    except OSError as err:
        reason = err.strerror or type(err).__name__
        return False, f"cannot connect to {host}:{port}: {reason}"


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(reachable, why not): one TCP connect to the hub endpoint, or to the HTTPS proxy when one is set."""
    endpoint = urlparse(hub_endpoint())
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    target = urlparse(proxy if proxy and "://" in proxy else f"http://{proxy}") if proxy else endpoint
    host = target.hostname or "huggingface.co"
    port = target.port or (443 if target.scheme == "https" else 80)
    return _probe(host, port, timeout)


# The files a tokenizer's vocabulary lives in (fast tokenizers, SentencePiece, WordPiece, BPE). A folder with
# none of them is not refused by transformers 5: it silently builds a tokenizer of the 5 special tokens.
TOKENIZER_VOCAB_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model",
                         "vocab.txt", "vocab.json")


def lacks_tokenizer(model: str) -> bool:
    """A local model folder without tokenizer files (transformers would make up a 5-token tokenizer for it); a hub
    name carries its own."""
    path = Path(str(model)).expanduser()
    return path.is_dir() and not any((path / name).is_file() for name in TOKENIZER_VOCAB_FILES)


def require_tokenizer(model: str, flag: str = "--model") -> None:
    """A local model folder without tokenizer files is one line; hub names (they carry theirs) pass."""
    if not lacks_tokenizer(model):
        return
    raise LangsampError(f"{flag} {model}: no tokenizer files in the folder ({', '.join(TOKENIZER_VOCAB_FILES[:2])}, "
                        "...); refusing to evaluate it with a made-up 5-token tokenizer; copy the tokenizer of "
                        "the model it was trained from into it (tokenizer.save_pretrained(folder))")
