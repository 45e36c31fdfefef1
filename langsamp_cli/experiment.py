"""`langsamp experiment`: the whole LangSAMP ablation study from one YAML file.

One experiment = pretrain the chosen variants (vanilla, lang, script, both: the paper's Table 2) from the
same initialisation, corpus, seed and step budget; evaluate every checkpoint on the chosen tasks; compare
each LangSAMP variant's language neutrality with the vanilla model; plot the learned embedding tables; and
write one folder with the tables and pictures together (``index.md`` + ``index.html``).

The work is a list of stages run top to bottom::

    tokenizer                 one Unigram tokenizer shared by every variant (from-scratch runs only)
    pretrain:<variant>        `langsamp pretrain` (always --resume: an interrupted run continues)
    eval:<task>:<variant>     `langsamp eval <task>` (it skips finished language units itself)
    similarity:<variant>      `langsamp similarity --compare <vanilla>`
    plots:<variant>           `langsamp plot-embeddings` (variants that have tables)
    report                    report library -> report/ tables + index.md / index.html

CLI stages run as subprocesses (``sys.executable -m langsamp_cli ...``; pretraining may get a launcher
prefix such as ``accelerate launch --num_processes 4``) or, with ``runner: inprocess``, inside this
process. Each stage writes its output to ``logs/<stage>.log``. ``experiment_state.json`` records every
stage's status and *signature* (its command and inputs): a rerun skips stages whose signature is
unchanged, and never redoes a pretraining run whose ``final/`` exists. A failure is recorded and stops
the run with one line naming the stage and its log.

Same initialisation: the pretrain command seeds ``torch.manual_seed(seed)`` right before it builds the
model, and the backbone is built before the (optional) language/script tables, so with the shared
tokenizer every variant starts from identical backbone weights (tests/test_experiment.py checks this).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import html
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import read_yaml_mapping
from langsamp_cli.io_utils import atomic_dir, atomic_write_json, atomic_write_text

VARIANTS = ("vanilla", "lang", "script", "both")
VARIANT_FLAGS = {"vanilla": (False, False), "lang": (True, False), "script": (False, True), "both": (True, True)}
EVAL_TASKS = ("sr-b", "sr-t", "taxi1500", "sib200", "ner", "pos")
RUNNERS = ("subprocess", "inprocess")
STATE_FILE = "experiment_state.json"
STATE_FORMAT = 1
BASELINE = "vanilla"
# Settings the experiment sets itself for each stage (a config may not override them).
RESERVED = {"pretrain": {"output_dir", "lang_emb", "script_emb"},
            "eval": {"model", "output_dir", "overwrite", "shard", "config"},
            "similarity": {"model", "compare", "output_dir"},
            "plots": {"model", "output_dir", "table"}}
# Keys whose value is a path that must exist before anything runs (pre-flight check).
PATH_KEYS = {"data_dir", "bible_dir", "english_bible", "train_file", "dev_file", "bible", "lang_map", "tokenizer",
             "corpus"}
EXPORT_SUFFIXES = (".md", ".html", ".csv", ".png", ".tex")


# ---------------------------------------------------------------------------- config
@dataclass
class ExperimentConfig:
    name: str
    source: str                                   # the YAML it came from
    output_dir: Path
    data_root: Path
    variants: list[str]
    pretrain: dict[str, Any]                      # PretrainConfig fields + preset + launcher
    tasks: dict[str, dict[str, Any]]              # eval task -> its flags
    similarity: dict[str, Any] | None             # `langsamp similarity` flags; None = no similarity stage
    plots: dict[str, Any] | None                  # `langsamp plot-embeddings` flags; None = no plots
    report: dict[str, Any] = field(default_factory=dict)  # metric, scale
    description: str = ""                         # Markdown shown at the top of index.md
    runner: str = "subprocess"
    cache_dir: Path | None = None                 # embedding cache ($LANGSAMP_CACHE of every stage)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


def experiments_dir() -> Path:
    from langsamp_cli.task_config import config_dir

    return config_dir() / "experiments"


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A YAML path, or a preset name (``cpu-demo`` -> task_configs/experiments/cpu-demo.yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    preset = experiments_dir() / f"{name_or_path}.yaml"
    if preset.is_file():
        return preset
    known = ", ".join(sorted(p.stem for p in experiments_dir().glob("*.yaml"))) or "none"
    raise LangsampError(f"{name_or_path}: no such experiment file; pass a YAML path or a preset ({known})")


def load_experiment_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read, override (flags win), substitute ``{data_root}`` and validate an experiment YAML."""
    path = resolve_config_path(name_or_path)
    raw = _read_yaml(path)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    known = {"name", "description", "output_dir", "data_root", "variants", "pretrain", "tasks", "similarity",
             "plots", "report", "runner", "cache_dir"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise LangsampError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
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
        runner=str(overrides.get("runner") or raw.get("runner") or "subprocess"),
        cache_dir=Path(raw["cache_dir"]) if raw.get("cache_dir") else None,
    )
    validate(config)
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path)


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
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value or []]
    items = list(dict.fromkeys(v for v in items if v))
    bad = [v for v in items if v not in VARIANTS]
    if bad or not items:
        raise LangsampError(f"{path}: variants {', '.join(bad) or '(none)'}: choose from {', '.join(VARIANTS)}")
    return sorted(items, key=VARIANTS.index)


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
    where = config.source
    if config.runner not in RUNNERS:
        raise LangsampError(f"{where}: runner '{config.runner}': choose {' or '.join(RUNNERS)}")
    bad_tasks = [t for t in config.tasks if t not in EVAL_TASKS]
    if bad_tasks:
        raise LangsampError(f"{where}: tasks {', '.join(bad_tasks)} unknown; choose from {', '.join(EVAL_TASKS)}")
    pretrain_settings(config)  # unknown/invalid pretraining settings fail here
    for task, flags in config.tasks.items():
        _check_flags(["eval", task], flags, RESERVED["eval"], f"{where}: tasks.{task}")
    if config.similarity is not None:
        _check_flags(["similarity"], config.similarity, RESERVED["similarity"], f"{where}: similarity")
    if config.plots is not None:
        _check_flags(["plot-embeddings"], config.plots, RESERVED["plots"], f"{where}: plots")


