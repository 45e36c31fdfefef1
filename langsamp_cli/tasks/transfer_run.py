"""Library entry point for zero-shot transfer: settings -> data -> fine-tune/score -> typed summary.

``run_transfer("sib200", {"model": ..., "data_dir": ...})`` is what `langsamp eval sib200` does
(the command only parses flags, calls this and prints); `langsamp donor --evaluate` and the
experiment call it too. Values come from, in rising priority: the task YAML
(``langsamp_cli/task_configs/<task>.yaml`` and its templates, the paper's Appendix A; then ``config``),
then ``flags``. Keys and types: :class:`langsamp_cli.tasks.task_settings.TransferSettings`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks import check_model, registry
from langsamp_cli.tasks.task_settings import ClassificationSettings, TransferSettings


TRANSFER_TASKS = tuple(registry.transfer_names())


@dataclass
class TransferRunResult:
    """What one transfer run did and scored (the unit files on disk hold the full records)."""

    task: str
    metric: str                                                  # the headline metric of ``scores``
    seeds: list[int]
    languages: list[str]                                         # the languages asked for (this shard)
    scores: dict[int, dict[str, float]] = field(default_factory=dict)  # seed -> language -> headline score
    skipped: dict[int, dict[str, str]] = field(default_factory=dict)   # seed -> language -> why (this run or before)
    newly_scored: list[tuple[int, str]] = field(default_factory=list)
    newly_skipped: list[tuple[int, str]] = field(default_factory=list)
    already_done: list[tuple[int, str]] = field(default_factory=list)
    trained_seeds: list[int] = field(default_factory=list)
    reused_seeds: list[int] = field(default_factory=list)
    results: list[Path] = field(default_factory=list)            # one results.json per seed

    def score(self, language: str, seed: int | None = None) -> float | None:
        """The headline score of ``language`` for ``seed`` (default: the first seed); None if skipped."""
        return self.scores.get(self.seeds[0] if seed is None else seed, {}).get(language)

    def describe(self) -> str:
        return (f"{self.task}: seeds {','.join(map(str, self.seeds))}; {len(self.newly_scored)} units scored, "
                f"{len(self.newly_skipped)} skipped, {len(self.already_done)} already done; "
                f"fine-tuned {len(self.trained_seeds)}, reused {len(self.reused_seeds)}")


def resolve_settings(task: str, flags: dict[str, Any], config: Path | None = None) -> TransferSettings:
    """:func:`langsamp_cli.task_config.resolve_settings` of a transfer task (another task is an error)."""
    from langsamp_cli.task_config import resolve_settings as resolve

    if task not in TRANSFER_TASKS:
        raise LangsampError(f"{task}: not a transfer task; use one of {', '.join(TRANSFER_TASKS)}")
    return resolve(task, flags, config)


def build_task(task: str, settings: TransferSettings):
    """The task object (classification or tagging) the runner fine-tunes and scores with."""
    from langsamp_cli.tasks.classification import ClassificationTask
    from langsamp_cli.tasks.tagging import TaggingTask

    kind = ClassificationTask if registry.get(task).type == "classification" else TaggingTask
    return kind(settings.task, max_length=settings.max_length, eval_batch_size=settings.eval_batch_size)


def run_transfer(task: str, flags: dict[str, Any], *, config: Path | None = None, overwrite: bool = False,
                 shard: str | None = None, bibles: list[Path] | None = None, bible_dir: Path | None = None,
                 max_seeds: int | None = None, console: Console | None = None,
                 progress: bool | None = None) -> TransferRunResult:
    """Fine-tune on the source language and score every selected target language, once per seed.

    ``flags`` are the task's settings by name (model, data_dir, languages, seeds, lr, ...).
    ``max_seeds`` keeps only the first N configured seeds (the donor study uses one).
    """
    from langsamp_cli.results import parse_shard, select_shard
    from langsamp_cli.tasks import requested_languages
    from langsamp_cli.tasks.transfer import TransferRunner, parse_seeds, restrict_languages, train_settings
    from langsamp_cli.tasks.transfer_inputs import build_transfer_data

    console = console or Console(stderr=True, emoji=False)
    settings = resolve_settings(task, flags, config)
    if isinstance(settings, ClassificationSettings):
        bibles = bibles or [Path(b) for b in settings.bible or []]
        bible_dir = bible_dir or (Path(settings.bible_dir) if settings.bible_dir else None)
    seeds = parse_seeds(settings.seeds)[:max_seeds]
    train_settings(settings, seeds[0])  # bad training values fail before any data is read
    requested, any_script = requested_languages(settings.languages)
    data = build_transfer_data(task, settings, console, bibles, bible_dir)
    data = restrict_languages(data, requested, str(settings.data_dir), any_script)
    languages = select_shard(data.names(), parse_shard(shard))
    _check_scheduler(settings.scheduler)
    settings, _ = check_model(settings, explicit_max_length=flags.get("max_length") is not None)
    runner = TransferRunner(build_task(task, settings), data, settings, console,
                            progress=sys.stderr.isatty() if progress is None else progress)
    summary = runner.run(seeds, languages, overwrite=overwrite)
    result = TransferRunResult(task, runner.task.headline, seeds, languages, newly_scored=summary.scored,
                               newly_skipped=list(summary.skipped), already_done=summary.already_done,
                               trained_seeds=summary.trained_seeds, reused_seeds=summary.reused_seeds,
                               results=summary.results)
    for seed, results_json in zip(seeds, summary.results):
        result.scores[seed], result.skipped[seed] = unit_scores(Path(results_json).parent, languages,
                                                                runner.task.headline)
    return result


def _check_scheduler(name: str | None) -> None:
    """A schedule transformers does not know is refused before the model loads, not after."""
    from transformers import SchedulerType

    known = [kind.value for kind in SchedulerType]
    if name is not None and name not in known:
        raise LangsampError(f"--scheduler {name!r}: not a transformers schedule; use one of {', '.join(known)}")


def unit_scores(run_dir: Path, languages: list[str], metric: str) -> tuple[dict[str, float], dict[str, str]]:
    """(language -> ``metric``, language -> why skipped) from a seed folder's unit files."""
    from langsamp_cli.results import UNITS_DIR, unit_file_name

    scores: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for language in languages:
        path = Path(run_dir) / UNITS_DIR / unit_file_name(language)
        if not path.is_file():
            skipped[language] = f"no result file {path}"
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        value = (record.get("metrics") or {}).get(metric)
        if value is None:
            skipped[language] = str(record.get("reason") or f"no {metric} in {path}")
        else:
            scores[language] = float(value)
    return scores, skipped
