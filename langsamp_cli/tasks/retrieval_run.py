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
from typing import Any

from rich.console import Console

from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks import registry
from langsamp_cli.tasks.scoring import SCORINGS, Scoring, scoring_from
from langsamp_cli.tasks.task_settings import RetrievalSettings

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
    name = scored_task_name(str(settings.get("task", task)), scoring.method)
    if spec.runner is not None:
        return spec.runner(_typed(settings), scoring, name=name,
                           explicit_max_length=flags.get("max_length") is not None, no_cache=no_cache,
                           cache_dir=cache_dir, overwrite=overwrite, shard=shard, console=console, progress=progress)
    plan = spec.build_data()(settings, flags)
    selected = select_shard(plan.names(), parse_shard(shard))
    _check_model(settings, explicit_max_length=flags.get("max_length") is not None)
    layers = _requested_layers(settings, settings.pop("layers", None))  # not a setting of one layer's results
    encoder = _encoder(settings, layers, cache_dir, no_cache)
    result = RetrievalRunResult(name, str(settings["metric"]), selected)
    if layers:
        _run_layers(result, plan, settings, encoder, layers, overwrite, console, progress, scoring)
    else:
        _run_one(result, plan, settings, encoder, overwrite, console, progress, scoring)
    result.sentences_encoded = encoder.sentences_encoded
    result.scores, result.skipped = _records(result.results[0] if not layers else _own_results(result, settings))
    return result


def _check_source_lang(task: str, value: str | None) -> None:
    """The query side of retrieval is the English side of every pair: --source-lang cannot change it."""
    from langsamp_cli.languages import parse_lang_script

    if value is not None and parse_lang_script(str(value)).id != "eng_Latn":
        raise LangsampError(f"--source-lang {value}: {task} always queries with the English side of each pair "
                            "(eng_Latn), another language cannot be chosen; drop the flag")


def plan_sr_b(settings: dict, flags: dict):
    """SR-B pairs: official pair files (data_dir) or whole Bibles (bible/bible_dir + english_bible)."""
    from langsamp_cli.data.parallel import check_data_dir
    from langsamp_cli.tasks import requested_languages
    from langsamp_cli.tasks.retrieval import plan_sr_b_bibles, plan_sr_b_pairs

    requested, any_script = requested_languages(settings.get("languages"))
    named = settings.get("bible") or []
    if not (settings.get("bible_dir") or settings.get("english_bible") or named):
        return plan_sr_b_pairs(check_data_dir(settings.get("data_dir")), requested, int(settings["pairs"]), any_script)
    if flags.get("data_dir") is not None:
        raise LangsampError("use either --data-dir (pair files) or --bible/--bible-dir + --english-bible "
                            "(whole Bibles), not both")
    if not settings.get("english_bible"):
        raise LangsampError("--bible/--bible-dir need --english-bible PATH (the English whole Bible to pair with)")
    if not (settings.get("bible_dir") or named):
        raise LangsampError("--english-bible needs target Bibles: --bible FILE (repeatable) or --bible-dir DIR")
    bibles = check_data_dir(settings.get("bible_dir"), "--bible-dir") if settings.get("bible_dir") else None
    return plan_sr_b_bibles(bibles, Path(settings["english_bible"]), requested, int(settings["pairs"]),
                            bible_files=[Path(p) for p in named], any_script=any_script)


def plan_sr_t(settings: dict, flags: dict):
    """SR-T pairs: Tatoeba files (ours or the LASER layout) under data_dir."""
    from langsamp_cli.data.parallel import check_data_dir
    from langsamp_cli.tasks import requested_languages
    from langsamp_cli.tasks.retrieval import plan_sr_t as plan

    requested, any_script = requested_languages(settings.get("languages"))
    return plan(check_data_dir(settings.get("data_dir")), requested, int(settings["pairs"]), any_script)


def _check_inputs(spec: registry.TaskSpec, settings: dict) -> None:
    """A data input of another retrieval task (``pivots`` of the all-pairs task, ``bible`` of SR-B) set for
    this one would be ignored: an error instead."""
    others = {key for other in registry.all_tasks() if other.type == spec.type for key in other.inputs}
    unused = sorted(key for key in others - set(spec.inputs) if settings.get(key) is not None)
    if unused:
        users = [other.name for other in registry.all_tasks() if set(unused) & set(other.inputs)]
        raise LangsampError(f"{spec.name}: {', '.join(unused)} only act(s) on {', '.join(users)}; remove "
                            f"{'it' if len(unused) == 1 else 'them'} from the config or the call")


def _scoring(settings: dict, flags: dict) -> Scoring:
    """The run's Scoring; the scoring keys leave ``settings`` and only those that change a number come back
    (none for cosine, so cosine units keep the settings hash of plain runs). A k flag that cannot act is an error."""
    scoring = scoring_from(settings)
    for method in SCORINGS[1:]:
        if flags.get(f"{method}_k") is not None and scoring.method != method:
            raise LangsampError(f"--{method}-k {flags[f'{method}_k']} only acts with --scoring {method} "
                                f"(this run scores by {scoring.method}); drop it or pass --scoring {method}")
    for key in ("scoring", *(f"{method}_k" for method in SCORINGS[1:])):
        settings.pop(key, None)
    settings.update(scoring.record())
    return scoring


def _typed(settings: dict) -> RetrievalSettings:
    """The settings object (the scoring keys, already turned into a Scoring, stay out of it)."""
    return RetrievalSettings(**{k: v for k, v in settings.items() if k not in ("scoring", "margin_k", "csls_k")})


