"""`langsamp report`: models side by side in the paper's Table-1 layout (flags -> library)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    result_dirs: list[Path] = typer.Argument(..., help="Folders searched recursively for results.json "
                                             "(e.g. results/ of several models), or results.json files."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", help="Where table1/families/languages "
                                              ".md/.csv/.tex go (default: <first RESULT_DIR>/report)."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Metric to tabulate (default: each task's "
                                         "headline: acc@10, macro_f1, f1)."),
    formats: str = typer.Option("md,csv,tex", "--format", help="Comma list of md, csv, tex."),
    scale: float = typer.Option(100.0, "--scale", help="Multiply scores (fractions) by this; 100 = percent."),
    no_merge: bool = typer.Option(False, "--no-merge", help="Do not merge unit files newer than results.json."),
) -> None:
    """Aggregate results: per group mean (std) over seeds, models side by side; also per family and language."""
    from langsamp_cli.report import build_report, merge_pending, parse_formats, print_report, write_report

    err = Console(stderr=True)
    chosen = parse_formats(formats)
    if not no_merge:
        for run_dir in merge_pending(result_dirs):
            err.print(f"merged unit files into {run_dir / 'results.json'}", highlight=False, soft_wrap=True)
    built = build_report(result_dirs, metric=metric, scale=scale)
    target = output_dir or _default_output(result_dirs[0])
    files = write_report(built, target, chosen)
    print_report(built)
    err.print("wrote " + ", ".join(str(p) for p in files), highlight=False, soft_wrap=True)


def _default_output(first: Path) -> Path:
    return (first.parent if first.is_file() else first) / "report"
