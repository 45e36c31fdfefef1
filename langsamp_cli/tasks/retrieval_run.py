"""Library entry point for sentence retrieval: settings -> plan -> encode/score -> typed summary.

``run_retrieval_task("sr-t", {"model": ..., "data_dir": ...})`` is what `langsamp eval sr-t` does (the
command only parses flags, calls this and prints); the experiment calls it too. Values come from, in
rising priority: the task YAML (``langsamp_cli/task_configs/<task>.yaml`` and its templates, then
``config``), then ``flags``. Keys and types: :class:`langsamp_cli.tasks.task_settings.RetrievalSettings`. A YAML with its own ``task:`` name files its results under that name.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks import check_model, registry
from langsamp_cli.tasks.scoring import SCORINGS, Scoring, scoring_from
from langsamp_cli.tasks.task_settings import RetrievalSettings, recorded_settings

if TYPE_CHECKING:  # faiss and torch load only when a run gets that far
    from transformers import PretrainedConfig

    from langsamp_cli.encode import SentenceEncoder
    from langsamp_cli.results import ResultStore
    from langsamp_cli.tasks.retrieval import RunSummary

@dataclass
class LayerResult:
    """One layer's result set of a ``--layers`` run."""

    layer: int
    task: str             # ``task`` for the task's own layer, ``task@layer<k>`` for the others
    mean: float | None    # the headline metric's mean over the scored languages (0..1); None if none scored
    n_languages: int
    run_dir: Path
    results: Path
    floor: float | None = None  # the same mean of each language's chance score (see langsamp_cli.baselines)


@dataclass
class RetrievalRunResult:
    """What one retrieval run did and scored (the results.json files hold the full records)."""

    task: str
    metric: str
    languages: list[str]                                            # the languages asked for (this shard)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # language -> metric -> value (own layer)
    skipped: dict[str, str] = field(default_factory=dict)             # language -> why (this run or before)
    newly_scored: list[str] = field(default_factory=list)
    newly_skipped: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    sentences_encoded: int = 0
    results: list[Path] = field(default_factory=list)                # one results.json per result set
    layers: list[LayerResult] = field(default_factory=list)          # empty unless several layers were asked for
    outputs: list[Path] = field(default_factory=list)                # other files (sr-pairs: matrices, heatmaps)

    def describe(self) -> str:
        if self.layers:
            return (f"{self.task}: {len(self.layers)} layers; {len(self.newly_scored)} languages scored, "
                    f"{len(self.newly_skipped)} skipped; {self.sentences_encoded} sentences encoded")
        written = f"; matrix, languages.csv and heatmap in {self.outputs[0].parent}" if self.outputs else ""
        return (f"{self.task}: {len(self.newly_scored)} scored, {len(self.newly_skipped)} skipped, "
                f"{len(self.already_done)} already done; {self.sentences_encoded} sentences encoded{written}")


def run_retrieval_task(task: str, flags: dict[str, Any], *, config: Path | None = None, no_cache: bool = False,
                       cache_dir: Path | None = None, overwrite: bool = False, shard: str | None = None,
                       console: Console | None = None, progress: bool | None = None) -> RetrievalRunResult:
    """Encode every selected language pair and score retrieval against English (one or several layers).

    ``flags`` are the task's settings by name (model, data_dir, languages, pairs, layer, layers, ...).
    """
    from langsamp_cli.results import parse_shard, scored_task_name, select_shard
    from langsamp_cli.task_config import resolve_settings
    from langsamp_cli.tasks.retrieval import run_retrieval

    spec = registry.get(task)
    if spec.is_transfer:
        raise LangsampError(f"{task}: not a retrieval task; use one of {', '.join(registry.retrieval_names())}")
    _check_source_lang(task, flags.get("source_lang"))
    console = console or Console(stderr=True, emoji=False)
    progress = sys.stderr.isatty() if progress is None else progress
    settings = resolve_settings(task, flags, config)
    _check_inputs(spec, settings)
    scoring = _scoring(settings, flags)
    # a YAML-defined task files its results under its own name; margin / CSLS beside cosine ("sr-t@margin")
    name = scored_task_name(settings.task, scoring.method)
    explicit_max_length = flags.get("max_length") is not None
    if spec.runner is not None:
        return spec.runner(settings, scoring, name=name, explicit_max_length=explicit_max_length,
                           no_cache=no_cache, cache_dir=cache_dir, overwrite=overwrite, shard=shard,
                           console=console, progress=progress)
    plan = spec.data(settings, flags)
    selected = select_shard(plan.names(), parse_shard(shard))
    settings, model_config = check_model(settings, explicit_max_length)
    layers = requested_layers(settings, model_config)
    encoder = encoder_for(settings, model_config, layers, cache_dir, no_cache)
    result = RetrievalRunResult(name, settings.metric, selected)
    stores = _stores(result.task, settings, scoring, encoder, layers or [settings.layer], overwrite)
    summaries = run_retrieval(plan, encoder, stores, result.languages, console=console, progress=progress,
                              ks=settings.top_k, scoring=scoring)
    result.sentences_encoded = encoder.sentences_encoded
    if layers:
        _file_layers(result, stores, summaries)
    else:
        _file_own_layer(result, stores[settings.layer], summaries[settings.layer])
    result.scores, result.skipped = _records(_own_results(result, settings.layer))
    return result


def _check_source_lang(task: str, value: str | None) -> None:
    """The query side of retrieval is the English side of every pair: --source-lang cannot change it."""
    from langsamp_cli.languages import parse_lang_script

    if value is not None and parse_lang_script(str(value)).id != "eng_Latn":
        raise LangsampError(f"--source-lang {value}: {task} always queries with the English side of each pair "
                            "(eng_Latn), another language cannot be chosen; drop the flag")