def _check_flags(command: list[str], flags: dict[str, Any], reserved: set[str], where: str) -> None:
    options = command_options(command)
    for key in flags:
        if key in reserved:
            raise LangsampError(f"{where}.{key}: set by the experiment itself; remove it")
        if _flag(key) not in options:
            raise LangsampError(f"{where}.{key}: `langsamp {' '.join(command)}` has no --{_flag(key)[2:]}; "
                                f"known: {', '.join(sorted(o[2:].replace('-', '_') for o in options))}")


def command_options(command: list[str]) -> set[str]:
    """Every --long option (and --no-x switch) of a langsamp (sub)command, read from the CLI itself."""
    import typer

    from langsamp_cli.cli import app

    cmd: Any = typer.main.get_command(app)
    for name in command:
        cmd = cmd.commands[name]
    return {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")}


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


def pretrain_settings(config: ExperimentConfig) -> Any:
    """The resolved PretrainConfig every variant shares (validated by the pretrain module itself)."""
    from langsamp_cli.pretrain.config import build_config

    values = {k: v for k, v in config.pretrain.items() if k not in ("preset", "launcher")}
    reserved = sorted(set(values) & RESERVED["pretrain"])
    if reserved:
        raise LangsampError(f"{config.source}: pretrain.{reserved[0]} is set by the experiment itself; remove it")
    try:
        return build_config(config.pretrain.get("preset", "demo"), None, values)
    except TypeError as err:
        raise LangsampError(f"{config.source}: pretrain: {err}") from None


def missing_paths(config: ExperimentConfig) -> list[str]:
    """'section.key: path' for every configured input path that does not exist."""
    sections = {"pretrain": config.pretrain, **{f"tasks.{t}": f for t, f in config.tasks.items()},
                "similarity": config.similarity or {}}
    missing = []
    for section, flags in sections.items():
        for key, value in flags.items():
            values = value if isinstance(value, list) else [value]
            if key in PATH_KEYS and value is not None:
                missing += [f"{section}.{key}: {v}" for v in values if not Path(str(v)).exists()]
    return missing


# ---------------------------------------------------------------------------- stages
@dataclass
class Stage:
    name: str
    kind: str                                          # tokenizer | pretrain | eval | similarity | plots | report
    argv: list[str] | None = None                      # langsamp CLI arguments (None: an in-process function)
    launcher: list[str] | None = None                  # command prefix replacing `python` (pretraining on GPUs)
    function: Callable[[], None] | None = None
    signature: str = ""                                # what must be unchanged for a finished stage to be skipped
    finished: Callable[[], bool] | None = None         # an output that proves the stage finished (pretrain: final/)

    @property
    def log_name(self) -> str:
        return self.name.replace(":", "_") + ".log"


@dataclass
class Layout:
    """Every path of an experiment folder."""
    root: Path

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def run_dir(self, variant: str) -> Path:
        return self.root / "pretrain" / variant

    def final_dir(self, variant: str) -> Path:
        return self.run_dir(variant) / "final"

    def model(self, variant: str) -> Path:
        """``models/<variant>``: a link to the final checkpoint, so results and plots carry the variant name."""
        return self.root / "models" / variant

    def similarity(self, variant: str) -> Path:
        return self.root / "similarity" / variant

    def plots(self, variant: str) -> Path:
        return self.root / "plots" / variant


def plan_stages(config: ExperimentConfig) -> list[Stage]:
    layout = Layout(config.output_dir)
    settings = pretrain_settings(config)
    stages: list[Stage] = []
    shared_tokenizer = settings.is_from_scratch and not settings.tokenizer
    if shared_tokenizer:
        stages.append(Stage("tokenizer", "tokenizer", function=lambda: train_shared_tokenizer(config, layout),
                            signature=_hash([settings.corpus, settings.languages, settings.vocab_size,
                                             settings.eval_lines if settings.eval_every > 0 else 0]),
                            finished=lambda: (layout.tokenizer / "tokenizer_config.json").is_file()))
    pretrain_yaml = pretrain_yaml_text(config, layout.tokenizer if shared_tokenizer else None)
    for variant in config.variants:
        stages.append(pretrain_stage(config, layout, variant, pretrain_yaml))
    for task, flags in config.tasks.items():
        for variant in config.variants:
            argv = ["eval", task, "--model", str(layout.model(variant)), "--output-dir", str(layout.results),
                    *flags_to_argv(flags)]
            stages.append(Stage(f"eval:{task}:{variant}", "eval", argv=argv, signature=_hash(argv)))
    if config.similarity is not None and BASELINE in config.variants:
        for variant in (v for v in config.variants if v != BASELINE):
            argv = ["similarity", "--model", str(layout.model(variant)), "--compare", str(layout.model(BASELINE)),
                    "--output-dir", str(layout.similarity(variant)), *flags_to_argv(config.similarity)]
            stages.append(Stage(f"similarity:{variant}", "similarity", argv=argv, signature=_hash(argv)))
    if config.plots is not None:
        for variant in (v for v in config.variants if v != "vanilla"):
            table = {"lang": "language", "script": "script", "both": "both"}[variant]
            argv = ["plot-embeddings", "--model", str(layout.model(variant)), "--table", table,
                    "--output-dir", str(layout.plots(variant)), *flags_to_argv(config.plots)]
            stages.append(Stage(f"plots:{variant}", "plots", argv=argv, signature=_hash(argv)))
    stages.append(Stage("report", "report", function=lambda: write_experiment_report(config)))
    return stages


def pretrain_stage(config: ExperimentConfig, layout: Layout, variant: str, pretrain_yaml: str) -> Stage:
    lang_emb, script_emb = VARIANT_FLAGS[variant]
    argv = ["pretrain", "--preset", str(config.pretrain.get("preset", "demo")),
            "--config", str(layout.root / "configs" / "pretrain.yaml"),
            "--output-dir", str(layout.run_dir(variant)),
            "--lang-emb" if lang_emb else "--no-lang-emb", "--script-emb" if script_emb else "--no-script-emb",
            "--resume", "--no-progress"]
    launcher = config.pretrain.get("launcher")
    return Stage(f"pretrain:{variant}", "pretrain", argv=argv,
                 launcher=shlex.split(launcher) if launcher else None,
                 signature=_hash([argv, launcher, pretrain_yaml]),
                 finished=lambda: (layout.final_dir(variant) / "config.json").is_file())


def pretrain_yaml_text(config: ExperimentConfig, tokenizer: Path | None) -> str:
    """The settings file every variant's `langsamp pretrain --config` reads (identical for all variants)."""
    values = {k: v for k, v in config.pretrain.items() if k not in ("preset", "launcher")}
    if tokenizer is not None:
        values["tokenizer"] = str(tokenizer)
    return yaml.safe_dump(values, sort_keys=True, allow_unicode=True)


def train_shared_tokenizer(config: ExperimentConfig, layout: Layout) -> None:
    """One Unigram tokenizer on the corpus for every variant: same vocabulary -> same initial weights."""
    from langsamp_cli.pretrain.corpus import scan_corpus
    from langsamp_cli.pretrain.trainer import default_corpus_dir, tokenizer_training_lines
    from langsamp_cli.tokenizer import train_unigram_tokenizer

    settings = pretrain_settings(config)
    corpus = scan_corpus(settings.corpus or default_corpus_dir(), settings.languages,
                         eval_lines=settings.eval_lines if settings.eval_every > 0 else 0)
    lines = tokenizer_training_lines(corpus)
    print(f"training a {settings.vocab_size:,}-piece Unigram tokenizer on {len(lines):,} lines of "
          f"{len(corpus.sources)} language-scripts")
    with atomic_dir(layout.tokenizer) as tmp:
        train_unigram_tokenizer(lines, settings.vocab_size, tmp)


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------- state
class ExperimentState:
    """``experiment_state.json``: one record per stage (status, signature, times, log), written atomically."""

    def __init__(self, path: Path, config: ExperimentConfig) -> None:
        self.path = path
        self.data: dict[str, Any] = {"format": STATE_FORMAT, "stages": {}}
        if path.is_file():
            try:
                self.data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise LangsampError(f"{path}: unreadable experiment state ({err}); delete it to rebuild "
                                    "(finished pretraining and evaluation units are kept)") from None
        self.data["config"] = config.to_dict()

    def stage(self, name: str) -> dict[str, Any]:
        return self.data["stages"].get(name, {})

    def update(self, name: str, **record: Any) -> None:
        self.data["stages"][name] = {**self.stage(name), **record}
        self.data["updated"] = _now()
        atomic_write_json(self.path, self.data)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------------------- running
@dataclass
class ExperimentResult:
    output_dir: Path
    ran: list[str]
    skipped: list[str]
    index_md: Path | None
    index_html: Path | None
    seconds: float


def stage_status(stage: Stage, state: ExperimentState) -> tuple[str, str]:
    """('done' | 'pending' | 'failed' | 'interrupted', why) for a stage before it runs."""
    record = state.stage(stage.name)
    if stage.kind == "pretrain" and stage.finished is not None and stage.finished():
        changed = record.get("signature") not in (None, stage.signature)
        return "done", "final/ exists" + (" (settings changed since; delete the run to retrain)" if changed else "")
    if stage.kind == "report":
        return ("done", "inputs unchanged") if record.get("status") == "done" and \
            record.get("signature") == report_signature(state, stage) else ("pending", "")
    if record.get("status") == "done" and record.get("signature") == stage.signature and \
            (stage.finished is None or stage.finished()):
        return "done", "finished earlier"
    if record.get("status") in ("failed", "interrupted", "running"):
        return "pending", f"last attempt {record['status']}"
    return "pending", "settings changed" if record.get("status") == "done" else ""


def report_signature(state: ExperimentState, report: Stage) -> str:
    """The report is rewritten when any other stage finished again since it was last written."""
    finished = {name: rec.get("finished") for name, rec in state.data["stages"].items() if name != report.name}
    return _hash(finished)


def run_experiment(config: ExperimentConfig, console: Console | None = None, dry_run: bool = False,
                   export_dir: Path | None = None) -> ExperimentResult:
    console = console or Console(stderr=True)
    started = time.time()
    layout = Layout(config.output_dir)
    stages = plan_stages(config)
    if dry_run:
        console.print(stage_table(stages, None, config, show_commands=True))
        for problem in missing_paths(config):
            console.print(f"[yellow]missing[/] {problem}", highlight=False, soft_wrap=True)
        return ExperimentResult(layout.root, [], [], None, None, 0.0)
    problems = missing_paths(config)
    if problems:
        raise LangsampError(f"{config.source}: {problems[0]} does not exist"
                            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                            + "; set the path in the YAML, or --data-root / --corpus")
    layout.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(layout.root / "configs" / "pretrain.yaml", pretrain_yaml_text(
        config, layout.tokenizer if any(s.kind == "tokenizer" for s in stages) else None))
    atomic_write_text(layout.root / "configs" / "experiment.yaml",
                      yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
    state = ExperimentState(layout.state, config)
    console.print(stage_table(stages, state, config))
    ran, skipped = [], []
    for stage in stages:
        status, why = stage_status(stage, state)
        if status == "done":
            skipped.append(stage.name)
            if stage.kind == "pretrain":
                link_model(layout, stage.name.split(":", 1)[1])
            continue
        run_stage(stage, state, layout, config, console)
        ran.append(stage.name)
    console.print(stage_table(stages, state, config))
    index_md, index_html = layout.root / "index.md", layout.root / "index.html"
    if export_dir is not None:
        exported = export_report(layout.root, Path(export_dir))
        console.print(f"exported {len(exported)} files to {export_dir}", highlight=False)
    console.print(f"experiment {config.name}: {len(ran)} stage(s) run, {len(skipped)} already done; "
                  f"index: {index_md}", highlight=False, soft_wrap=True)
    return ExperimentResult(layout.root, ran, skipped, index_md, index_html, time.time() - started)


def run_stage(stage: Stage, state: ExperimentState, layout: Layout, config: ExperimentConfig,
              console: Console) -> None:
    log = layout.logs / stage.log_name
    log.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]▶ {stage.name}[/] (log: {log})", highlight=False, soft_wrap=True)
    signature = report_signature(state, stage) if stage.kind == "report" else stage.signature
    state.update(stage.name, status="running", started=_now(), log=str(log), signature=signature, error=None)
    began = time.time()
    try:
        code, last_line = execute(stage, log, stage_env(config, layout), config.runner)
    except KeyboardInterrupt:
        state.update(stage.name, status="interrupted", seconds=round(time.time() - began, 1))
        raise
    seconds = round(time.time() - began, 1)
    if code != 0:
        state.update(stage.name, status="failed", seconds=seconds, exit_code=code, error=last_line)
        detail = f": {last_line}" if last_line else ""
        raise LangsampError(f"stage {stage.name} failed (exit {code}){detail}; log: {log}; fix it and rerun "
                            "the same command to continue from this stage")
    if stage.kind == "pretrain":
        link_model(layout, stage.name.split(":", 1)[1])
    state.update(stage.name, status="done", finished=_now(), seconds=seconds, exit_code=0)
    console.print(f"  [green]done[/] {stage.name} in {_duration(seconds)}", highlight=False)


def stage_env(config: ExperimentConfig, layout: Layout) -> dict[str, str]:
    """Environment every stage gets: a wider log, and one embedding cache for the whole experiment."""
    return {"COLUMNS": "120", "LANGSAMP_CACHE": str(config.cache_dir or layout.cache)}


def execute(stage: Stage, log: Path, env: dict[str, str], runner: str) -> tuple[int, str]:
    """Run one stage with its output in ``log``; returns (exit code, last non-empty line of the log)."""
    with open(log, "w", encoding="utf-8") as handle:
        handle.write(f"# {stage.name} started {_now()}\n")
        if stage.argv is not None:
            handle.write("# " + shlex.join(stage_command(stage)) + "\n")
        handle.flush()
        if stage.function is not None or runner == "inprocess":
            code = _in_process(stage, handle, env)
        else:
            code = subprocess.run(stage_command(stage), stdout=handle, stderr=subprocess.STDOUT,
                                  env={**os.environ, **env}, check=False).returncode
    return code, _last_line(log)


def stage_command(stage: Stage) -> list[str]:
    prefix = stage.launcher or [sys.executable]
    return [*prefix, "-m", "langsamp_cli", *(stage.argv or [])]


def _in_process(stage: Stage, handle: Any, env: dict[str, str]) -> int:
    """Run a function or the CLI inside this process, its stdout/stderr going to the log."""
    with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle), _environ(env):
        try:
            if stage.function is not None:
                stage.function()
                return 0
            return _invoke_cli(stage.argv or [])
        except LangsampError as err:
            print(f"error: {err}")
            return 2
        except KeyboardInterrupt:
            raise
        except Exception:  # noqa: BLE001 - any crash of a stage is recorded in its log, not raised
            traceback.print_exc()
            return 1


