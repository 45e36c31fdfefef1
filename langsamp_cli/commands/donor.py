"""`langsamp donor`: rank source languages for a target by embedding / typological similarity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from langsamp_cli.progress import print_table

COLUMN_TITLES = {"lang": "lang cos", "script": "script cos", "uriel": "URIEL sim", "combined": "combined"}


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("donor")(donor)


def donor(
    target: str = typer.Option(..., "--target", "-t", help="Target language id, e.g. yue_Hani."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="LangSAMP checkpoint (default: the released "
                                        "yihongLiu/LangSAMP from the Hugging Face cache, downloaded when online)."),
    candidates: Optional[str] = typer.Option(None, "--candidates", help="Comma list or file of ids, 'all', or "
                                             "task:sib200|taxi1500|ner|pos (languages with training data). "
                                             "Default: the paper's ten donors."),
    top: int = typer.Option(10, "--top", help="Show (and put in --json) the best N candidates."),
    method: str = typer.Option("lang", "--method", help="lang (language embeddings) | script (script embeddings) | "
                               "uriel (URIEL typology) | combined (mean normalised rank of lang and uriel)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON to stdout (nothing else)."),
    evaluate: Optional[str] = typer.Option(None, "--evaluate", help="Also run transfer TASK (taxi1500|sib200|ner|pos) "
                                           "with the best donor and with English as source."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Task data for task:NAME candidates and "
                                            "--evaluate (default: the task config's data_dir)."),
    uriel_features: Optional[str] = typer.Option(None, "--uriel-features", help="URIEL feature sets, comma list "
                                                 "(default syntax_knn; e.g. syntax_knn,phonology_knn,inventory_knn)."),
    lang_map: Optional[Path] = typer.Option(None, "--lang-map", help="Official full_dicts.pkl / .json mapping."),
    output_dir: Path = typer.Option(Path("results"), "--output-dir", help="Results root for --evaluate."),
    eval_option: Optional[list[str]] = typer.Option(None, "--eval-option", help="KEY=VALUE setting for --evaluate "
                                                    "(e.g. epochs=3, max_train_samples=200); repeatable."),
    mixed_precision: Optional[str] = typer.Option(None, "--mixed-precision", help="Precision of the --evaluate "
                                                  "fine-tuning: auto (bf16, or fp16 on GPUs without bf16; fp32 on CPU), no, "
                                                  "bf16 (also on CPU), fp16 (CUDA only)."),
) -> None:
    """Donor selection (paper §5.4): the candidate whose language embedding is closest to the target's."""
    from langsamp_cli.analysis.donor import load_tables, parse_candidates, rank_donors
    from langsamp_cli.analysis.uriel import parse_feature_sets
    from langsamp_cli.errors import LangsampError
    from langsamp_cli.languages import parse_lang_script

    err = Console(stderr=True)
    if top < 1:
        raise LangsampError(f"--top must be at least 1 (got {top})")
    target_id = parse_lang_script(target).id
    if evaluate:
        from langsamp_cli.analysis.donor import TRANSFER_TASKS

        if evaluate not in TRANSFER_TASKS:  # before any model is loaded or ranked
            raise LangsampError(f"--evaluate {evaluate!r}: use one of {', '.join(TRANSFER_TASKS)}")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise LangsampError(f"--data-dir {data_dir} is not a directory; point it at the task's data folder")
    tables, model_path, found = None, None, None
    if method != "uriel" or (candidates or "").strip() == "all":
        from langsamp_cli.analysis.donor import DEFAULT_MODEL
        from langsamp_cli.model_source import resolve_model

        model = resolve_model(model, needs_config=False) if model else model  # embedding tables suffice
        if model is None:
            resolve_model(DEFAULT_MODEL, default=True)
        tables, model_path, found = load_tables(model, str(lang_map) if lang_map else None)
        err.print(f"model: {model_path} ({found})", highlight=False, soft_wrap=True, markup=False)
    pool = parse_candidates(candidates, tables, data_dir)
    ranking = rank_donors(target_id, pool, tables, method, parse_feature_sets(uriel_features))
    record = {"model": model_path, "model_source": found, **ranking.to_json(top)}
    if not as_json:  # the ranking first: --evaluate fine-tunes twice, which takes a while
        _print_ranking(ranking, top, err)
    if evaluate:
        record["evaluation"] = _evaluate(evaluate, ranking, model_path or model, data_dir, output_dir,
                                         eval_option or [], err, mixed_precision)
    if as_json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
    elif evaluate:
        print_table(evaluation_table(record["evaluation"]), Console())


def _print_ranking(ranking, top: int, err: Console) -> None:
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


def _evaluate(task: str, ranking, model: str | None, data_dir: Path | None, output_dir: Path, options: list[str],
              err: Console, mixed_precision: str | None = None) -> dict:
    from langsamp_cli.analysis.donor import evaluate_donor, parse_eval_options
    from langsamp_cli.errors import LangsampError

    if ranking.best is None:
        raise LangsampError(f"--evaluate: no donor could be ranked for {ranking.target}")
    if model is None:
        raise LangsampError("--evaluate needs --model (the encoder to fine-tune)")
    settings = parse_eval_options(options)
    if mixed_precision is not None:  # a flag, not --eval-option: YAML would read "no" as false
        settings["mixed_precision"] = mixed_precision
    return evaluate_donor(task, model, ranking.target, ranking.best, data_dir, output_dir, settings, console=err)
