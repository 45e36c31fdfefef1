"""The stages of an experiment (what to run, in order), its folder layout and its state file."""

from __future__ import annotations

import functools
import hashlib
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from langsamp_cli.errors import LangsampError
from langsamp_cli.experiment.config import (
    BASELINE,
    RESERVED,
    ExperimentConfig,
    flags_to_argv,
    library_arguments,
)
from langsamp_cli.io_utils import atomic_dir, atomic_write_json
from langsamp_cli.pretrain.config import DEFAULT_PRESET, PretrainConfig
from langsamp_cli.tasks.transfer_run import TRANSFER_TASKS
from langsamp_cli.variants import variant_flags

STATE_FILE = "experiment_state.json"
STATE_FORMAT = 1
PLOT_TABLES = {"lang": "language", "script": "script", "both": "both"}  # variant -> its embedding table(s)


@dataclass
class Stage:
    name: str
    kind: str                                          # tokenizer | pretrain | eval | similarity | plots | report
    argv: list[str] | None = None                      # the equivalent `langsamp` command line (runner: subprocess)
    launcher: list[str] | None = None                  # command prefix replacing `python` (pretraining on GPUs)
    function: Callable[[], None] | None = None         # always runs in this process (tokenizer, report)
    library: Callable[[], None] | None = None          # the same work as ``argv`` through the library (inprocess)
    signature: str = ""                                # what must be unchanged for a finished stage to be skipped
    finished: Callable[[], bool] | None = None         # an output that proves the stage finished (pretrain: final/)

    @property
    def log_name(self) -> str:
        return self.name.replace(":", "_") + ".log"


def _folder(name: str) -> property:
    return property(lambda self: self.root / name, doc=f"``{name}`` in the experiment folder")


def _per_variant(folder: str, doc: str = "") -> Callable[[Layout, str], Path]:
    def path(self: Layout, variant: str) -> Path:
        return self.root / folder / variant

    path.__doc__ = f"``{folder}/<variant>`` in the experiment folder{doc}"
    return path


@dataclass
class Layout:
    """Every path of an experiment folder."""
    root: Path

    state = _folder(STATE_FILE)
    logs = _folder("logs")
    tokenizer = _folder("tokenizer")
    results = _folder("results")
    report = _folder("report")
    cache = _folder("cache")
    run_dir = _per_variant("pretrain")
    model = _per_variant("models", ": a link to the final checkpoint, so results and plots carry the variant name")
    similarity = _per_variant("similarity")
    plots = _per_variant("plots")

    def final_dir(self, variant: str) -> Path:
        return self.run_dir(variant) / "final"


