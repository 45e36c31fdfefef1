"""Task configs: one YAML per task in ``langsamp_cli/task_configs/``, ``include:`` templates, flag overrides, validation.

Resolution order (later wins): included files (depth first, in the order listed) < the task file <
``config_file`` (a user YAML, e.g. ``--config``) < ``overrides`` (flags; None values are ignored).
``name_or_path`` is a task name (``sr-b`` -> ``langsamp_cli/task_configs/sr-b.yaml``) or a path to any YAML, so a
new task is one new file: a ``--config`` YAML may name its own ``task:`` (results are filed under that name)
as long as it keeps the command's task type, e.g. ``include: sr-t`` plus new file patterns and languages. The folder is ``langsamp_cli/task_configs`` (shipped in the wheel) or ``$LANGSAMP_TASK_CONFIGS``.
``include:`` takes a file name or a list; a relative name is looked up beside the including file,
then among the task configs (so a user YAML can say ``include: sr-b``). Dicts merge key by key.
"""

from __future__ import annotations

import difflib
import importlib.resources
import os
import re
from pathlib import Path
from typing import Any


import langsamp_cli
from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import read_yaml_mapping

TASK_TYPES = ("retrieval", "classification", "tagging")
REQUIRED = ("task", "type", "metric")
# Per type: key -> (check, what the value must be).
_POSITIVE_INT = (lambda v: _is_int(v) and v > 0, "an integer > 0")
_NON_NEGATIVE_INT = (lambda v: _is_int(v) and v >= 0, "an integer >= 0")
_POSITIVE_NUMBER = (lambda v: _is_number(v) and v > 0, "a number > 0")
_INT_LIST = (lambda v: isinstance(v, list) and v and all(_is_int(k) and k > 0 for k in v), "a list of integers > 0")
TYPE_KEYS: dict[str, dict[str, tuple]] = {
    "retrieval": {"layer": _NON_NEGATIVE_INT, "max_length": _POSITIVE_INT, "top_k": _INT_LIST,
                  "pairs": _POSITIVE_INT},
    "classification": {"lr": _POSITIVE_NUMBER, "epochs": _POSITIVE_INT, "batch_size": _POSITIVE_INT,
                       "grad_accum": _POSITIVE_INT, "max_length": _POSITIVE_INT, "num_labels": _POSITIVE_INT},
    "tagging": {"lr": _POSITIVE_NUMBER, "epochs": _POSITIVE_INT, "batch_size": _POSITIVE_INT,
                "grad_accum": _POSITIVE_INT, "max_length": _POSITIVE_INT, "num_labels": _POSITIVE_INT},
}
# Every key a task YAML (or a flag) may set, per type; anything else is a typo (one-line error with close matches).
# ``base_task`` and ``config_files`` are written by load_task_config itself.
COMMON_KEYS = frozenset({"task", "type", "metric", "metrics", "source_lang", "data_dir", "file_patterns",
                         "language_list", "languages", "output_dir", "model", "device", "description",
                         "base_task", "config_files"})
_TRANSFER_KEYS = frozenset({"lr", "epochs", "batch_size", "grad_accum", "max_length", "num_labels", "labels",
                            "eval_batch_size", "seeds", "patience", "weight_decay", "adam_epsilon", "max_grad_norm",
                            "scheduler", "warmup_ratio", "mixed_precision", "keep_model", "max_train_samples",
                            "max_eval_samples"})
ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "retrieval": COMMON_KEYS | {"layer", "layers", "max_length", "batch_size", "top_k", "pairs",
                                "exclude_special_tokens",
                                "dtype", "bible", "bible_dir", "english_bible"},
    "classification": COMMON_KEYS | _TRANSFER_KEYS | {"bible", "bible_dir"},
    "tagging": COMMON_KEYS | _TRANSFER_KEYS | {"entity_types", "train_file", "dev_file"},
}
# A task name becomes a folder under --output-dir: a plain name, never a path.
TASK_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def config_dir() -> Path:
    """``$LANGSAMP_TASK_CONFIGS`` (a user's own task folder) or the task configs shipped inside the package."""
    override = os.environ.get("LANGSAMP_TASK_CONFIGS")
    return Path(override).expanduser() if override else bundled_dir("task_configs")


def bundled_dir(name: str) -> Path:
    """A data folder shipped inside the installed package (wheel or checkout alike)."""
    folder = importlib.resources.files(langsamp_cli) / name
    # Installed wheels and editable checkouts are plain directories; a zipped install is not supported.
    return folder if isinstance(folder, Path) else Path(str(folder))


def available_tasks() -> list[str]:
    """Task names in the config folder (templates: base.yaml and files starting with '_' are not tasks)."""
    folder = config_dir()
    return sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "base" and not p.stem.startswith("_"))


