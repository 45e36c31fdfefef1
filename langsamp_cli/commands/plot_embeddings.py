"""`langsamp plot-embeddings`: PCA scatter of the language and script embeddings (flags -> library)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from langsamp_cli.analysis.pca_run import DEFAULT_OUTPUT_DIR
from langsamp_cli.progress import print_table


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("plot-embeddings")(plot_embeddings)


def plot_embeddings(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="LangSAMP checkpoint, ours or the official format "
                                        "(default: the released yihongLiu/LangSAMP from the Hugging Face cache, "
                                        "downloaded when online)."),
    languages: str = typer.Option("head", "--languages", help="head | tail | all | family:NAME (or just the family, "
                                  "e.g. Indo-European) | comma list or file of ids."),
    color_by: str = typer.Option("script", "--color-by", help="Colour language points by script, family or head_tail."),
    table: str = typer.Option("both", "--table", help="both | language | script."),
    lang_map: Optional[Path] = typer.Option(None, "--lang-map", help="Official full_dicts.pkl / .json id mapping "
                                            "(for official checkpoints that do not ship one)."),
    max_labels: int = typer.Option(60, "--max-labels", help="Label at most this many points (the most spread out)."),
    label: Optional[str] = typer.Option(None, "--label", help="Comma list of languages always labelled when not "
                                        "every point can be (default: the paper's ten; 'none' for none)."),
    output_dir: Path = typer.Option(DEFAULT_OUTPUT_DIR, "--output-dir", help="Where PNG/SVG/CSV go."),
) -> None:
    """Figure 3: 2-D PCA of the learned language embeddings and of the script embeddings."""
    from langsamp_cli.analysis.pca_run import plot_embeddings as run_plot_embeddings
    from langsamp_cli.output_checks import check_output_dir

    check_output_dir(output_dir)
    run = run_plot_embeddings(model, languages=languages, color_by=color_by, table=table, lang_map=lang_map,
                              max_labels=max_labels, label=label, output_dir=output_dir)
    console = Console()
    console.print(f"PCA of {run.name}", highlight=False, soft_wrap=True, markup=False)
    summary = Table()
    for column in ("table", "points", "PC1 var", "PC2 var"):  # the files are listed on the 'wrote' line
        summary.add_column(column, justify="left" if column == "table" else "right")
    for out in run.outputs:
        summary.add_row(out.table, str(out.n), f"{out.explained_variance[0]:.1%}", f"{out.explained_variance[1]:.1%}")
    print_table(summary, console)
    Console(stderr=True).print(run.wrote_line(), highlight=False, soft_wrap=True, markup=False)
