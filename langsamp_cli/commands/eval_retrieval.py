"""`langsamp eval sr-b` and `langsamp eval sr-t`: sentence retrieval against English (flags -> library)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from langsamp_cli.commands.eval_transfer import task_name
from langsamp_cli.tasks.retrieval_run import DEFAULTS  # noqa: F401 - the defaults' one home, re-exported

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
    from langsamp_cli.tasks import registry

    commands = {task_name(command): command for command in (sr_b, sr_t)}
    for name in registry.retrieval_names():  # Typer takes the help from each function's docstring
        eval_app.command(name)(commands[name])


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
    _run(task_name(sr_b), flags, config, no_cache, cache_dir, overwrite, shard)


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
    _run(task_name(sr_t), _task_flags(locals()), config, no_cache, cache_dir, overwrite, shard)


def _task_flags(arguments: dict) -> dict:
    """The flags that are task settings (the rest steer this run only)."""
    run_only = {"no_cache", "overwrite", "shard", "config", "cache_dir"}
    return {k: v for k, v in arguments.items() if k not in run_only}


def _run(task: str, flags: dict, config: Path | None, no_cache: bool, cache_dir: Path | None, overwrite: bool,
         shard: str | None) -> None:
    from langsamp_cli.results import print_results
    from langsamp_cli.tasks.retrieval_run import run_retrieval_task

    console = Console(stderr=True, emoji=False)
    result = run_retrieval_task(task, flags, config=config, no_cache=no_cache, cache_dir=cache_dir,
                                overwrite=overwrite, shard=shard, console=console)
    if not result.layers:
        console.print(result.describe(), highlight=False)
        print_results(result.results[0])
        return
    out = Console()
    out.print(f"{result.task}: {result.metric} (mean over scored languages) by layer", highlight=False)
    for layer in result.layers:
        mean = "-" if layer.mean is None else f"{100 * layer.mean:.1f}"
        out.print(f"  layer {layer.layer:>2}: {mean}  ({layer.n_languages} languages)  {layer.run_dir}",
                  highlight=False, soft_wrap=True)
    console.print(result.describe(), highlight=False)
