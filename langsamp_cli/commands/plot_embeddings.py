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
    output_dir: Path = typer.Option(Path("results/embeddings"), "--output-dir", help="Where PNG/SVG/CSV go."),
) -> None:
    """Figure 3: 2-D PCA of the learned language embeddings and of the script embeddings."""
    from langsamp_cli.analysis.donor import load_tables
    from langsamp_cli.analysis.pca import COLOR_BY, language_points, plot_table, script_points, select
    from langsamp_cli.analysis.similarity import PAPER_LANGUAGES, display_names
    from langsamp_cli.errors import LangsampError
    from langsamp_cli.io_utils import atomic_write_json

    if table not in TABLES:
        raise LangsampError(f"--table {table!r} is unknown; use one of {', '.join(TABLES)}")
    if color_by not in COLOR_BY:
        raise LangsampError(f"--color-by {color_by!r} is unknown; use one of {', '.join(COLOR_BY)}")
    if max_labels < 0:
        raise LangsampError(f"--max-labels must be 0 or more (got {max_labels})")
    err = Console(stderr=True)
    from langsamp_cli.analysis.donor import DEFAULT_MODEL
    from langsamp_cli.model_source import resolve_model

    model = resolve_model(model) if model else model
    if model is None:
        resolve_model(DEFAULT_MODEL, default=True)
    tables, model_path, found = load_tables(model, str(lang_map) if lang_map else None)
    err.print(f"model: {model_path} ({found})", highlight=False, soft_wrap=True, markup=False)
    name = display_names(model or model_path)[0]
    always = _always_label(label, PAPER_LANGUAGES)
    outputs = []
    if table == "both":  # a 'lang' or 'script' variant has one table: plot that one
        for present, other in ((tables.lang, "language"), (tables.script, "script")):
            if present is None:
                err.print(f"[yellow]note[/]: this checkpoint has no {other}-embedding table; not plotted",
                          highlight=False)
        table = "language" if tables.script is None else "script" if tables.lang is None else "both"
    if table in ("both", "language"):
        points = select(language_points(tables), languages)
        for lang, reason in points.skipped.items():
            err.print(f"[yellow]not plotted[/] {lang}: {reason}", highlight=False)
        outputs.append(plot_table(points, color_by, output_dir, name, always_label=always, max_labels=max_labels))
    if table in ("both", "script"):
        outputs.append(plot_table(script_points(tables), color_by, output_dir, name, max_labels=max_labels))
    console = Console()
    console.print(f"PCA of {name}", highlight=False, soft_wrap=True, markup=False)
    summary = Table()
    for column in ("table", "points", "PC1 var", "PC2 var"):  # the files are listed on the 'wrote' line
        summary.add_column(column, justify="left" if column == "table" else "right")
    for out in outputs:
        summary.add_row(out.table, str(out.n), f"{out.explained_variance[0]:.1%}", f"{out.explained_variance[1]:.1%}")
    console.print(summary)
    record = {"model": str(model_path), "model_source": found, "languages": languages, "color_by": color_by,
              "tables": [{"table": o.table, "n": o.n, "explained_variance": o.explained_variance,
                          "files": [str(p) for p in o.files], "skipped": o.skipped} for o in outputs]}
    atomic_write_json(Path(output_dir) / "pca.json", record)
    err.print(f"wrote {output_dir}/ (" + ", ".join(p.name for o in outputs for p in o.files) + ", pca.json)",
              highlight=False, soft_wrap=True, markup=False)


def _always_label(value: str | None, default: tuple[str, ...]) -> list[str]:
    if value is None:
        return list(default)
    if value.strip().lower() in ("", "none"):
        return []
    from langsamp_cli.languages import parse_language_list

    return parse_language_list(value) or []