def _invoke_cli(argv: list[str]) -> int:
    import click

    from langsamp_cli.cli import app

    try:
        result = app(args=argv, standalone_mode=False, prog_name="langsamp")
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    return int(result) if isinstance(result, int) else 0


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _last_line(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines()
             if ln.strip() and not ln.startswith("#")]
    return lines[-1][:300] if lines else ""


def link_model(layout: Layout, variant: str) -> Path:
    """models/<variant> -> ../pretrain/<variant>/final (a relative link, so the folder can move)."""
    link = layout.model(variant)
    if link.is_symlink() or link.exists():
        return link
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(Path("..") / "pretrain" / variant / "final", link, target_is_directory=True)
    return link


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def stage_table(stages: list[Stage], state: ExperimentState | None, config: ExperimentConfig,
                show_commands: bool = False) -> Table:
    table = Table(title=f"experiment {config.name}: {config.output_dir}", title_justify="left")
    for column in ("stage", "status", "time", "command" if show_commands else "note"):
        table.add_column(column, overflow="fold")
    styles = {"done": "green", "running": "yellow", "failed": "red", "interrupted": "red"}
    for stage in stages:
        if state is None:
            command = shlex.join(stage_command(stage)) if stage.argv else "(in-process)"
            table.add_row(stage.name, "planned", "", command)
            continue
        record = state.stage(stage.name)
        status, why = stage_status(stage, state)
        shown = record.get("status") if record.get("status") in ("running", "failed", "interrupted") else status
        seconds = record.get("seconds")
        note = record.get("error") or why if shown != "done" else why
        table.add_row(stage.name, f"[{styles.get(shown, 'white')}]{shown}[/]",
                      _duration(seconds) if seconds is not None else "", note or "")
    return table


