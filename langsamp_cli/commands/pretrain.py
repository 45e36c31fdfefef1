"""`langsamp pretrain`: LangSAMP masked-LM pretraining (flags -> PretrainConfig -> trainer.pretrain).

With no arguments it trains a tiny model from scratch on the bundled demo corpus (a few minutes on 2 CPU
cores). The same command runs under ``accelerate launch`` or ``torchrun`` for multi-GPU / multi-node training.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from langsamp_cli.pretrain.config import DEFAULT_PRESET, PRESETS
from langsamp_cli.progress import print_table


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("pretrain")(pretrain_command())


def pretrain_command():
    """`langsamp pretrain`: one flag per PretrainConfig field (help from the field), plus the run's own options."""
    from langsamp_cli.pretrain.config import PretrainConfig, preset_notes
    from langsamp_cli.settings import make_command, typer_parameters

    options = [
        _option("preset", str, DEFAULT_PRESET, "--preset", metavar="|".join(PRESETS), help=f"Base settings: {' | '.join(PRESETS)} (--config and flags "
                "override them)."),
        _option("config", Optional[Path], None, "--config", help="YAML of settings over the preset (keys: the "
                "flag names, with - or _); flags win."),
        _option("resume", bool, False, "--resume", help="Continue from the last complete checkpoint in "
                "--output-dir."),
        _option("overwrite", bool, False, "--overwrite", help="Delete an existing run in --output-dir and start "
                "again."),
        _option("no_progress", bool, False, "--no-progress", help="No progress bar (logs still go to log.jsonl)."),
        _option("dry_run", bool, False, "--dry-run", help="Print every resolved setting and where it came from, "
                "check the inputs (corpus, model, tokenizer, output folder), train nothing."),
    ]
    settings = typer_parameters(PretrainConfig, notes=preset_notes())
    return make_command("pretrain", "Pretrain a LangSAMP model: MLM with language and script embeddings before "
                        "the LM head.", [*settings, *options], _pretrain)


def _option(name: str, annotation, default, *flags: str, help: str, metavar: str | None = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                             default=typer.Option(default, *flags, help=help, metavar=metavar))


def _pretrain(values: dict) -> None:
    from langsamp_cli.languages import parse_language_list
    from langsamp_cli.pretrain.config import build_config

    preset, config, resume = values.pop("preset"), values.pop("config"), values.pop("resume")
    overwrite, no_progress = values.pop("overwrite"), values.pop("no_progress")
    dry_run = values.pop("dry_run")
    if values.get("languages") is not None:  # a comma list or a file of ids -> canonical ids
        values["languages"] = parse_language_list(values["languages"])
    settings = build_config(preset, config, values)
    if dry_run:
        return _dry_run(settings, preset, config, values, resume, overwrite)
    from langsamp_cli.output_checks import check_output_dir

    check_output_dir(settings.output_dir)
    if not resume:  # a resumed run loads its own checkpoint
        _check_sources(settings)
    from langsamp_cli.pretrain.run_dir import language_counts_table
    from langsamp_cli.pretrain.trainer import pretrain  # heavy: after the cheap checks

    err = Console(stderr=True, emoji=False)
    started = time.time()
    result = pretrain(settings, resume=resume, overwrite=overwrite, console=err, progress=not no_progress)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    table = language_counts_table(result.output_dir / "log.jsonl")
    if table is not None:
        print_table(table, err)
    out = Console()
    loss = f", last loss {result.last_loss:.3f}" if result.last_loss is not None else ""
    out.print(f"pretrained {result.steps} steps ({result.tokens_seen:,} tokens) in {time.time() - started:.0f} s"
              f"{loss}{'; stopped early' if result.stopped_early else ''}", highlight=False)
    if result.final_dir is None:
        out.print(f"stopped before the end: continue with --resume --output-dir {result.output_dir}", highlight=False)
        return
    out.print(f"final model: {result.final_dir}", highlight=False)
    if result.best_dir is not None:
        out.print(f"best held-out model: {result.best_dir}", highlight=False)
    out.print(f"log: {result.output_dir / 'log.jsonl'}", highlight=False)
    out.print("next:", highlight=False)
    for line in next_steps(result.final_dir, result.corpus_languages):
        out.print(f"  {line}", highlight=False, soft_wrap=True)


def _dry_run(settings, preset, config, flags: dict, resume: bool, overwrite: bool) -> None:
    from rich import box
    from rich.table import Table

    from langsamp_cli.errors import LangsampError
    from langsamp_cli.pretrain.dry_run import dry_run

    result = dry_run(settings, preset, config, flags, resume=resume, overwrite=overwrite)
    out = Console(emoji=False)
    table = Table(title="settings", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("setting", "value", "from"):
        table.add_column(name, overflow="fold")
    for row in result.settings:
        table.add_row(*row)
    print_table(table, out)
    out.print("would run:", highlight=False)
    for line in result.plan:
        out.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    out.print("inputs:", highlight=False)
    for check in result.checks:
        out.print(f"  {'ok ' if check.ok else 'BAD'} {check.what}: {check.detail}", highlight=False, markup=False,
                  soft_wrap=True)
    if result.failed:
        raise LangsampError(f"dry run: {len(result.failed)} input(s) would stop the run "
                            f"({', '.join(check.what for check in result.failed)}; see above); nothing was trained")
    out.print("dry run: every input checked; nothing was trained", highlight=False)


def _check_sources(settings) -> None:
    """Cheap checks before the trainer loads anything: the corpus folder, then the model and tokenizer names."""
    from langsamp_cli.errors import LangsampError
    from langsamp_cli.model_source import resolve_model
    from langsamp_cli.pretrain.config import TINY_MODEL

    if settings.corpus and not Path(settings.corpus).expanduser().is_dir():
        raise LangsampError(f"--corpus {settings.corpus}: no such directory; pass a folder with one xxx_Scrp text "
                            "file or folder per language, or leave --corpus out for the bundled demo corpus")
    if settings.model != TINY_MODEL:
        settings.model = resolve_model(settings.model)
    if settings.tokenizer:
        settings.tokenizer = resolve_model(settings.tokenizer, flag="--tokenizer", needs_config=False)


SHARED_TATOEBA = Path("../shared/data/tatoeba/v1")


def next_steps(final_dir: Path, corpus_languages: list[str]) -> list[str]:
    """Commands that run as printed: the bundled SR-T sample always, real Tatoeba data when it sits beside us."""
    from langsamp_cli.task_config import bundled_dir
    from langsamp_cli.tasks.registry import SAMPLE_TASK

    sample = bundled_dir("samples") / SAMPLE_TASK
    sample_langs = sorted(p.suffix[1:] for p in sample.glob("tatoeba.*-eng_Latn.*") if p.suffix != ".eng_Latn")
    langs = [lang for lang in sample_langs if not corpus_languages or lang in corpus_languages] or sample_langs
    steps = [f"langsamp eval sr-t --model {final_dir} --data-dir {sample} --languages {','.join(langs)}"
             "   # bundled smoke sample (UI strings), not Tatoeba"]
    if SHARED_TATOEBA.is_dir():
        steps.append(f"langsamp eval sr-t --model {final_dir} --data-dir {SHARED_TATOEBA} "
                     "--languages fra_Latn,rus_Cyrl,jpn_Jpan")
    else:
        steps.append("# real Tatoeba: the LASER tatoeba/v1 files (README, 'Data formats'), then "
                     f"langsamp eval sr-t --model {final_dir} --data-dir PATH/TO/tatoeba/v1")
    steps.append(f"langsamp plot-embeddings --model {final_dir}")
    return steps