def load_task_config(name_or_path: str | Path, overrides: dict | None = None,
                     config_file: str | Path | None = None) -> dict:
    """The resolved config of one task (see the module doc for what wins)."""
    path = resolve_config_path(name_or_path)
    config = read_with_includes(path)
    sources = [str(path)]
    if config_file is not None:
        extra_path = resolve_config_path(config_file)
        extra = read_with_includes(extra_path)
        base_task = config.get("task")
        renamed = extra.get("task") not in (None, base_task)
        if renamed and extra["task"] in available_tasks():
            raise LangsampError(f"{extra_path}: task '{extra['task']}' does not match '{base_task}'; use a config "
                                f"written for {base_task}, drop its task key, or give a new task a new name")
        if renamed and extra.get("type", config.get("type")) != config.get("type"):
            raise LangsampError(f"{extra_path}: task '{extra['task']}' is a {extra.get('type')} task, not "
                                f"{config.get('type')} like {base_task}; run it with an eval command of its type")
        config = deep_merge(config, extra)
        if config.get("task") != base_task:  # a new task defined in YAML on top of a built-in one
            config["base_task"] = base_task
        sources.append(str(extra_path))
    validate(config, " + ".join(sources))
    if overrides:
        config = deep_merge(config, overrides)
        validate(config, " + ".join([*sources, "flags"]))
    config["config_files"] = sources
    return config


def resolve_config_path(name_or_path: str | Path, directory: Path | None = None, kind: str = "task") -> Path:
    """A YAML path, or a name of a YAML in ``directory`` (default: the task folder); ``kind`` names it in errors."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text:
        if not path.is_file():
            raise LangsampError(f"{path}: config file not found")
        return path
    folder = directory or config_dir()
    candidate = folder / f"{text}.yaml"
    if candidate.is_file():
        return candidate
    if path.is_file():
        return path
    names = available_tasks() if directory is None else sorted(p.stem for p in folder.glob("*.yaml"))
    known = ", ".join(names) or f"none (no *.yaml in {folder})"
    raise LangsampError(f"unknown {kind} '{text}': available {kind}s are {known}; or pass the path of a YAML file")


def read_with_includes(path: Path, _stack: tuple[Path, ...] = ()) -> dict:
    """The YAML at ``path`` merged over everything it includes (recursively; a cycle is an error)."""
    real = path.resolve()
    if real in _stack:
        chain = " -> ".join(p.name for p in (*_stack, real))
        raise LangsampError(f"{path}: include cycle ({chain}); remove one of the include: lines")
    data = read_yaml(path)
    includes = data.pop("include", None) or []
    includes = [includes] if isinstance(includes, str) else includes
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise LangsampError(f"{path}: key 'include' must be a file name or a list of file names")
    merged: dict = {}
    for name in includes:
        merged = deep_merge(merged, read_with_includes(_include_path(path, name), (*_stack, real)))
    return deep_merge(merged, data)


def _include_path(including: Path, name: str) -> Path:
    # beside the file, the task folder, then the built-in templates (a $LANGSAMP_TASK_CONFIGS folder may use them)
    folders = [including.parent, *dict.fromkeys([config_dir(), bundled_dir("task_configs")])]
    candidates = [folder / name for folder in folders]
    if not name.endswith((".yaml", ".yml")):
        candidates += [folder / f"{name}.yaml" for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise LangsampError(f"{including}: include '{name}' not found beside it or in {config_dir()}")


def read_yaml(path: Path) -> dict:
    return read_yaml_mapping(path)


def deep_merge(base: dict, top: dict) -> dict:
    """``top`` over ``base``; nested dicts merge key by key; None in ``top`` never replaces a value."""
    merged = dict(base)
    for key, value in top.items():
        if value is None and key in merged:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validate(config: dict, source: str) -> None:
    """One-line error naming the file(s) and key for the first problem found."""
    for key in REQUIRED:
        if config.get(key) in (None, ""):
            hint = " (a user config can start with `include: <task>` to inherit one)" if key == "task" else ""
            raise LangsampError(f"{source}: missing required key '{key}'{hint}")
    kind = config["type"]
    if kind not in TASK_TYPES:
        raise LangsampError(f"{source}: key 'type' is {kind!r}; use one of {', '.join(TASK_TYPES)}")
    _check_task_name(config["task"], source)
    _check_known_keys(config, kind, source)
    for key, (check, what) in TYPE_KEYS[kind].items():
        if key not in config or config[key] is None:
            raise LangsampError(f"{source}: missing required key '{key}' for a {kind} task")
        if not check(config[key]):
            raise LangsampError(f"{source}: key '{key}' must be {what}, got {config[key]!r}")
    if kind == "retrieval":
        _check_retrieval_metric(config, source)


def _check_task_name(task: Any, source: str) -> None:
    text = str(task)
    if not isinstance(task, str) or not TASK_NAME_RE.match(text) or ".." in text:
        raise LangsampError(f"{source}: key 'task' is {text!r}; a task name is a folder name under --output-dir: "
                            "letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. my-task)")


def _check_known_keys(config: dict, kind: str, source: str) -> None:
    allowed = ALLOWED_KEYS[kind]
    for key in config:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), sorted(allowed), n=3)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else \
            f"a {kind} task takes {', '.join(sorted(allowed - {'base_task', 'config_files'}))}"
        raise LangsampError(f"{source}: unknown key {key!r} for a {kind} task; {hint}")


def _check_retrieval_metric(config: dict, source: str) -> None:
    metric = str(config["metric"])
    k = metric.removeprefix("acc@")
    if not (metric.startswith("acc@") and k.isdigit() and int(k) in config["top_k"]):
        raise LangsampError(f"{source}: key 'metric' is {metric!r}; a retrieval metric is acc@k with k in "
                            f"top_k {config['top_k']}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