# ---------------------------------------------------------------------------- report + index
def write_experiment_report(config: ExperimentConfig) -> tuple[Path, Path]:
    """report/ tables (via the report library) + index.md and index.html with tables and pictures."""
    from langsamp_cli.report import build_report, merge_pending, write_report

    layout = Layout(config.output_dir)
    report = None
    if any(layout.results.glob("**/units/*.json")):
        merge_pending([layout.results])
        report = build_report([layout.results], metric=config.report.get("metric"),
                              scale=float(config.report.get("scale", 100.0)))
        order_models(report, config.variants)
        write_report(report, layout.report, ["md", "csv", "tex"])
        print(f"wrote {layout.report}/table1.md, families.md, languages.md (+ csv, tex)")
    page = IndexPage(config, layout, report)
    md, page_html = page.markdown(), page.html()
    md_path = atomic_write_text(layout.root / "index.md", md)
    html_path = atomic_write_text(layout.root / "index.html", page_html)
    print(f"wrote {md_path} and {html_path}")
    return md_path, html_path


def order_models(report: Any, variants: list[str]) -> None:
    """Rows in the ablation's order (vanilla, lang, script, both) instead of folder order."""
    rank = {v: i for i, v in enumerate(variants)}
    for name in ("groups", "families", "languages"):
        frame = getattr(report, name)
        key = frame["model"].map(lambda m: rank.get(m, len(rank)))
        setattr(report, name, frame.assign(_rank=key).sort_values("_rank", kind="stable").drop(columns="_rank")
                .reset_index(drop=True))


