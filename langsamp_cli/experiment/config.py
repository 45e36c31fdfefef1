"""Experiment YAML -> a validated :class:`ExperimentConfig` (everything checkable before hours of pretraining)."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import read_yaml_mapping
from langsamp_cli.settings import check_known_keys, convert_all, field_names
from langsamp_cli.pretrain.config import DEFAULT_PRESET, PretrainConfig
from langsamp_cli.variants import VARIANTS
from langsamp_cli.tasks import registry

EVAL_TASKS = tuple(registry.names())
RUNNERS = ("subprocess", "inprocess")
DEFAULT_RUNNER = "inprocess"
REPORT_KEYS = ("metric", "scale")
BASELINE = "vanilla"
# Settings the experiment sets itself for each stage (a config may not override them).
RESERVED = {"pretrain": {"output_dir", "lang_emb", "script_emb"},
            "eval": {"model", "output_dir", "overwrite", "shard", "config"},
            "similarity": {"model", "compare", "output_dir"},
            "plots": {"model", "output_dir", "table"}}
OUTPUT_PATH_KEYS = {"output_dir", "cache_dir", "config"}  # written (or reserved), not read


def input_path_keys() -> set[str]:
    """Keys whose value is an input path that must exist before anything runs (pre-flight check): the settings
    fields declared as paths (a tokenizer may be a hub name, so it is not one)."""
    from langsamp_cli.pretrain.config import PretrainConfig
    from langsamp_cli.settings import path_keys
    from langsamp_cli.tasks.task_settings import SETTINGS_BY_TYPE

    return path_keys(PretrainConfig, *SETTINGS_BY_TYPE.values()) - OUTPUT_PATH_KEYS


@dataclass
class ExperimentConfig:
    name: str
    source: str                                   # the YAML it came from
    output_dir: Path
    data_root: Path
    variants: list[str]
    pretrain: dict[str, Any]                      # PretrainConfig fields + preset + launcher, as written
    tasks: dict[str, dict[str, Any]]              # eval task -> its flags
    similarity: dict[str, Any] | None             # `langsamp similarity` flags; None = no similarity stage
    plots: dict[str, Any] | None                  # `langsamp plot-embeddings` flags; None = no plots
    report: dict[str, Any] = field(default_factory=dict)  # metric, scale
    description: str = ""                         # Markdown shown at the top of index.md
    runner: str = DEFAULT_RUNNER
    cache_dir: Path | None = None                 # embedding cache ($LANGSAMP_CACHE of every stage)
    # The ``pretrain`` section resolved (preset, values, checks) by validate(), once; every stage takes it from here.
    pretrain_config: PretrainConfig | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """What the YAML says (the resolved pretraining settings are derived from it, so not recorded twice)."""
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "pretrain_config"}
        return json.loads(json.dumps(record, default=str))


# source and pretrain_config: ours
TOP_LEVEL_KEYS = tuple(f.name for f in dataclasses.fields(ExperimentConfig) if f.name not in ("source", "pretrain_config"))


def experiments_dir() -> Path:
    from langsamp_cli.task_config import config_dir

    return config_dir() / "experiments"


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A YAML path, or a preset name (``cpu-demo`` -> langsamp_cli/task_configs/experiments/cpu-demo.yaml)."""
    from langsamp_cli.task_config import resolve_config_path as resolve_yaml

    return resolve_yaml(name_or_path, experiments_dir(), kind="experiment")


