"""Library entry point of `langsamp plot-embeddings`: load the tables -> PCA figures + CSVs + pca.json -> summary.

``plot_embeddings(settings)`` is what `langsamp plot-embeddings` does (the command only turns flags into
:class:`PlotSettings`, calls it and prints the summary table); the experiment's ``plots:<variant>`` stages build
the same settings from their YAML section and call it too. The PCA and the
figures come from :mod:`langsamp_cli.analysis.pca` and :mod:`langsamp_cli.plots`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from langsamp_cli.errors import LangsampError
from langsamp_cli.logs import get_logger
from langsamp_cli.settings import setting

if TYPE_CHECKING:  # analysis.pca imports matplotlib: not at CLI start-up
    from langsamp_cli.analysis.pca import PcaOutput

TABLES = ("both", "language", "script")


@dataclass
class PlotSettings:
    """The settings of one `langsamp plot-embeddings` run (each field is a flag and a key of the experiment's
    ``plots:`` section)."""

    model: str | None = setting("LangSAMP checkpoint, ours or the official format (default: the released "
                                "yihongLiu/LangSAMP from the Hugging Face cache, downloaded when online).",
                                "--model", "-m")
    languages: str | list[str] = setting("head | tail | all | family:NAME (or just the family, e.g. Indo-European) "
                                         "| comma list or file of ids.", default="head")
    color_by: str = setting("Colour language points by script, family or head_tail.", default="script")
    table: str = setting("both | language | script.", default="both")
    lang_map: str | None = setting("Official full_dicts.pkl / .json id mapping (for official checkpoints that do "
                                   "not ship one).", path=True)
    max_labels: int = setting("Label at most this many points (the most spread out).", default=60,
                              non_negative=True)
    label: str | None = setting("Comma list of languages always labelled when not every point can be (default: "
                                "the paper's ten; 'none' for none).")
    output_dir: str = setting("Where PNG/SVG/CSV go.", default="results/embeddings", path=True)


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


def plot_embeddings(settings: PlotSettings) -> EmbeddingPlots:
    """2-D PCA of a LangSAMP checkpoint's language and/or script embeddings (paper Figure 3).

    ``model`` None: the released checkpoint from the Hugging Face cache. ``table`` both|language|script
    (a checkpoint with one table plots that one); ``label``: comma list always labelled (default: the
    paper's ten; 'none' for none). Writes ``<table>_pca.csv/.png/.svg`` and ``pca.json``.
    """
    from langsamp_cli.analysis.pca import language_points, plot_table, script_points, select
    from langsamp_cli.analysis.similarity import PAPER_LANGUAGES, display_names
    from langsamp_cli.embedding_tables import open_tables
    from langsamp_cli.io_utils import atomic_write_json

    table, color_by, max_labels = settings.table, settings.color_by, settings.max_labels
    languages = settings.languages if isinstance(settings.languages, str) else ",".join(settings.languages)
    _check(table, color_by)
    output_dir = Path(settings.output_dir)
    log = get_logger()
    opened = open_tables(settings.model, settings.lang_map)
    tables, model_path, found = opened.tables, opened.path, opened.found
    log.info(f"model: {model_path} ({found})")
    run = EmbeddingPlots(str(model_path), found, display_names(opened.model or model_path)[0], output_dir)
    always = _always_label(settings.label, PAPER_LANGUAGES)
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


def _check(table: str, color_by: str) -> None:
    from langsamp_cli.analysis.pca import COLOR_BY

    if table not in TABLES:
        raise LangsampError(f"--table {table!r} is unknown; use one of {', '.join(TABLES)}")
    if color_by not in COLOR_BY:
        raise LangsampError(f"--color-by {color_by!r} is unknown; use one of {', '.join(COLOR_BY)}")


def _always_label(value: str | None, default: tuple[str, ...]) -> list[str]:
    if value is None:
        return list(default)
    if value.strip().lower() in ("", "none"):
        return []
    from langsamp_cli.languages import parse_language_list

    return parse_language_list(value) or []
