"""`langsamp plot-embeddings`: PCA scatter of the language and script embeddings (flags -> library)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

TABLES = ("both", "language", "script")


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("plot-embeddings")(plot_embeddings)


def plot_embeddings(
    model: str = typer.Option(..., "--model", "-m", help="LangSAMP checkpoint (ours or the official format)."),
    languages: str = typer.Option("head", "--languages", help="head | tail | all | family:NAME | comma list or file."),
    color_by: str = typer.Option("script", "--color-by", help="Colour language points by script, family or head_tail."),
    table: str = typer.Option("both", "--table", help="both | language | script."),
    lang_map: Optional[Path] = typer.Option(None, "--lang-map", help="Official full_dicts.pkl / .json id mapping "
                                            "(for official checkpoints that do not ship one)."),
    max_labels: int = typer.Option(60, "--max-labels", help="Label at most this many points (the most spread out)."),
    output_dir: Path = typer.Option(Path("results/embeddings"), "--output-dir", help="Where PNG/SVG/CSV go."),
) -> None:
    """Figure 3: 2-D PCA of the learned language embeddings and of the script embeddings."""
    from langsamp_cli.analysis.pca import language_points, plot_table, script_points, select
    from langsamp_cli.errors import LangsampError
    from langsamp_cli.io_utils import atomic_write_json
    from langsamp_cli.model import load_embedding_tables

    if table not in TABLES:
        raise LangsampError(f"--table {table!r} is unknown; use one of {', '.join(TABLES)}")
    err = Console(stderr=True)
    tables = load_embedding_tables(str(model), lang_map=str(lang_map) if lang_map else None)
    name = Path(model).name or model
    outputs = []
    if table in ("both", "language"):
        points = select(language_points(tables), languages)
        for lang, reason in points.skipped.items():
            err.print(f"[yellow]not plotted[/] {lang}: {reason}", highlight=False)
        outputs.append(plot_table(points, color_by, output_dir, name, max_labels=max_labels))
    if table in ("both", "script"):
        outputs.append(plot_table(script_points(tables), color_by, output_dir, name, max_labels=max_labels))
    summary = Table(title=f"PCA of {name}", title_justify="left")
    for column in ("table", "points", "PC1 var", "PC2 var", "files"):
        summary.add_column(column)
    for out in outputs:
        summary.add_row(out.table, str(out.n), f"{out.explained_variance[0]:.1%}", f"{out.explained_variance[1]:.1%}",
                        ", ".join(p.name for p in out.files))
    Console().print(summary)
    record = {"model": str(model), "languages": languages, "color_by": color_by,
              "tables": [{"table": o.table, "n": o.n, "explained_variance": o.explained_variance,
                          "files": [str(p) for p in o.files], "skipped": o.skipped} for o in outputs]}
    atomic_write_json(Path(output_dir) / "pca.json", record)
    err.print(f"wrote {output_dir}/ (" + ", ".join(p.name for o in outputs for p in o.files) + ", pca.json)",
              highlight=False, soft_wrap=True)

