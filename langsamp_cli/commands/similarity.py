"""`langsamp similarity`: centroid-subtracted pairwise cosine of parallel sentences (flags -> library)."""

from __future__ import annotations

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from langsamp_cli.analysis.similarity import difference
from langsamp_cli.analysis.similarity_run import SimilarityReport, SimilaritySettings
from langsamp_cli.progress import print_table


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("similarity")(similarity_command())


def similarity_command():
    """`langsamp similarity`: one flag per SimilaritySettings field, its default shown from the field."""
    import dataclasses

    from langsamp_cli.settings import make_command, typer_parameters

    defaults = {f.name: f.default for f in dataclasses.fields(SimilaritySettings)
                if f.default not in (None, False, dataclasses.MISSING)}
    return make_command("similarity", "Language neutrality (paper §5.3): mean cosine of translation pairs, each "
                        "language's centroid subtracted.",
                        typer_parameters(SimilaritySettings, defaults=defaults, required=("model", "data_dir")),
                        _similarity)


def _similarity(values: dict) -> None:
    from langsamp_cli.analysis.similarity_run import similarity_report
    from langsamp_cli.output_checks import check_output_dir
    from langsamp_cli.settings import from_flags

    settings = from_flags(SimilaritySettings, values)
    check_output_dir(settings.output_dir)
    report = similarity_report(settings)
    console = Console()
    if report.layers:
        _print_layer_summary(console, report)
    else:
        _print_single_layer(console, report)
    Console(stderr=True).print(report.wrote_line(), highlight=False, soft_wrap=True, markup=False)


def _print_single_layer(console: Console, report: SimilarityReport) -> None:
    result = report.result
    _print_matrix(console, result.matrix, result.languages, f"similarity (centroid-subtracted cosine): {report.model}")
    if result.compare_matrix is not None:
        _print_matrix(console, result.compare_matrix, result.languages, f"baseline: {report.compare}")
        _print_title(console, "difference (ours - baseline)")
        print_table(_difference_table(difference(result.matrix, result.compare_matrix), result.languages), console)
        better, total = result.improved_pairs()
        console.print(f"{better} of {total} language pairs improved over the baseline ({report.compare})",
                      highlight=False, soft_wrap=True)


def _print_layer_summary(console: Console, report: SimilarityReport) -> None:
    _print_title(console, f"mean similarity of language pairs (centroid-subtracted cosine) by layer: {report.model}")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    rows = report.summary()
    for column in rows[0]:
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    print_table(table, console)


def _print_title(console: Console, title: str) -> None:
    """A table heading on its own line: a long model path would otherwise wrap inside a narrow table."""
    console.print(title, highlight=False, soft_wrap=True, markup=False)


def _headers(languages: list[str]) -> list[str]:
    """ISO codes as row/column names when unique (ten columns fit in 80 characters; the CSV has full ids)."""
    codes = [lang.split("_", 1)[0] for lang in languages]
    return codes if len(set(codes)) == len(codes) else list(languages)


def _table(languages: list[str]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), pad_edge=False, show_edge=False)
    table.add_column("", no_wrap=True, min_width=3)
    for header in _headers(languages):
        table.add_column(header, justify="right", no_wrap=True)
    return table


def _print_matrix(console: Console, matrix: np.ndarray, languages: list[str], title: str) -> None:
    _print_title(console, title)
    print_table(_matrix_table(matrix, languages), console)


def _matrix_table(matrix: np.ndarray, languages: list[str]) -> Table:
    table = _table(languages)
    for name, row in zip(_headers(languages), matrix):
        table.add_row(name, *(f"{v:.2f}" for v in row))
    return table


def _difference_table(differences: np.ndarray, languages: list[str]) -> Table:
    table = _table(languages)
    for i, (name, row) in enumerate(zip(_headers(languages), differences)):
        cells = []
        for j, value in enumerate(row):
            if i == j or np.isnan(value):
                cells.append("-")
                continue
            text = f"{value:+.2f}"
            cells.append(f"[green]{text}[/]" if value > 0 else f"[red]{text}[/]" if value < 0 else text)
        table.add_row(name, *cells)
    return table
