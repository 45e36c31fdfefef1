"""`langsamp experiment CONFIG.yaml`: pretrain the variants, evaluate, compare, plot, report (flags -> library)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("experiment")(experiment)


def experiment(
    config: str = typer.Argument(..., help="Experiment YAML, or a preset name: cpu-demo | paper "
                                 "(langsamp_cli/task_configs/experiments/)."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Experiment folder (default: the "
                                              "YAML's output_dir)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Replaces {data_root} in the YAML's paths "
                                             "(default: its data_root, relative to the current directory)."),
    variants: Optional[str] = typer.Option(None, "--variants", help="Comma list of vanilla, lang, script, both."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma list: only these of the configured tasks."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Pretraining steps of every variant."),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Pretraining corpus (one xxx_Scrp file per "
                                          "language-script)."),
    export: Optional[Path] = typer.Option(None, "--export", help="Also copy index.md/html, tables and pictures "
                                          "to this folder (e.g. docs/results/cpu-demo)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the stages and their commands; run nothing."),
) -> None:
    """The whole study in one command: does LangSAMP help on my data?

    Pretrains each variant (vanilla, lang, script, both) from the same initialisation, data, seed and
    step budget; evaluates every checkpoint; compares language neutrality with vanilla; plots the
    embeddings; writes index.md + index.html. Rerun the same command to resume after a failure or
    interruption: finished stages are skipped.
    """
    from langsamp_cli.experiment import load_experiment_config, run_experiment

    overrides = {"output_dir": output_dir, "data_root": data_root, "variants": variants, "tasks": tasks,
                 "max_steps": max_steps, "corpus": str(corpus) if corpus else None}
    settings = load_experiment_config(config, overrides)
    result = run_experiment(settings, console=Console(stderr=True), dry_run=dry_run, export_dir=export)
    if not dry_run:
        Console().print(f"{result.index_md}\n{result.index_html}", highlight=False, soft_wrap=True)