def load_experiment_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """Read, override (flags win), substitute ``{data_root}`` and validate an experiment YAML."""
    path = resolve_config_path(name_or_path)
    raw = read_yaml_mapping(path)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    check_known_keys(raw, TOP_LEVEL_KEYS, str(path), "in an experiment")
    data_root = Path(overrides.get("data_root") or raw.get("data_root") or ".")
    output_dir = Path(overrides.get("output_dir") or raw.get("output_dir") or f"runs/experiment-{path.stem}")
    pretrain = _mapping(raw.get("pretrain"), path, "pretrain")
    for key in ("max_steps", "corpus"):
        if overrides.get(key) is not None:
            pretrain[key] = overrides[key]
    tasks = _mapping(raw.get("tasks"), path, "tasks")
    if overrides.get("tasks") is not None:
        tasks = _select_tasks(tasks, overrides["tasks"], path)
    config = ExperimentConfig(
        name=str(raw.get("name") or path.stem),
        source=str(path),
        output_dir=output_dir,
        data_root=data_root,
        variants=_variants(overrides.get("variants", raw.get("variants", list(VARIANTS))), path),
        pretrain=_substitute(pretrain, data_root),
        tasks={task: _substitute(_mapping(flags, path, f"tasks.{task}"), data_root) for task, flags in tasks.items()},
        similarity=_optional_section(raw, "similarity", path, data_root),
        plots=_optional_section(raw, "plots", path, data_root),
        report=_mapping(raw.get("report"), path, "report"),
        description=str(raw.get("description") or "").strip(),
        runner=str(overrides.get("runner") or raw.get("runner") or DEFAULT_RUNNER),
        cache_dir=Path(raw["cache_dir"]) if raw.get("cache_dir") else None,
    )
    validate(config)
    return config


def _mapping(value: Any, path: Path, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LangsampError(f"{path}: '{where}' must be a mapping of settings, got {type(value).__name__}")
    return {str(k).replace("-", "_") if where != "tasks" else str(k): v for k, v in value.items()}


def _optional_section(raw: dict, key: str, path: Path, data_root: Path) -> dict[str, Any] | None:
    """Absent or false -> None (stage off); true or a mapping -> its flags."""
    value = raw.get(key)
    if value is None or value is False:
        return None
    return _substitute({} if value is True else _mapping(value, path, key), data_root)


def _variants(value: Any, path: Path) -> list[str]:
    known = VARIANTS
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value or []]
    items = list(dict.fromkeys(v for v in items if v))
    bad = [v for v in items if v not in known]
    if bad or not items:
        raise LangsampError(f"{path}: variants {', '.join(bad) or '(none)'}: choose from {', '.join(known)}")
    return sorted(items, key=known.index)


def _select_tasks(tasks: dict[str, Any], chosen: str | list[str], path: Path) -> dict[str, Any]:
    names = [t.strip() for t in chosen.split(",")] if isinstance(chosen, str) else list(chosen)
    missing = [t for t in names if t and t not in tasks]
    if missing:
        raise LangsampError(f"--tasks {', '.join(missing)}: not configured in {path} (it has "
                            f"{', '.join(tasks) or 'no tasks'}); add a tasks.<name> section first")
    return {t: tasks[t] for t in names if t}


def _substitute(value: Any, data_root: Path) -> Any:
    """``{data_root}`` in any string value becomes the data root."""
    if isinstance(value, str):
        return value.replace("{data_root}", str(data_root))
    if isinstance(value, dict):
        return {k: _substitute(v, data_root) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, data_root) for v in value]
    return value


def validate(config: ExperimentConfig) -> None:
    """Everything that can be checked before hours of pretraining: settings, flags, variants, runner."""
    from langsamp_cli.analysis.pca_run import PlotSettings
    from langsamp_cli.analysis.similarity_run import SimilaritySettings

    where = config.source
    if config.runner not in RUNNERS:
        raise LangsampError(f"{where}: runner '{config.runner}': choose {' or '.join(RUNNERS)}")
    bad_tasks = [t for t in config.tasks if t not in EVAL_TASKS]
    if bad_tasks:
        raise LangsampError(f"{where}: tasks {', '.join(bad_tasks)} unknown; choose from {', '.join(EVAL_TASKS)}")
    config.pretrain_config = pretrain_settings(config)  # unknown/invalid pretraining settings fail here
    for task, flags in config.tasks.items():
        _check_task_section(task, flags, f"{where}: tasks.{task}")
    check_known_keys(config.report, REPORT_KEYS, f"{where}: report", "of the report section")
    if config.similarity is not None:
        library_arguments(SimilaritySettings, config.similarity, f"{where}: similarity",
                          given=tuple(RESERVED["similarity"]))
    if config.plots is not None:
        library_arguments(PlotSettings, config.plots, f"{where}: plots", given=tuple(RESERVED["plots"]))


