"""`langsamp experiment CONFIG.yaml`: pretrain the variants, evaluate, compare, plot, report (flags -> library)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

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

    cli = command_line()
    overrides = {"output_dir": output_dir, "data_root": data_root, "variants": variants, "tasks": tasks,
                 "max_steps": max_steps, "corpus": str(corpus) if corpus else None}
    settings = load_experiment_config(config, overrides, cli=cli)
    result = run_experiment(settings, console=Console(stderr=True), dry_run=dry_run, export_dir=export, cli=cli)
    if not dry_run:
        Console().print(f"{result.index_md}\n{result.index_html}", highlight=False, soft_wrap=True)


def command_line():
    """The experiment's view of this CLI: each command's options, and running one in this process."""
    from langsamp_cli.experiment import CommandLine

    return CommandLine(options=command_options, invoke=invoke)


def command_options(command: list[str]) -> set[str]:
    """Every --long option (and --no-x switch) of a langsamp (sub)command, read from the CLI itself."""
    from langsamp_cli.cli import app

    cmd: Any = typer.main.get_command(app)
    for name in command:
        cmd = cmd.commands[name]
    return {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")}


def invoke(argv: list[str]) -> int:
    """Run `langsamp <argv>` in this process; its exit code (a usage error prints itself, as on the shell)."""
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
