"""Library entry point of `langsamp donor`: check the settings -> tables -> ranking -> (transfer runs) -> summary.

``run_donor(settings)`` is what `langsamp donor` does; the command only turns flags into :class:`DonorSettings`,
calls it and prints the ranking (as soon as it exists: ``--evaluate`` then fine-tunes twice, which takes a while).
The ranking itself is :mod:`langsamp_cli.analysis.donor`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langsamp_cli.errors import LangsampError
from langsamp_cli.settings import setting


@dataclass
class DonorSettings:
    """The settings of one `langsamp donor` run (each field is a flag)."""

    target: str = setting("Target language id, e.g. yue_Hani.", "--target", "-t")
    model: str | None = setting("LangSAMP checkpoint (default: the released yihongLiu/LangSAMP from the Hugging "
                                "Face cache, downloaded when online).", "--model", "-m")
    candidates: str | None = setting("Comma list or file of ids, 'all', or task:sib200|taxi1500|ner|pos (languages "
                                     "with training data). Default: the paper's ten donors.")
    top: int = setting("Show (and put in --json) the best N candidates.", default=10, positive=True)
    method: str = setting("lang (language embeddings) | script (script embeddings) | uriel (URIEL typology) | "
                          "combined (mean normalised rank of lang and uriel).", default="lang")
    as_json: bool = setting("Print machine-readable JSON to stdout (nothing else).", "--json", default=False)
    evaluate: str | None = setting("Also run transfer TASK (taxi1500|sib200|ner|pos) with the best donor and with "
                                   "English as source.")
    data_dir: str | None = setting("Task data for task:NAME candidates and --evaluate (default: the task config's "
                                   "data_dir).", path=True)
    uriel_features: str | None = setting("URIEL feature sets, comma list (default syntax_knn; e.g. "
                                         "syntax_knn,phonology_knn,inventory_knn).")
    lang_map: str | None = setting("Official full_dicts.pkl / .json mapping.", path=True)
    output_dir: str = setting("Results root for --evaluate.", default="results", path=True)
    # repeatable KEY=VALUE texts whose values may hold commas: the command reads them as a list of its own
    eval_option: list[str] = setting("KEY=VALUE setting for --evaluate (e.g. epochs=3, max_train_samples=200); "
                                     "repeatable.", "--eval-option", default=[], cli=False)
    mixed_precision: str | None = setting("Precision of the --evaluate fine-tuning: auto (bf16, or fp16 on GPUs "
                                          "without bf16; fp32 on CPU), no, bf16 (also on CPU), fp16 (CUDA only).")


@dataclass
class DonorReport:
    """What one `langsamp donor` run ranked (and, with --evaluate, measured)."""

    ranking: Any                          # analysis.donor.DonorRanking
    model: str | None                     # the checkpoint folder the tables came from (None: URIEL only)
    model_source: str | None              # how it was found (local path, Hugging Face cache ...)
    evaluation: dict[str, Any] | None = field(default=None)

    def to_json(self, top: int) -> dict[str, Any]:
        record = {"model": self.model, "model_source": self.model_source, **self.ranking.to_json(top)}
        if self.evaluation is not None:
            record["evaluation"] = self.evaluation
        return record


def run_donor(settings: DonorSettings, on_ranked: Callable[[DonorReport], None] | None = None) -> DonorReport:
    """Rank ``settings.candidates`` as donors for ``settings.target``; with ``evaluate``, fine-tune on English and
    on the best donor. ``on_ranked`` sees the report once ranked, before any fine-tuning."""
    from langsamp_cli.analysis.donor import parse_candidates, rank_donors
    from langsamp_cli.analysis.uriel import parse_feature_sets
    from langsamp_cli.languages import parse_lang_script

    target = parse_lang_script(settings.target).id
    _check_inputs(settings)
    report = DonorReport(None, None, None)
    tables = None
    if settings.method != "uriel" or (settings.candidates or "").strip() == "all":
        from langsamp_cli.embedding_tables import open_tables

        opened = open_tables(settings.model, settings.lang_map)
        tables, report.model, report.model_source = opened.tables, opened.path, opened.found
    pool = parse_candidates(settings.candidates, tables, settings.data_dir)
    report.ranking = rank_donors(target, pool, tables, settings.method, parse_feature_sets(settings.uriel_features))
    if on_ranked is not None:
        on_ranked(report)
    if settings.evaluate:
        report.evaluation = _evaluate(settings, report)
    return report


def _check_inputs(settings: DonorSettings) -> None:
    """What can be refused before any model is loaded or ranked."""
    from langsamp_cli.analysis.donor import TRANSFER_TASKS

    if settings.evaluate and settings.evaluate not in TRANSFER_TASKS:
        raise LangsampError(f"--evaluate {settings.evaluate!r}: use one of {', '.join(TRANSFER_TASKS)}")
    if settings.data_dir is not None and not Path(settings.data_dir).expanduser().is_dir():
        raise LangsampError(f"--data-dir {settings.data_dir} is not a directory; point it at the task's data folder")


def _evaluate(settings: DonorSettings, report: DonorReport) -> dict[str, Any]:
    from langsamp_cli.analysis.donor import evaluate_donor, parse_eval_options

    ranking = report.ranking
    if ranking.best is None:
        raise LangsampError(f"--evaluate: no donor could be ranked for {ranking.target}")
    model = report.model or settings.model
    if model is None:
        raise LangsampError("--evaluate needs --model (the encoder to fine-tune)")
    options = parse_eval_options(settings.eval_option)
    if settings.mixed_precision is not None:  # a flag, not --eval-option: YAML would read "no" as false
        options["mixed_precision"] = settings.mixed_precision
    return evaluate_donor(settings.evaluate, model, ranking.target, ranking.best, settings.data_dir,
                          settings.output_dir, options)