def _check_inputs(spec: registry.TaskSpec, settings: RetrievalSettings) -> None:
    """A data input of another retrieval task (``pivots`` of the all-pairs task, ``bible`` of SR-B) set for
    this one would be ignored: an error instead."""
    others = {key for other in registry.all_tasks() if other.type == spec.type for key in other.inputs}
    unused = sorted(key for key in others - set(spec.inputs) if getattr(settings, key) is not None)
    if unused:
        users = [other.name for other in registry.all_tasks() if set(unused) & set(other.inputs)]
        raise LangsampError(f"{spec.name}: {', '.join(unused)} only act(s) on {', '.join(users)}; remove "
                            f"{'it' if len(unused) == 1 else 'them'} from the config or the call")


def _scoring(settings: RetrievalSettings, flags: dict[str, Any]) -> Scoring:
    """The run's Scoring; a k flag that cannot act is an error."""
    scoring = scoring_from(settings)
    for method in SCORINGS[1:]:
        if flags.get(f"{method}_k") is not None and scoring.method != method:
            raise LangsampError(f"--{method}-k {flags[f'{method}_k']} only acts with --scoring {method} "
                                f"(this run scores by {scoring.method}); drop it or pass --scoring {method}")
    return scoring


# Settings that are not a number's setting: ``layers`` picks result sets (each unit records its own layer);
# the scoring keys come back through Scoring.record(), only those that change a number (none for cosine,
# so cosine units keep the settings hash of plain runs).
_NOT_RECORDED = ("layers", "scoring", *(f"{method}_k" for method in SCORINGS[1:]))


def retrieval_record(settings: RetrievalSettings, scoring: Scoring, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings a retrieval unit records (and hashes): every recorded field that is set, and the scoring."""
    left_out = (*_NOT_RECORDED, *exclude)
    return {**{k: v for k, v in recorded_settings(settings).items() if k not in left_out}, **scoring.record()}


def requested_layers(settings: RetrievalSettings, model_config: PretrainedConfig) -> list[int] | None:
    """The layers of a ``--layers`` run (sorted, checked against the model's depth), or None for a plain run."""
    if not settings.layers:
        return None
    from langsamp_cli.encode import config_depth, parse_layers

    return parse_layers(settings.layers, config_depth(model_config))


def encoder_for(settings: RetrievalSettings, model_config: PretrainedConfig, layers: list[int] | None,
                cache_dir: Path | None, no_cache: bool) -> SentenceEncoder:
    """The run's SentenceEncoder: its network ends at the deepest layer the run pools."""
    from langsamp_cli.encode import SentenceEncoder  # heavy (torch): after every cheap check

    return SentenceEncoder(settings.model, layer=max(layers) if layers else settings.layer,
                           max_length=settings.max_length, batch_size=settings.batch_size,
                           exclude_special_tokens=settings.exclude_special_tokens, device=settings.device,
                           cache_dir=cache_dir, use_cache=not no_cache, dtype=settings.dtype, config=model_config)


def _stores(task: str, settings: RetrievalSettings, scoring: Scoring, encoder, layers: list[int],
            overwrite: bool) -> dict[int, ResultStore]:
    """One result set per layer: the task's own layer under ``task`` (exactly what a plain run writes),
    every other layer k under ``task@layer<k>``; each unit's settings carry its layer."""
    from langsamp_cli.results import ResultStore, layer_task_name

    base = retrieval_record(settings, scoring)
    stores = {}
    for k in layers:
        record = {**base, "layer": k, "pooling": encoder.pooling, "encoder_key": encoder.fingerprint_for(k)}
        name = task if k == settings.layer else layer_task_name(task, k)
        stores[k] = ResultStore(Path(settings.output_dir), name, settings.model, None, record, settings.metric,
                                overwrite=overwrite, fingerprint=encoder.model_fingerprint)
    return stores


def _file_own_layer(result: RetrievalRunResult, store: ResultStore, summary: RunSummary) -> None:
    result.newly_scored, result.newly_skipped = list(summary.scored), list(summary.skipped)
    result.already_done = list(summary.already_done)
    result.results = [Path(store.finalize())]


def _file_layers(result: RetrievalRunResult, stores: dict[int, ResultStore],
                 summaries: dict[int, RunSummary]) -> None:
    from langsamp_cli.results import load_results

    for k, store in stores.items():
        path = Path(store.finalize())
        records = load_results(path)
        values = [r["metrics"][result.metric] for r in records["languages"] if result.metric in r.get("metrics", {})]
        floor = records["groups"].get("all", {}).get("floor", {}).get(result.metric)
        result.layers.append(LayerResult(k, store.task, sum(values) / len(values) if values else None, len(values),
                                         Path(store.run_dir), path, floor))
        result.results.append(path)
    result.newly_scored = sorted({name for summary in summaries.values() for name in summary.scored})
    result.newly_skipped = sorted({name for summary in summaries.values() for name in summary.skipped})


def _own_results(result: RetrievalRunResult, own_layer: int) -> Path | None:
    """The results.json of the task's own layer (None when a ``--layers`` run left it out)."""
    if not result.layers:
        return result.results[0]
    own = [layer.results for layer in result.layers if layer.layer == own_layer]
    return own[0] if own else None


def _records(results: Path | None) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """(language -> metrics, language -> why skipped) from a results.json."""
    from langsamp_cli.results import load_results

    if results is None:
        return {}, {}
    loaded = load_results(results)
    scores = {r["lang_script"]: dict(r.get("metrics", {})) for r in loaded["languages"]}
    return scores, {r["lang_script"]: str(r.get("reason", "")) for r in loaded["skipped"]}