@dataclass
class Section:
    title: str
    text: str = ""                                   # Markdown paragraph(s)
    table: tuple[list[str], list[list[str]]] | None = None
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    n_text_columns: int = 1


class IndexPage:
    """The experiment's front page, built once as sections and rendered to Markdown and HTML."""

    def __init__(self, config: ExperimentConfig, layout: Layout, report: Any) -> None:
        self.config, self.layout, self.report = config, layout, report
        self.state = json.loads(layout.state.read_text(encoding="utf-8")) if layout.state.is_file() else {}
        self.sections = [s for s in (self.scale(), self.headline(), *self.task_tables(), self.similarity(),
                                     self.embeddings(), self.pretraining(), self.stages(), self.files()) if s]

    # -- content
    def scale(self) -> Section:
        settings = pretrain_settings(self.config)
        world = _launcher_processes(self.config.pretrain.get("launcher"))
        tokens = settings.batch_size * settings.grad_accum * settings.max_seq_len * world
        corpus = settings.corpus or "the bundled demo corpus"
        params = self._parameter_count()
        text = (f"Variants {', '.join(self.config.variants)} were pretrained from the same initialisation "
                f"(model `{settings.model}`{', from scratch' if settings.is_from_scratch else ', continued'}"
                f"{f', {params / 1e6:.1f}M parameters' if params else ''}; seed {settings.seed}) on {corpus} for "
                f"{settings.max_steps:,} steps of {tokens:,} tokens ({settings.batch_size} x {settings.grad_accum} "
                f"x {world} chunks of {settings.max_seq_len}), then evaluated on "
                f"{', '.join(self.config.tasks) or 'no task'}. Total stage time: "
                f"{_duration(self._total_seconds())} on {_machine()}.")
        if self.config.description:
            text += "\n\n" + self.config.description
        return Section("Scale and what it shows", text)

    def headline(self) -> Section | None:
        if self.report is None:
            return None
        groups = self.report.groups
        models = list(dict.fromkeys(groups.model))
        rows = []
        for task in dict.fromkeys(groups.task):
            part = groups[(groups.task == task) & (groups.group == "all")].set_index("model")
            if part.empty:
                continue
            base = part["mean"].get(BASELINE)
            cells = []
            for model in models:
                if model not in part.index:
                    cells.append("-")
                    continue
                from langsamp_cli.report import cell

                text = cell(part.loc[model, "mean"], part.loc[model, "std"])
                if base is not None and model != BASELINE:
                    text += f" ({part.loc[model, 'mean'] - base:+.1f})"
                cells.append(text)
            rows.append([_task_label(task), str(part["metric"].iloc[0]), *cells])
        text = (f"Mean over all evaluated languages (x{self.report.scale:g}); in brackets the difference to "
                f"`{BASELINE}`. Per-group columns follow.") if BASELINE in models else \
            f"Mean over all evaluated languages (x{self.report.scale:g})."
        return Section("Does LangSAMP help? (all languages)", text, (["task", "metric", *models], rows), n_text_columns=2)

    def task_tables(self) -> list[Section]:
        if self.report is None:
            return []
        from langsamp_cli.report import table1_cells

        columns, models, body = table1_cells(self.report)
        sections = []
        for task in dict.fromkeys(t for t, _ in columns):
            picked = [i for i, (t, _) in enumerate(columns) if t == task]
            part = self.report.groups[self.report.groups.task == task]
            counts = part.drop_duplicates("group").set_index("group")["n_languages"]
            header = ["variant", *(f"{columns[i][1]} ({int(counts.get(columns[i][1], 0))})" for i in picked)]
            rows = [[m, *(row[i] for i in picked)] for m, row in zip(models, body)]
            text = (f"{part.metric.iloc[0]} x{self.report.scale:g}, mean (std) over {part.n_seeds.max()} seed(s); "
                    "column = language group (number of languages); best per column in bold.")
            sections.append(Section(f"{_task_label(task)} by language group", text, (header, rows)))
        return sections

    def similarity(self) -> Section | None:
        rows, images = [], []
        for variant in self.config.variants:
            record = self.layout.similarity(variant) / "similarity.json"
            if not record.is_file():
                continue
            data = json.loads(record.read_text(encoding="utf-8"))
            ours, base = _mean_off_diagonal(data.get("similarity")), _mean_off_diagonal(data.get("baseline_similarity"))
            rows.append([variant, f"{ours:.3f}", f"{base:.3f}", f"{ours - base:+.3f}",
                         f"{data.get('pairs_improved', '-')} / {data.get('pairs_total', '-')}",
                         str(len(data.get("languages", []))), str(data.get("n", "-"))])
            picture = self.layout.similarity(variant) / "similarity_compare.png"
            if picture.is_file():
                images.append((self._relative(picture), f"{variant} vs {BASELINE}: centroid-subtracted cosine"))
        if not rows:
            return None
        text = ("Language neutrality (paper §5.3): mean pairwise cosine of parallel sentences after subtracting "
                "each language's centroid (layer-8 mean pooling); higher = representations less language-specific.")
        header = ["variant", "mean cosine", f"{BASELINE}", "difference", "pairs improved", "languages", "sentences"]
        return Section(f"Similarity of parallel sentences vs {BASELINE}", text, (header, rows), images)

    def embeddings(self) -> Section | None:
        images = []
        for variant in self.config.variants:
            for table in ("language", "script"):
                picture = self.layout.plots(variant) / f"{table}_pca.png"
                if picture.is_file():
                    images.append((self._relative(picture), f"{variant}: PCA of the {table} embeddings"))
        if not images:
            return None
        return Section("Learned language and script embeddings", "2-D PCA of the embedding tables (paper Figure 3).",
                       images=images)

    def pretraining(self) -> Section | None:
        rows = []
        for variant in self.config.variants:
            summary = self.layout.final_dir(variant) / "trainer_state.json"
            if not summary.is_file():
                rows.append([variant, "-", "-", "-", "-"])
                continue
            data = json.loads(summary.read_text(encoding="utf-8"))
            loss = _last_logged_loss(self.layout.run_dir(variant) / "log.jsonl")
            seconds = self.state.get("stages", {}).get(f"pretrain:{variant}", {}).get("seconds")
            rows.append([variant, f"{data.get('step', 0):,}", f"{data.get('tokens_seen', 0):,}",
                         f"{loss:.3f}" if loss is not None else "-", _duration(seconds) if seconds else "-"])
        return Section("Pretraining", "Final MLM loss = mean of the last logged window.",
                       (["variant", "steps", "tokens", "final MLM loss", "time"], rows))

    def stages(self) -> Section:
        rows = [[name, record.get("status", "-"), _duration(record["seconds"]) if record.get("seconds") else "-"]
                for name, record in self.state.get("stages", {}).items() if name != "report"]
        return Section("Stages", f"Command: `langsamp experiment {_display_source(self.config.source)}`.",
                       (["stage", "status", "time"], rows))

    def files(self) -> Section | None:
        names = [p for p in sorted(self.layout.report.glob("*.md"))] if self.layout.report.is_dir() else []
        if not names:
            return None
        links = ", ".join(f"[{p.name}]({self._relative(p)})" for p in names)
        return Section("Tables", f"All tables (Markdown, CSV, LaTeX): {links}. Per-language scores: "
                       f"[languages.md]({self._relative(self.layout.report / 'languages.md')}).")

    # -- helpers
    def _relative(self, path: Path) -> str:
        return path.relative_to(self.layout.root).as_posix()

    def _total_seconds(self) -> float:
        return sum(r.get("seconds") or 0 for r in self.state.get("stages", {}).values())

    def _parameter_count(self) -> int | None:
        for variant in self.config.variants:
            weights = self.layout.final_dir(variant) / "model.safetensors"
            if weights.is_file():
                from safetensors import safe_open

                with safe_open(str(weights), framework="numpy") as handle:
                    return sum(int(_numel(handle.get_slice(k).get_shape())) for k in handle.keys())
        return None

    # -- rendering
    def markdown(self) -> str:
        from langsamp_cli.report import markdown_table

        parts = [f"# LangSAMP experiment: {self.config.name}\n"]
        for section in self.sections:
            parts.append(f"## {section.title}\n")
            if section.text:
                parts.append(section.text + "\n")
            if section.table:
                parts.append(markdown_table(*section.table, n_text_columns=section.n_text_columns))
            parts += [f"![{caption}]({path})\n" for path, caption in section.images]
        return "\n".join(parts)

    def html(self) -> str:
        body = [f"<h1>LangSAMP experiment: {html.escape(self.config.name)}</h1>"]
        for section in self.sections:
            body.append(f"<h2>{html.escape(section.title)}</h2>")
            body += [f"<p>{_inline_html(p)}</p>" for p in section.text.split("\n\n") if p.strip()]
            if section.table:
                body.append(_html_table(*section.table, n_text_columns=section.n_text_columns))
            body += [f'<figure><img src="{html.escape(path)}" alt="{html.escape(caption)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>" for path, caption in section.images]
        return HTML_TEMPLATE.format(title=html.escape(f"LangSAMP experiment: {self.config.name}"),
                                    body="\n".join(body))


HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
th {{ background: #f3f3f3; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
img {{ max-width: 520px; border: 1px solid #eee; }}
code {{ background: #f5f5f5; padding: 0 0.2em; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def _html_table(header: list[str], rows: list[list[str]], n_text_columns: int = 1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(f"<td{' class=num' if i >= n_text_columns else ''}>{_inline_html(c)}</td>"
                        for i, c in enumerate(row))
        lines.append(f"<tr>{cells}</tr>")
    return "\n".join([*lines, "</tbody></table>"])


def _inline_html(text: str) -> str:
    """The little Markdown the index uses: **bold**, `code`, [text](link)."""
    import re

    escaped = html.escape(str(text))
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    escaped = re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', escaped)


def _task_label(task: str) -> str:
    from langsamp_cli.report import task_label

    return task_label(task)


def _mean_off_diagonal(matrix: dict | None) -> float:
    if not matrix:
        return float("nan")
    langs = list(matrix)
    values = [matrix[a][b] for i, a in enumerate(langs) for b in langs[i + 1:] if matrix[a].get(b) is not None]
    return sum(values) / len(values) if values else float("nan")


def _last_logged_loss(log: Path) -> float | None:
    if not log.is_file():
        return None
    losses = [json.loads(line).get("loss") for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    losses = [x for x in losses if x is not None]
    return float(losses[-1]) if losses else None


def _numel(shape: list[int]) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


def _launcher_processes(launcher: str | None) -> int:
    """Processes a launcher starts (--num_processes N / --nproc_per_node N x --nnodes M); 1 without one."""
    if not launcher:
        return 1
    tokens = shlex.split(launcher)
    values: dict[str, int] = {}
    for i, token in enumerate(tokens):
        name, _, inline = token.partition("=")
        if name in ("--num_processes", "--num-processes", "--nproc_per_node", "--nproc-per-node", "--nnodes"):
            raw = inline or (tokens[i + 1] if i + 1 < len(tokens) else "1")
            values[name.replace("-", "_")] = int(raw) if raw.isdigit() else 1
    if "__num_processes" in values:
        return values["__num_processes"]
    return values.get("__nproc_per_node", 1) * values.get("__nnodes", 1)


def _machine() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
        threads = torch.get_num_threads()
    except ImportError:
        threads = os.cpu_count() or 1
    return f"CPU ({threads} thread(s), {platform.machine()})"


def _display_source(source: str) -> str:
    path = Path(source)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name


# ---------------------------------------------------------------------------- export
def export_report(root: Path, dest: Path) -> list[Path]:
    """Copy index.md/html and what they show (report tables, PNGs, CSVs) to ``dest`` (e.g. docs/results/...).

    Checkpoints, logs, caches, fine-tuned models and per-unit JSON stay behind; the folder is replaced whole.
    """
    root, dest = Path(root), Path(dest)
    if not (root / "index.md").is_file():
        raise LangsampError(f"{root}: no index.md yet; run the experiment to the report stage first")
    picked = [root / "index.md", root / "index.html"]
    for folder in ("report", "similarity", "plots"):
        picked += sorted(p for p in (root / folder).rglob("*") if p.is_file() and p.suffix in EXPORT_SUFFIXES
                         and not any(part.startswith(".") for part in p.relative_to(root).parts))
    copied = []
    with atomic_dir(dest) as tmp:
        for path in picked:
            target = tmp / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied.append(dest / path.relative_to(root))
    return copied
