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
    allow_mixed: bool = typer.Option(False, "--allow-mixed", help="Average seeds of one model and task even when "
                                     "they were made with different settings or model weights (marked in the "
                                     "notes); by default that is an error."),
    by_layer: bool = typer.Option(False, "--by-layer", help="Instead of the tables: the metric against the "
                                  "encoder layer (runs of `eval sr-t|sr-b --layers ...`) per group and model: "
                                  "by_layer.csv/.png/.svg."),
    layer_groups: Optional[str] = typer.Option(None, "--layer-groups", help="With --by-layer: comma list of "
                                               "groups to draw (default: tail, head, Latn, non-Latn, all)."),
    model_card: Optional[Path] = typer.Option(None, "--model-card", help="Also put the evaluation tables of the "
                                              "model in this checkpoint folder (its results among RESULT_DIRS) "
                                              "into its README.md model card (a rerun replaces them)."),
) -> None:
    """Aggregate results: per group mean (std) over seeds, models side by side; also per family and language."""
    from langsamp_cli.report import build_report, merge_pending, parse_formats, print_report, write_report

    err = Console(stderr=True)
    chosen = parse_formats(formats)
    _check_before_writing(result_dirs, output_dir, scale, model_card)
    if not no_merge:
        for run_dir in merge_pending(result_dirs):
            err.print(f"merged unit files into {run_dir / 'results.json'}", highlight=False, soft_wrap=True)
    if by_layer:
        _report_by_layer(result_dirs, output_dir, metric, scale, allow_mixed, layer_groups, err)
        return
    built = build_report(result_dirs, metric=metric, scale=scale, allow_mixed=allow_mixed)
    target = output_dir or _default_output(result_dirs[0])
    files = write_report(built, target, chosen)
    print_report(built)
    err.print("wrote " + ", ".join(str(p) for p in files), highlight=False, soft_wrap=True)
    if model_card is not None:
        from langsamp_cli.model_card import add_evaluation

        card = add_evaluation(model_card, result_dirs, metric=metric, scale=scale, allow_mixed=allow_mixed)
        err.print(f"added the evaluation tables to {card}", highlight=False, soft_wrap=True)


def _check_before_writing(result_dirs: list[Path], output_dir: Optional[Path], scale: float,
                          model_card: Optional[Path]) -> None:
    """What would otherwise fail after tables were written (or pass unnoticed) is refused first."""
    import math

    from langsamp_cli.errors import LangsampError
    from langsamp_cli.output_checks import check_output_dir

    if not math.isfinite(scale) or scale <= 0:
        raise LangsampError(f"--scale {scale}: must be a positive number (100 = percent, 1 = fractions)")
    if model_card is not None and not (model_card / "config.json").is_file():
        raise LangsampError(f"--model-card {model_card}: not a checkpoint folder (no config.json there); pass the "
                            "folder of the model whose results are among RESULT_DIRS")
    check_output_dir(output_dir or _default_output(result_dirs[0]))


def _default_output(first: Path) -> Path:
    return (first.parent if first.is_file() else first) / "report"


def _report_by_layer(result_dirs: list[Path], output_dir: Optional[Path], metric: Optional[str], scale: float,
                     allow_mixed: bool, layer_groups: Optional[str], err: Console) -> None:
    from langsamp_cli.layer_report import build_layer_report, write_layer_report

    groups = [g.strip() for g in layer_groups.split(",") if g.strip()] if layer_groups else None
    built = build_layer_report(result_dirs, metric=metric, scale=scale, allow_mixed=allow_mixed, groups=groups)
    files = write_layer_report(built, output_dir or _default_output(result_dirs[0]))
    Console().print(built.table.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.1f}"), highlight=False,
                    soft_wrap=True, markup=False)
    for note in built.notes:
        err.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
    err.print("wrote " + ", ".join(str(p) for p in files), highlight=False, soft_wrap=True)
