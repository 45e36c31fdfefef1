"""`langsamp plot-embeddings`: PCA scatter of the language and script embeddings (flags -> library)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from langsamp_cli.analysis.pca_run import PlotSettings
from langsamp_cli.progress import print_table


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("plot-embeddings")(plot_embeddings_command())


def plot_embeddings_command():
    """`langsamp plot-embeddings`: one flag per PlotSettings field, its default shown from the field."""
    import dataclasses

    from langsamp_cli.settings import make_command, typer_parameters

    defaults = {f.name: f.default for f in dataclasses.fields(PlotSettings) if f.default is not None}
    return make_command("plot-embeddings", "Figure 3: 2-D PCA of the learned language embeddings and of the script "
                        "embeddings.", typer_parameters(PlotSettings, defaults=defaults), _plot_embeddings)


def _plot_embeddings(values: dict) -> None:
    from langsamp_cli.analysis.pca_run import plot_embeddings
    from langsamp_cli.output_checks import check_output_dir
    from langsamp_cli.settings import from_flags

    settings = from_flags(PlotSettings, values)
    check_output_dir(settings.output_dir)
    run = plot_embeddings(settings)
    console = Console()
    console.print(f"PCA of {run.name}", highlight=False, soft_wrap=True, markup=False)
    summary = Table()
    for column in ("table", "points", "PC1 var", "PC2 var"):  # the files are listed on the 'wrote' line
        summary.add_column(column, justify="left" if column == "table" else "right")
    for out in run.outputs:
        summary.add_row(out.table, str(out.n), f"{out.explained_variance[0]:.1%}", f"{out.explained_variance[1]:.1%}")
    print_table(summary, console)
    Console(stderr=True).print(run.wrote_line(), highlight=False, soft_wrap=True, markup=False)
