"""`langsamp contamination`: test-set items in a pretraining corpus (flags -> scan.check_contamination)."""

from __future__ import annotations

import dataclasses
import inspect

import typer
from rich.console import Console

from langsamp_cli.progress import print_table

TABLE_ROWS = 40  # the printed table; the CSV/JSON hold every row


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("contamination")(contamination_command())


def contamination_command():
    from langsamp_cli.contamination.scan import ContaminationSettings
    from langsamp_cli.settings import make_command, typer_parameters

    against = inspect.Parameter(
        "against", inspect.Parameter.KEYWORD_ONLY, annotation=list[str],
        default=typer.Option([], "--against", metavar="TASK=PATH",
                             help="A test set to look for: an eval task and what its --data-dir takes (SR-B: also "
                                  "a folder of whole Bibles with an English one). Repeatable."))
    defaults = {f.name: f.default for f in dataclasses.fields(ContaminationSettings)
                if f.default not in (None, dataclasses.MISSING) and not isinstance(f.default, bool)}
    return make_command("contamination", "Find test-set items (SR-T, SR-B, Taxi1500, SIB-200, NER, POS) in a "
                        "pretraining corpus: whole lines and long overlaps; optionally write a clean copy.",
                        [*typer_parameters(ContaminationSettings, defaults=defaults), against], _contamination)


def _contamination(values: dict) -> None:
    from langsamp_cli.contamination.scan import ContaminationSettings, check_contamination, report_table
    from langsamp_cli.settings import convert_all

    against = values.pop("against") or []
    given = {k: v for k, v in values.items() if v is not None}
    settings = ContaminationSettings(**convert_all(ContaminationSettings, given, as_flags=True))
    err = Console(stderr=True, emoji=False)
    report = check_contamination(settings, against, console=err)
    for problem in report.problems:
        err.print(problem, highlight=False, markup=False, soft_wrap=True)
    out = Console()
    print_table(report_table(report, TABLE_ROWS), out)
    for lang, scan in report.languages.items():
        shown = [e for row in scan.sets for e in row.examples]
        for example in shown:
            out.print(f"  {lang} {example['kind']}: {example['file']}:{example['line']}: {example['corpus_line']!r}"
                      f"  <- {example['item_id']}", highlight=False, markup=False, soft_wrap=True)
    mb = report.bytes_scanned / 1e6
    err.print(f"scanned {mb:,.1f} MB in {report.seconds:.1f} s; report: {report.report_json}, {report.report_csv}",
              highlight=False, markup=False, soft_wrap=True)
    if report.clean_dir is not None:
        removed = sum(s.matched_lines for s in report.languages.values())
        err.print(f"clean copy: {report.clean_dir} ({removed:,} line(s) removed)", highlight=False, markup=False,
                  soft_wrap=True)
