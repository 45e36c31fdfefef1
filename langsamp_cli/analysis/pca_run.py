"""Library entry point of `langsamp plot-embeddings`: load the tables -> PCA figures + CSVs + pca.json -> summary.

``plot_embeddings(model, ...)`` is what `langsamp plot-embeddings` does (the command only parses flags, calls
it and prints the summary table); the experiment's ``plots:<variant>`` stages call it too. The PCA and the
figures come from :mod:`langsamp_cli.analysis.pca` and :mod:`langsamp_cli.plots`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from langsamp_cli.errors import LangsampError
from langsamp_cli.logs import get_logger

if TYPE_CHECKING:  # analysis.pca imports matplotlib: not at CLI start-up
    from langsamp_cli.analysis.pca import PcaOutput

TABLES = ("both", "language", "script")
DEFAULT_OUTPUT_DIR = Path("results/embeddings")


@dataclass
class EmbeddingPlots:
    """What one `langsamp plot-embeddings` run plotted and wrote."""

    model: str                 # the checkpoint the tables came from
    model_source: str          # how it was found (local path, Hugging Face cache ...)
    name: str                  # the short name in the figure titles
    output_dir: Path
    outputs: list[PcaOutput] = field(default_factory=list)  # one per plotted table (language, script)
    record: Path | None = None                              # pca.json

    @property
    def files(self) -> list[Path]:
        return [p for out in self.outputs for p in out.files] + ([self.record] if self.record else [])

    def wrote_line(self) -> str:
        return f"wrote {self.output_dir}/ (" + ", ".join(p.name for p in self.files) + ")"

    def describe(self) -> str:
        lines = [f"PCA of {self.name}"]
        lines += [f"{out.table}: {out.n} points; PC1 {out.explained_variance[0]:.1%}, "
                  f"PC2 {out.explained_variance[1]:.1%} of the variance" for out in self.outputs]
        return "\n".join([*lines, self.wrote_line()])


def plot_embeddings(model: str | None = None, *, languages: str = "head", color_by: str = "script",
                    table: str = "both", lang_map: Path | str | None = None, max_labels: int = 60,
                    label: str | None = None, output_dir: Path | str = DEFAULT_OUTPUT_DIR) -> EmbeddingPlots:
    """2-D PCA of a LangSAMP checkpoint's language and/or script embeddings (paper Figure 3).

    ``model`` None: the released checkpoint from the Hugging Face cache. ``table`` both|language|script
    (a checkpoint with one table plots that one); ``label``: comma list always labelled (default: the
    paper's ten; 'none' for none). Writes ``<table>_pca.csv/.png/.svg`` and ``pca.json``.
    """
    from langsamp_cli.analysis.donor import DEFAULT_MODEL, load_tables
    from langsamp_cli.analysis.pca import language_points, plot_table, script_points, select
    from langsamp_cli.analysis.similarity import PAPER_LANGUAGES, display_names
    from langsamp_cli.io_utils import atomic_write_json
    from langsamp_cli.model_source import resolve_model

    _check(table, color_by, max_labels)
    output_dir = Path(output_dir)
    log = get_logger()
    model = resolve_model(model, needs_config=False) if model else model  # embedding tables: a folder of them will do
    if model is None:
        resolve_model(DEFAULT_MODEL, default=True)
    tables, model_path, found = load_tables(model, str(lang_map) if lang_map else None)
    log.info(f"model: {model_path} ({found})")
    run = EmbeddingPlots(str(model_path), found, display_names(model or model_path)[0], output_dir)
    always = _always_label(label, PAPER_LANGUAGES)
    if table == "both":  # a 'lang' or 'script' variant has one table: plot that one
        for present, other in ((tables.lang, "language"), (tables.script, "script")):
            if present is None:
                log.warning(f"note: this checkpoint has no {other}-embedding table; not plotted")
        table = "language" if tables.script is None else "script" if tables.lang is None else "both"
    if table in ("both", "language"):
        points = select(language_points(tables), languages)
        for lang, reason in points.skipped.items():
            log.warning(f"not plotted {lang}: {reason}")
        run.outputs.append(plot_table(points, color_by, output_dir, run.name, always_label=always,
                                      max_labels=max_labels))
    if table in ("both", "script"):
        run.outputs.append(plot_table(script_points(tables), color_by, output_dir, run.name, max_labels=max_labels))
    record = {"model": str(model_path), "model_source": found, "languages": languages, "color_by": color_by,
              "tables": [{"table": o.table, "n": o.n, "explained_variance": o.explained_variance,
                          "files": [str(p) for p in o.files], "skipped": o.skipped} for o in run.outputs]}
    run.record = output_dir / "pca.json"
    atomic_write_json(run.record, record)
    return run


def _check(table: str, color_by: str, max_labels: int) -> None:
    from langsamp_cli.analysis.pca import COLOR_BY

    if table not in TABLES:
        raise LangsampError(f"--table {table!r} is unknown; use one of {', '.join(TABLES)}")
    if color_by not in COLOR_BY:
        raise LangsampError(f"--color-by {color_by!r} is unknown; use one of {', '.join(COLOR_BY)}")
    if max_labels < 0:
        raise LangsampError(f"--max-labels must be 0 or more (got {max_labels})")


def _always_label(value: str | None, default: tuple[str, ...]) -> list[str]:
    if value is None:
        return list(default)
    if value.strip().lower() in ("", "none"):
        return []
    from langsamp_cli.languages import parse_language_list

    return parse_language_list(value) or []
