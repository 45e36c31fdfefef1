"""Task configs: one YAML per task in ``langsamp_cli/task_configs/``, ``include:`` templates, flag overrides, validation.

Resolution order (later wins): included files (depth first, in the order listed) < the task file <
``config_file`` (a user YAML, e.g. ``--config``) < ``overrides`` (flags; None values are ignored).
``name_or_path`` is a task name (``sr-b`` -> ``langsamp_cli/task_configs/sr-b.yaml``) or a path to any YAML, so a
new task is one new file: a ``--config`` YAML may name its own ``task:`` (results are filed under that name)
as long as it keeps the command's task type, e.g. ``include: sr-t`` plus its own data_dir, languages and pairs. The folder is ``langsamp_cli/task_configs`` (shipped in the wheel) or ``$LANGSAMP_TASK_CONFIGS``.
``include:`` takes a file name or a list; a relative name is looked up beside the including file,
then among the task configs (so a user YAML can say ``include: sr-b``). Dicts merge key by key.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import langsamp_cli
from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import read_yaml_mapping

if TYPE_CHECKING:
    from langsamp_cli.tasks.task_settings import TaskSettings

REQUIRED = ("task", "type")
INTERNAL_KEYS = ("base_task", "config_files")  # written by load_task_config itself
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
    config = validate(config, " + ".join(sources))
    if overrides:
        config = deep_merge(config, _checked_flags(overrides, config["type"]))
        config = validate(config, " + ".join([*sources, "flags"]))
    config["config_files"] = sources
    return config


def load_settings(name_or_path: str | Path, overrides: dict | None = None,
                  config_file: str | Path | None = None) -> TaskSettings:
    """:func:`load_task_config` as its type's settings object (RetrievalSettings, ClassificationSettings or
    TaggingSettings)."""
    from langsamp_cli.tasks.task_settings import SETTINGS_BY_TYPE

    loaded = load_task_config(name_or_path, overrides, config_file)
    return SETTINGS_BY_TYPE[loaded["type"]](**loaded)


def resolve_settings(task: str, flags: dict, config: str | Path | None = None) -> TaskSettings:
    """The settings an eval run uses: task YAML < ``config`` < ``flags`` (None = not given), typed and checked;
    a model is required."""
    settings = load_settings(task, flags, config)
    if not settings.model:
        raise LangsampError(f"--model is required for {task}: a checkpoint dir or a Hugging Face model name")
    return settings


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
    data = read_yaml_mapping(path)
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


def validate(config: dict, source: str) -> dict:
    """The config with every value converted to its type; one-line error naming the file(s) and key otherwise.

    The keys and their types are the fields of the task type's settings class
    (:mod:`langsamp_cli.tasks.task_settings`); run options (--overwrite, --shard, ...) are not YAML keys.
    """
    from langsamp_cli.settings import check_known_keys, convert_all, field_names
    from langsamp_cli.tasks.task_settings import SETTINGS_BY_TYPE

    for key in REQUIRED:
        if config.get(key) in (None, ""):
            hint = " (a user config can start with `include: <task>` to inherit one)" if key == "task" else ""
            raise LangsampError(f"{source}: missing required key '{key}'{hint}")
    kind = config["type"]
    if kind not in SETTINGS_BY_TYPE:
        raise LangsampError(f"{source}: key 'type' is {kind!r}; use one of {', '.join(SETTINGS_BY_TYPE)}")
    _check_task_name(config["task"], source)
    schema = SETTINGS_BY_TYPE[kind]
    what = f"for a {kind} task"
    check_known_keys(config, field_names(schema, run_only=False), source, what, internal=INTERNAL_KEYS)
    converted = convert_all(schema, config, source, required=True, what=what)
    if kind == "retrieval":
        _check_retrieval_metric(converted, source)
    return converted


def _checked_flags(overrides: dict, kind: str) -> dict:
    """Flag values converted to their types; a wrong one is named as the flag (``--layer: -1 must be ...``)."""
    from langsamp_cli.settings import check_known_keys, convert_all, field_names
    from langsamp_cli.tasks.task_settings import SETTINGS_BY_TYPE

    schema = SETTINGS_BY_TYPE[kind]
    given = {key: value for key, value in overrides.items() if value is not None}
    check_known_keys(given, field_names(schema, run_only=False), "flags", f"for a {kind} task",
                     internal=INTERNAL_KEYS)
    return convert_all(schema, given, as_flags=True)


def _check_task_name(task: Any, source: str) -> None:
    text = str(task)
    if not isinstance(task, str) or not TASK_NAME_RE.match(text) or ".." in text:
        raise LangsampError(f"{source}: key 'task' is {text!r}; a task name is a folder name under --output-dir: "
                            "letters, digits, '.', '_' and '-', starting with a letter or digit (e.g. my-task)")


def _check_retrieval_metric(config: dict, source: str) -> None:
    metric = str(config["metric"])
    k = metric.removeprefix("acc@")
    if not (metric.startswith("acc@") and k.isdigit() and int(k) in config["top_k"]):
        raise LangsampError(f"{source}: key 'metric' is {metric!r}; a retrieval metric is acc@k with k in "
                            f"top_k {config['top_k']}")