def _check_task_section(task: str, flags: dict[str, Any], where: str) -> None:
    """The keys of ``tasks.<task>`` are the task's settings (tasks/task_settings.py), typed and checked now."""
    from langsamp_cli.task_config import INTERNAL_KEYS
    from langsamp_cli.tasks.task_settings import SETTINGS_BY_TYPE

    schema = SETTINGS_BY_TYPE[registry.get(task).type]
    _refuse_reserved(flags, RESERVED["eval"], where)
    # a task's name and type are the registry's: accepted, never suggested
    check_known_keys(flags, field_names(schema), where, f"for {task}", internal=(*INTERNAL_KEYS, "task", "type"))
    convert_all(schema, flags, where)


def _refuse_reserved(flags: dict[str, Any], reserved: set[str], where: str) -> None:
    for key in flags:
        if key in reserved:
            raise LangsampError(f"{where}.{key}: set by the experiment itself; remove it")


def library_arguments(settings_class: type, flags: dict[str, Any], section: str,
                      given: tuple[str, ...] = ()) -> dict[str, Any]:
    """A stage's YAML section as the typed field values of ``settings_class`` (the command's settings), less the
    ``given`` fields the experiment sets itself. Unknown, reserved, wrong or missing: one-line error."""
    _refuse_reserved(flags, set(given), section)
    names = [name for name in field_names(settings_class) if name not in given]
    check_known_keys(flags, names, section, "for this stage")
    values = convert_all(settings_class, {k: v for k, v in flags.items() if v is not None}, section)
    missing = [name for name in _required_fields(settings_class) if name not in (*values, *given)]
    if missing:
        raise LangsampError(f"{section}.{missing[0]}: required; set it in the experiment YAML")
    return values


def _required_fields(settings_class: type) -> list[str]:
    """The fields a settings object cannot do without: no default and no ``| None`` in their type."""
    hints = typing.get_type_hints(settings_class)
    return [f.name for f in dataclasses.fields(settings_class)
            if f.default is None and type(None) not in typing.get_args(hints[f.name])]


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def flags_to_argv(flags: dict[str, Any]) -> list[str]:
    """{key: value} -> CLI arguments: lists become comma lists, booleans --x / --no-x, None is left out."""
    argv: list[str] = []
    for key, value in flags.items():
        if value is None:
            continue
        if isinstance(value, bool):
            argv.append(_flag(key) if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            argv += [_flag(key), ",".join(map(str, value))]
        else:
            argv += [_flag(key), str(value)]
    return argv


def pretrain_settings(config: ExperimentConfig) -> PretrainConfig:
    """The resolved PretrainConfig every variant shares (validated by the pretrain module itself)."""
    from langsamp_cli.pretrain.config import build_config

    values = {k: v for k, v in config.pretrain.items() if k not in ("preset", "launcher")}
    reserved = sorted(set(values) & RESERVED["pretrain"])
    if reserved:
        raise LangsampError(f"{config.source}: pretrain.{reserved[0]} is set by the experiment itself; remove it")
    return build_config(config.pretrain.get("preset", DEFAULT_PRESET), None, values,
                        overrides_from=f"{config.source}: pretrain")


def missing_paths(config: ExperimentConfig) -> list[str]:
    """'section.key: path' for every configured input path that does not exist."""
    sections = {"pretrain": config.pretrain, **{f"tasks.{t}": f for t, f in config.tasks.items()},
                "similarity": config.similarity or {}}
    missing = []
    paths = input_path_keys()
    for section, flags in sections.items():
        for key, value in flags.items():
            values = value if isinstance(value, list) else [value]
            if key in paths and value is not None:
                missing += [f"{section}.{key}: {v}" for v in values if not Path(str(v)).exists()]
    return missing