def plan_stages(config: ExperimentConfig) -> list[Stage]:
    layout = Layout(config.output_dir)
    settings = config.pretrain_config
    stages: list[Stage] = []
    shared_tokenizer = settings.is_from_scratch and not settings.tokenizer
    if shared_tokenizer:
        stages.append(Stage("tokenizer", "tokenizer", function=lambda: train_shared_tokenizer(settings, layout),
                            signature=_hash([settings.corpus, settings.languages, settings.vocab_size,
                                             settings.eval_lines if settings.eval_every > 0 else 0]),
                            finished=lambda: (layout.tokenizer / "tokenizer_config.json").is_file()))
    pretrain_yaml = pretrain_yaml_text(config, layout.tokenizer if shared_tokenizer else None)
    run_settings = replace(settings, tokenizer=str(layout.tokenizer)) if shared_tokenizer else settings
    for variant in config.variants:
        stages.append(pretrain_stage(config, layout, variant, pretrain_yaml, run_settings))
    for task, flags in config.tasks.items():
        for variant in config.variants:
            argv = ["eval", task, "--model", str(layout.model(variant)), "--output-dir", str(layout.results),
                    *flags_to_argv(flags)]
            run = _transfer if task in TRANSFER_TASKS else _retrieval
            library = functools.partial(run, task, flags, layout.model(variant), layout.results)
            stages.append(Stage(f"eval:{task}:{variant}", "eval", argv=argv, library=library, signature=_hash(argv)))
    if config.similarity is not None and BASELINE in config.variants:
        for variant in (v for v in config.variants if v != BASELINE):
            argv = ["similarity", "--model", str(layout.model(variant)), "--compare", str(layout.model(BASELINE)),
                    "--output-dir", str(layout.similarity(variant)), *flags_to_argv(config.similarity)]
            library = functools.partial(_similarity, config.similarity, layout.model(variant),
                                        layout.model(BASELINE), layout.similarity(variant))
            stages.append(Stage(f"similarity:{variant}", "similarity", argv=argv, library=library,
                                signature=_hash(argv)))
    if config.plots is not None:
        for variant in (v for v in config.variants if v != BASELINE):
            table = PLOT_TABLES[variant]
            argv = ["plot-embeddings", "--model", str(layout.model(variant)), "--table", table,
                    "--output-dir", str(layout.plots(variant)), *flags_to_argv(config.plots)]
            library = functools.partial(_plots, config.plots, layout.model(variant), table, layout.plots(variant))
            stages.append(Stage(f"plots:{variant}", "plots", argv=argv, library=library, signature=_hash(argv)))
    stages.append(Stage("report", "report", function=lambda: _write_report(config)))
    return stages


def _write_report(config: ExperimentConfig) -> None:
    from langsamp_cli.experiment.site import write_experiment_report  # site imports this module

    write_experiment_report(config)


def pretrain_stage(config: ExperimentConfig, layout: Layout, variant: str, pretrain_yaml: str,
                   settings: PretrainConfig) -> Stage:
    """One variant's pretraining: ``argv`` reads ``configs/pretrain.yaml`` (``pretrain_yaml``, what the runner
    writes there); the library call takes ``settings``, the same values resolved in this process."""
    lang_emb, script_emb = variant_flags(variant)
    argv = ["pretrain", "--preset", str(config.pretrain.get("preset", DEFAULT_PRESET)),
            "--config", str(layout.root / "configs" / "pretrain.yaml"),
            "--output-dir", str(layout.run_dir(variant)),
            "--lang-emb" if lang_emb else "--no-lang-emb", "--script-emb" if script_emb else "--no-script-emb",
            "--resume", "--no-progress"]
    launcher = config.pretrain.get("launcher")
    return Stage(f"pretrain:{variant}", "pretrain", argv=argv,
                 library=functools.partial(_pretrain, variant_settings(settings, layout, variant)),
                 launcher=shlex.split(launcher) if launcher else None,
                 signature=_hash([argv, launcher, pretrain_yaml]),
                 finished=lambda: (layout.final_dir(variant) / "config.json").is_file())


def variant_settings(settings: PretrainConfig, layout: Layout, variant: str) -> PretrainConfig:
    """The shared settings with what the experiment sets for one variant: its run folder and tables."""
    lang_emb, script_emb = variant_flags(variant)
    return replace(settings, output_dir=str(layout.run_dir(variant)), lang_emb=lang_emb, script_emb=script_emb)


def _pretrain(settings: PretrainConfig) -> None:
    """`langsamp pretrain --config configs/pretrain.yaml --resume ...` of one variant, through the library."""
    from rich.console import Console

    from langsamp_cli.pretrain.trainer import pretrain

    result = pretrain(settings, resume=True, console=Console(stderr=True, emoji=False), progress=False)
    print(f"pretrained {result.steps} steps ({result.tokens_seen:,} tokens); final model: {result.final_dir}")