def checked_model(settings: RetrievalSettings, explicit_max_length: bool) -> RetrievalSettings:
    """``settings`` with the model resolved and max_length fitted to it (see :func:`_check_model`)."""
    from dataclasses import asdict, replace

    values = asdict(settings)
    _check_model(values, explicit_max_length)
    return replace(settings, model=values["model"], max_length=values["max_length"])


def encoder_for(settings: RetrievalSettings, layers: list[int] | None, cache_dir: Path | None, no_cache: bool):
    """The SentenceEncoder of a run (deep enough for every layer in ``layers``)."""
    from dataclasses import asdict

    return _encoder(asdict(settings), layers, cache_dir, no_cache)


def requested_layers(settings: RetrievalSettings) -> list[int] | None:
    """The layers of a ``--layers`` run (sorted), or None for a single-layer run."""
    return _requested_layers(vars(settings), settings.layers)


def _check_model(settings: dict, explicit_max_length: bool) -> None:
    """After the cheap checks (flags, data, languages), before the encoder loads: is --model there, what fits it."""
    from langsamp_cli.model_source import require_tokenizer, resolve_model
    from langsamp_cli.tasks import fit_max_length

    settings["model"] = resolve_model(str(settings["model"]))
    require_tokenizer(settings["model"])
    fit_max_length(settings, Console(stderr=True, emoji=False), explicit=explicit_max_length)


def _requested_layers(settings: dict, spec) -> list[int] | None:
    """The layers of a ``--layers`` run (sorted), or None for the ordinary single-layer run."""
    if spec is None or spec == "":
        return None
    from langsamp_cli.encode import model_depth, parse_layers

    return parse_layers(spec, model_depth(str(settings["model"])))


def _encoder(settings: dict, layers: list[int] | None, cache_dir: Path | None, no_cache: bool):
    from langsamp_cli.encode import SentenceEncoder  # heavy (torch): after every cheap check

    return SentenceEncoder(
        settings["model"],
        layer=max(layers) if layers else int(settings["layer"]),
        max_length=int(settings["max_length"]),
        batch_size=int(settings["batch_size"]),
        exclude_special_tokens=bool(settings["exclude_special_tokens"]),
        device=settings.get("device"),
        cache_dir=cache_dir,
        use_cache=not no_cache,
        dtype=str(settings["dtype"]),
    )


def _run_one(result: RetrievalRunResult, plan, settings: dict, encoder, overwrite: bool, console: Console,
             progress: bool, scoring: Scoring) -> None:
    from langsamp_cli.results import ResultStore
    from langsamp_cli.tasks.retrieval import run_retrieval

    config = {**settings, "pooling": encoder.pooling, "encoder_key": encoder.fingerprint}
    store = ResultStore(Path(settings["output_dir"]), result.task, settings["model"], None, config, result.metric,
                        overwrite=overwrite, fingerprint=encoder.model_fingerprint)
    summary = run_retrieval(plan, encoder, store, result.languages, console=console, progress=progress,
                            ks=[int(k) for k in settings["top_k"]], scoring=scoring)
    result.newly_scored, result.newly_skipped = list(summary.scored), list(summary.skipped)
    result.already_done = list(summary.already_done)
    result.results = [Path(store.finalize())]


def _run_layers(result: RetrievalRunResult, plan, settings: dict, encoder, layers: list[int], overwrite: bool,
                console: Console, progress: bool, scoring: Scoring) -> None:
    """One result set per layer: the task's own layer under ``task`` (exactly what a plain run writes),
    every other layer k under ``task@layer<k>``; each unit's settings carry its layer."""
    from langsamp_cli.results import ResultStore, layer_task_name, load_results
    from langsamp_cli.tasks.retrieval import run_retrieval_layers

    own_layer = int(settings["layer"])
    stores, names = {}, {}
    for k in layers:
        config = {**settings, "layer": k, "pooling": encoder.pooling, "encoder_key": encoder.fingerprint_for(k)}
        names[k] = result.task if k == own_layer else layer_task_name(result.task, k)
        stores[k] = ResultStore(Path(settings["output_dir"]), names[k], settings["model"], None, config,
                                result.metric, overwrite=overwrite, fingerprint=encoder.model_fingerprint)
    summaries = run_retrieval_layers(plan, encoder, stores, result.languages, console=console, progress=progress,
                                     ks=[int(k) for k in settings["top_k"]], scoring=scoring)
    for k in layers:
        path = Path(stores[k].finalize())
        records = load_results(path)
        values = [r["metrics"][result.metric] for r in records["languages"] if result.metric in r.get("metrics", {})]
        floor = records["groups"].get("all", {}).get("floor", {}).get(result.metric)
        result.layers.append(LayerResult(k, names[k], sum(values) / len(values) if values else None, len(values),
                                         Path(stores[k].run_dir), path, floor))
        result.results.append(path)
    result.newly_scored = sorted({name for summary in summaries.values() for name in summary.scored})
    result.newly_skipped = sorted({name for summary in summaries.values() for name in summary.skipped})


def _own_results(result: RetrievalRunResult, settings: dict) -> Path | None:
    """The results.json of the task's own layer in a ``--layers`` run (None when it was not among them)."""
    own = [layer.results for layer in result.layers if layer.layer == int(settings["layer"])]
    return own[0] if own else None


def _records(results: Path | None) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """(language -> metrics, language -> why skipped) from a results.json."""
    from langsamp_cli.results import load_results

    if results is None:
        return {}, {}
    loaded = load_results(results)
    scores = {r["lang_script"]: dict(r.get("metrics", {})) for r in loaded["languages"]}
    return scores, {r["lang_script"]: str(r.get("reason", "")) for r in loaded["skipped"]}
