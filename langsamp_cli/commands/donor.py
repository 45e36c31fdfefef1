"""`langsamp donor`: rank source languages for a target by embedding / typological similarity (flags -> library)."""

from __future__ import annotations

import inspect
import json
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from langsamp_cli.analysis.donor_run import DonorReport, DonorSettings
from langsamp_cli.progress import print_table

COLUMN_TITLES = {"lang": "lang cos", "script": "script cos", "uriel": "URIEL sim", "combined": "combined"}


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("donor")(donor_command())


def donor_command():
    """`langsamp donor`: one flag per DonorSettings field, plus the repeatable --eval-option."""
    import dataclasses

    from langsamp_cli.settings import make_command, meta, typer_parameters

    defaults = {f.name: f.default for f in dataclasses.fields(DonorSettings)
                if f.default not in (None, False, dataclasses.MISSING)}
    eval_option = next(f for f in dataclasses.fields(DonorSettings) if f.name == "eval_option")
    # its values may hold commas (labels=[a, b]), so it is a repeated flag rather than a comma list
    repeated = inspect.Parameter("eval_option", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[list[str]],
                                 default=typer.Option(None, "--eval-option", help=meta(eval_option).help))
    return make_command("donor", "Donor selection (paper §5.4): the candidate whose language embedding is "
                        "closest to the target's.",
                        [*typer_parameters(DonorSettings, defaults=defaults, required=("target",)), repeated], _donor)


def _donor(values: dict) -> None:
    from langsamp_cli.analysis.donor_run import run_donor
    from langsamp_cli.settings import from_flags

    settings = from_flags(DonorSettings, values)
    err = Console(stderr=True)
    report = run_donor(settings, on_ranked=lambda ranked: _print_ranking(ranked, settings, err))
    if settings.as_json:
        print(json.dumps(report.to_json(settings.top), indent=2, ensure_ascii=False))
    elif report.evaluation is not None:
        print_table(evaluation_table(report.evaluation), Console())


def _print_ranking(report: DonorReport, settings: DonorSettings, err: Console) -> None:
    """The ranking as soon as it exists (--evaluate fine-tunes twice next); with --json only the model line."""
    if report.model is not None:
        err.print(f"model: {report.model} ({report.model_source})", highlight=False, soft_wrap=True, markup=False)
    if settings.as_json:
        return
    ranking, top = report.ranking, settings.top
    for note in ranking.notes:
        err.print(f"[yellow]note[/]: {escape(note)}", highlight=False, soft_wrap=True)
    console = Console()
    console.print(f"donors for {ranking.target}, ranked by {ranking.ranked_by}", highlight=False)
    print_table(ranking_table(ranking, top), console)
    if len(ranking.scores) > 1:
        console.print("(n) = the candidate's rank by that column's method (ties share a rank)", highlight=False)
    if ranking.best:
        console.print(f"best donor for {ranking.target}: [bold]{ranking.best}[/] (by {ranking.ranked_by})",
                      highlight=False)


def ranking_table(ranking, top: int) -> Table:
    from langsamp_cli.analysis.donor import method_ranks

    columns = list(ranking.scores)
    # Each method's own rank is shown beside its score, so a reader sees where the methods disagree.
    ranks = {m: method_ranks(ranking.scores[m]) for m in columns}
    table = Table()
    table.add_column("#", justify="right")
    table.add_column("candidate")
    for m in columns:
        table.add_column(COLUMN_TITLES.get(m, m), justify="right", style="bold" if m == ranking.ranked_by else "")
    for position, candidate in enumerate(ranking.ranking[:top], start=1):
        cells = []
        for m in columns:
            score = ranking.scores[m].get(candidate)
            cells.append("-" if score is None else f"{score:.4f}" if len(columns) == 1
                         else f"{score:.4f} ({ranks[m][candidate]})")
        table.add_row(str(position), candidate, *cells)
    return table


def evaluation_table(evaluation: dict) -> Table:
    table = Table(title=f"{evaluation['task']}: {evaluation['metric']} with English vs the donor as source",
                  title_justify="left")
    for column in ("target", f"source {evaluation['english']}", f"source {evaluation['donor']}", "difference"):
        table.add_column(column, justify="right")
    for lang, row in evaluation["per_language"].items():
        english, donor_score = row.get("english"), row.get("donor")
        diff = "-" if english is None or donor_score is None else f"{donor_score - english:+.4f}"
        table.add_row(lang, _fmt(english), _fmt(donor_score), diff)
    return table


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"