def _transfer(task: str, flags: dict[str, Any], model: Path, results: Path) -> None:
    """`langsamp eval <task> --model ... --output-dir ... <flags>` through the library."""
    from langsamp_cli.results import print_results
    from langsamp_cli.tasks.transfer_run import run_transfer

    # lists, a single --bible and text numbers are the settings' own types to convert (tasks/task_settings.py)
    run = run_transfer(task, {**flags, "model": str(model), "output_dir": str(results)}, progress=False)
    print(run.describe())
    for path in run.results:
        print_results(path)


def _retrieval(task: str, flags: dict[str, Any], model: Path, results: Path) -> None:
    """`langsamp eval sr-b|sr-t --model ... --output-dir ... <flags>` through the library."""
    from langsamp_cli.results import print_results
    from langsamp_cli.tasks.retrieval_run import run_retrieval_task

    from langsamp_cli.settings import field_names
    from langsamp_cli.tasks.task_settings import RetrievalSettings

    settings = dict(flags)
    run_only = {key: settings.pop(key, None) for key in field_names(RetrievalSettings, run_only=True)}
    run = run_retrieval_task(task, {**settings, "model": str(model), "output_dir": str(results)},
                             config=Path(run_only["config"]) if run_only["config"] else None,
                             no_cache=bool(run_only["no_cache"]), overwrite=bool(run_only["overwrite"]),
                             cache_dir=Path(run_only["cache_dir"]) if run_only["cache_dir"] else None,
                             shard=run_only["shard"], progress=False)
    print(run.describe())
    for path in run.results:
        print_results(path)


def _similarity(flags: dict[str, Any], model: Path, baseline: Path, output_dir: Path) -> None:
    """`langsamp similarity --model ... --compare <vanilla> --output-dir ... <flags>` through the library."""
    from langsamp_cli.analysis.similarity_run import SimilaritySettings, similarity_report

    values = library_arguments(SimilaritySettings, flags, "similarity", given=tuple(RESERVED["similarity"]))
    settings = SimilaritySettings(**values, model=str(model), compare=str(baseline), output_dir=str(output_dir))
    print(similarity_report(settings).describe())


def _plots(flags: dict[str, Any], model: Path, table: str, output_dir: Path) -> None:
    """`langsamp plot-embeddings --model ... --table ... --output-dir ... <flags>` through the library."""
    from langsamp_cli.analysis.pca_run import PlotSettings, plot_embeddings

    values = library_arguments(PlotSettings, flags, "plots", given=tuple(RESERVED["plots"]))
    settings = PlotSettings(**values, model=str(model), table=table, output_dir=str(output_dir))
    print(plot_embeddings(settings).describe())


def pretrain_yaml_text(config: ExperimentConfig, tokenizer: Path | None) -> str:
    """The settings file every variant's `langsamp pretrain --config` reads (identical for all variants)."""
    values = {k: v for k, v in config.pretrain.items() if k not in ("preset", "launcher")}
    if tokenizer is not None:
        values["tokenizer"] = str(tokenizer)
    return yaml.safe_dump(values, sort_keys=True, allow_unicode=True)


def train_shared_tokenizer(settings: PretrainConfig, layout: Layout) -> None:
    """One Unigram tokenizer on the corpus for every variant: same vocabulary -> same initial weights."""
    from langsamp_cli.pretrain.corpus import scan_corpus
    from langsamp_cli.pretrain.model_setup import tokenizer_training_lines
    from langsamp_cli.pretrain.run_dir import default_corpus_dir
    from langsamp_cli.tokenizer import train_unigram_tokenizer

    corpus = scan_corpus(settings.corpus or default_corpus_dir(), settings.languages,
                         eval_lines=settings.eval_lines if settings.eval_every > 0 else 0)
    lines = tokenizer_training_lines(corpus)
    print(f"training a {settings.vocab_size:,}-piece Unigram tokenizer on {len(lines):,} lines of "
          f"{len(corpus.sources)} language-scripts")
    with atomic_dir(layout.tokenizer) as tmp:
        train_unigram_tokenizer(lines, settings.vocab_size, tmp)


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


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


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
