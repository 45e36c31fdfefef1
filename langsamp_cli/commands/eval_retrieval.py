"""`langsamp eval sr-b` and `langsamp eval sr-t`: sentence retrieval against English (flags -> library)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from langsamp_cli.errors import LangsampError

DEFAULTS = {
    "layer": 8,
    "max_length": 512,
    "batch_size": 32,
    "exclude_special_tokens": False,
    "output_dir": "results",
    "pairs": 1000,
    "top_k": [1, 5, 10],
    "metric": "acc@10",
    "dtype": "float32",
    "device": None,
}

_MODEL = typer.Option(None, "--model", "-m", help="Encoder: our checkpoint dir, any HF model name or path.")
_LANGUAGES = typer.Option(None, "--languages", help="Comma list or a file of language ids (default: all found).")
_LAYER = typer.Option(None, "--layer", help="hidden_states index: 0 = embeddings, 8 = output of block 8 (default 8).")
_LAYERS = typer.Option(None, "--layers", help="Score several layers from one forward pass: 'all' (0..depth) or "
                       "a comma list such as 4,6,8. The task's layer (8) is filed as usual, layer k under task "
                       "'<task>@layer<k>'; `langsamp report --by-layer` plots them.")
_BATCH = typer.Option(None, "--batch-size", help="Full-length sentences per forward pass (default 32); shorter "
                      "ones fill the same token budget (batch-size x max-length on a GPU, x 128 on CPU).")
_MAXLEN = typer.Option(None, "--max-length", help="Tokens per sentence incl. <s> </s> (default 512).")
_OUT = typer.Option(None, "--output-dir", help="Results root (default results/).")
_NOCACHE = typer.Option(False, "--no-cache", help="Neither read nor write the embedding cache.")
_CACHEDIR = typer.Option(None, "--cache-dir", help="Embedding cache (default $LANGSAMP_CACHE or ~/.cache/langsamp/embeddings).")
_OVERWRITE = typer.Option(False, "--overwrite", help="Recompute languages that already have results.")
_SHARD = typer.Option(None, "--shard", help="Run only shard i of N ('i/N', 0-based) of the languages.")
_PAIRS = typer.Option(None, "--pairs", help="At most N pairs per language, the first N (default 1000).")
_PAIRS_SR_B = typer.Option(None, "--pairs", help="At most N pairs per language: the first N (default 1000); with "
                           "--bible/--bible-dir the first N verse ids both Bibles share.")
_CONFIG = typer.Option(None, "--config", help="Task YAML over the built-in one (langsamp_cli/task_configs/<task>.yaml); "
                       "flags override both.")
_EXCLUDE = typer.Option(None, "--exclude-special-tokens/--include-special-tokens",
                        help="Leave <s> and </s> out of the mean (official default: included).")
_DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: cuda when available).")
_DTYPE = typer.Option(None, "--dtype", help="float32 (default, matches the official numbers), auto, bfloat16, float16 (CUDA only).")


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    eval_app.command("sr-b")(sr_b)
    eval_app.command("sr-t")(sr_t)


def sr_b(
    model: Optional[str] = _MODEL,
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Official pair files bible.{lang}-eng_Latn.{lang|eng_Latn}."),
    bible_dir: Optional[Path] = typer.Option(None, "--bible-dir", help="Whole Bibles (verse-id TSV or CES XML) to pair with --english-bible."),
    bible: Optional[list[Path]] = typer.Option(None, "--bible", metavar="<path>", help="A target whole Bible (verse-id TSV or CES XML) to pair with --english-bible; repeatable."),
    english_bible: Optional[Path] = typer.Option(None, "--english-bible", help="English whole Bible (e.g. eng_Latn.KJV.tsv), the query side for --bible / --bible-dir."),
    pairs: Optional[int] = _PAIRS_SR_B,
    languages: Optional[str] = _LANGUAGES,
    layer: Optional[int] = _LAYER,
    layers: Optional[str] = _LAYERS,
    batch_size: Optional[int] = _BATCH,
    max_length: Optional[int] = _MAXLEN,
    output_dir: Optional[Path] = _OUT,
    no_cache: bool = _NOCACHE,
    cache_dir: Optional[Path] = _CACHEDIR,
    overwrite: bool = _OVERWRITE,
    shard: Optional[str] = _SHARD,
    config: Optional[Path] = _CONFIG,
    exclude_special_tokens: Optional[bool] = _EXCLUDE,
    device: Optional[str] = _DEVICE,
    dtype: Optional[str] = _DTYPE,
) -> None:
    """SR-B: Bible verse retrieval, target-language verses searched with English queries (acc@10).

    Data: official pair files (--data-dir), or whole Bibles keyed by verse id (--bible FILE and/or
    --bible-dir, with --english-bible), paired on the first --pairs verse ids both share in
    canonical order.
    """
    flags = _task_flags(locals())
    flags["bible"] = [str(p) for p in bible] if bible else None
    settings = _settings("sr-b", config, flags)
    _run("sr-b", _plan_sr_b(settings, data_dir_flag=data_dir), settings, no_cache, cache_dir, overwrite, shard,
         explicit_max_length=max_length is not None)


def sr_t(
    model: Optional[str] = _MODEL,
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="tatoeba.{lang}-eng_Latn.* or LASER tatoeba.xxx-eng.{xxx,eng} files."),
    pairs: Optional[int] = _PAIRS,
    languages: Optional[str] = _LANGUAGES,
    layer: Optional[int] = _LAYER,
    layers: Optional[str] = _LAYERS,
    batch_size: Optional[int] = _BATCH,
    max_length: Optional[int] = _MAXLEN,
    output_dir: Optional[Path] = _OUT,
    no_cache: bool = _NOCACHE,
    cache_dir: Optional[Path] = _CACHEDIR,
    overwrite: bool = _OVERWRITE,
    shard: Optional[str] = _SHARD,
    config: Optional[Path] = _CONFIG,
    exclude_special_tokens: Optional[bool] = _EXCLUDE,
    device: Optional[str] = _DEVICE,
    dtype: Optional[str] = _DTYPE,
) -> None:
    """SR-T: Tatoeba sentence retrieval, target-language sentences searched with English queries (acc@10)."""
    settings = _settings("sr-t", config, _task_flags(locals()))
    from langsamp_cli.data.parallel import check_data_dir
    from langsamp_cli.tasks.retrieval import plan_sr_t

    requested, any_script = _languages(settings.get("languages"))
    plan = plan_sr_t(check_data_dir(settings.get("data_dir")), requested, int(settings["pairs"]), any_script)
    _run("sr-t", plan, settings, no_cache, cache_dir, overwrite, shard, explicit_max_length=max_length is not None)


def _task_flags(arguments: dict) -> dict:
    """The flags that are task settings (the rest steer this run only)."""
    run_only = {"no_cache", "overwrite", "shard", "config", "cache_dir"}
    return {k: v for k, v in arguments.items() if k not in run_only}


def _plan_sr_b(settings: dict, data_dir_flag: Path | None):
    from langsamp_cli.data.parallel import check_data_dir
    from langsamp_cli.tasks.retrieval import plan_sr_b_bibles, plan_sr_b_pairs

    requested, any_script = _languages(settings.get("languages"))
    named = settings.get("bible") or []
    if not (settings.get("bible_dir") or settings.get("english_bible") or named):
        return plan_sr_b_pairs(check_data_dir(settings.get("data_dir")), requested, int(settings["pairs"]), any_script)
    if data_dir_flag is not None:
        raise LangsampError("use either --data-dir (pair files) or --bible/--bible-dir + --english-bible "
                            "(whole Bibles), not both")
    if not settings.get("english_bible"):
        raise LangsampError("--bible/--bible-dir need --english-bible PATH (the English whole Bible to pair with)")
    if not (settings.get("bible_dir") or named):
        raise LangsampError("--english-bible needs target Bibles: --bible FILE (repeatable) or --bible-dir DIR")
    bibles = check_data_dir(settings.get("bible_dir"), "--bible-dir") if settings.get("bible_dir") else None
    return plan_sr_b_bibles(bibles, Path(settings["english_bible"]), requested, int(settings["pairs"]),
                            bible_files=[Path(p) for p in named], any_script=any_script)


def _settings(task: str, config: Path | None, flags: dict) -> dict:
    """Task YAML (or --config) under the flags that were given, over the built-in defaults."""
    from langsamp_cli.task_config import load_task_config

    overrides = {k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items() if v is not None}
    loaded = load_task_config(task, overrides, config_file=config)
    settings = {**DEFAULTS, **{k: v for k, v in loaded.items() if v is not None}}
    if not settings.get("model"):
        raise LangsampError(f"--model is required for {task}: a checkpoint dir or a Hugging Face model name")
    return settings


def _check_model(settings: dict, explicit_max_length: bool) -> None:
    """After the cheap checks (flags, data, languages), before the encoder loads: is --model there, what fits it."""
    from langsamp_cli.model_source import resolve_model
    from langsamp_cli.tasks import fit_max_length

    settings["model"] = resolve_model(str(settings["model"]))
    fit_max_length(settings, Console(stderr=True, emoji=False), explicit=explicit_max_length)


def _languages(value) -> tuple[list[str] | None, frozenset[str]]:
    """(canonical ids or None for all, the ids given without a script); see tasks.requested_languages."""
    from langsamp_cli.tasks import requested_languages

    return requested_languages(value)


def _run(task: str, plan, settings: dict, no_cache: bool, cache_dir: Path | None, overwrite: bool,
         shard: str | None, explicit_max_length: bool = False) -> None:
    from langsamp_cli.results import ResultStore, parse_shard, print_results, select_shard
    from langsamp_cli.tasks.retrieval import run_retrieval

    console = Console(stderr=True, emoji=False)
    task = str(settings.get("task", task))  # a YAML-defined task files its results under its own name
    selected = select_shard(plan.names(), parse_shard(shard))
    _check_model(settings, explicit_max_length)
    from langsamp_cli.encode import SentenceEncoder  # heavy (torch): after every cheap check

    layer_spec = settings.pop("layers", None)  # not a setting of any one layer's results
    layers = _requested_layers(settings, layer_spec)
    encoder = SentenceEncoder(
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
    if layers:
        _run_layers(task, plan, settings, encoder, layers, selected, overwrite, console)
        return
    config = {**settings, "pooling": encoder.pooling, "encoder_key": encoder.fingerprint}
    store = ResultStore(Path(settings["output_dir"]), task, settings["model"], None, config, str(settings["metric"]),
                        overwrite=overwrite, fingerprint=encoder.model_fingerprint)
    summary = run_retrieval(plan, encoder, store, selected, console=console, progress=sys.stderr.isatty(),
                            ks=[int(k) for k in settings["top_k"]])
    console.print(
        f"{task}: {len(summary.scored)} scored, {len(summary.skipped)} skipped, "
        f"{len(summary.already_done)} already done; {encoder.sentences_encoded} sentences encoded",
        highlight=False,
    )
    print_results(store.finalize())


def _requested_layers(settings: dict, spec) -> list[int] | None:
    """The layers of a ``--layers`` run (sorted), or None for the ordinary single-layer run."""
    if spec is None or spec == "":
        return None
    from langsamp_cli.encode import model_depth, parse_layers

    return parse_layers(spec, model_depth(str(settings["model"])))


def _run_layers(task: str, plan, settings: dict, encoder, layers: list[int], selected: list[str], overwrite: bool,
                console: Console) -> None:
    """One result set per layer: the task's own layer under ``task`` (exactly what a plain run writes),
    every other layer k under ``task@layer<k>``; each unit's settings carry its layer."""
    from langsamp_cli.results import ResultStore, layer_task_name, load_results
    from langsamp_cli.tasks.retrieval import run_retrieval_layers

    own_layer = int(settings["layer"])
    stores = {}
    for k in layers:
        config = {**settings, "layer": k, "pooling": encoder.pooling, "encoder_key": encoder.fingerprint_for(k)}
        name = task if k == own_layer else layer_task_name(task, k)
        stores[k] = ResultStore(Path(settings["output_dir"]), name, settings["model"], None, config,
                                str(settings["metric"]), overwrite=overwrite, fingerprint=encoder.model_fingerprint)
    summaries = run_retrieval_layers(plan, encoder, stores, selected, console=console, progress=sys.stderr.isatty(),
                                     ks=[int(k) for k in settings["top_k"]])
    metric = str(settings["metric"])
    out = Console()
    out.print(f"{task}: {metric} (mean over scored languages) by layer", highlight=False)
    for k in layers:
        results = load_results(stores[k].finalize())
        values = [r["metrics"][metric] for r in results["languages"] if metric in r.get("metrics", {})]
        mean = f"{100 * sum(values) / len(values):.1f}" if values else "-"
        out.print(f"  layer {k:>2}: {mean}  ({len(values)} languages)  {stores[k].run_dir}", highlight=False,
                  soft_wrap=True)
    scored = {name for summary in summaries.values() for name in summary.scored}
    skipped = {name for summary in summaries.values() for name in summary.skipped}
    console.print(f"{task}: {len(layers)} layers; {len(scored)} languages scored, {len(skipped)} skipped; "
                  f"{encoder.sentences_encoded} sentences encoded", highlight=False)
