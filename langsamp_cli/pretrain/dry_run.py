"""`langsamp pretrain --dry-run`: every resolved setting with where it came from, and the inputs checked.

Nothing is trained or written. Each input (corpus, model, tokenizer, id map, output folder) is checked the way
the run would check it, and every failure is listed rather than only the first, so one dry run on a login node
tells everything that would stop the job on the cluster.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langsamp_cli.errors import LangsampError
from langsamp_cli.pretrain.config import PRESETS, TINY_MODEL, PretrainConfig, load_yaml_config
from langsamp_cli.settings import show_value


@dataclass
class Check:
    what: str
    ok: bool
    detail: str


@dataclass
class DryRun:
    settings: list[tuple[str, str, str]]   # (setting, value, where it came from)
    checks: list[Check]
    plan: list[str]

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]


def dry_run(config: PretrainConfig, preset: str | None, yaml_path: str | Path | None, flags: dict[str, Any],
            resume: bool = False, overwrite: bool = False) -> DryRun:
    """What ``pretrain`` with these settings would do (see the module doc)."""
    sources = setting_sources(preset, yaml_path, flags)
    settings = [(f.name, show_value(getattr(config, f.name)), sources.get(f.name, "default"))
                for f in dataclasses.fields(PretrainConfig)]
    checks = [_check("corpus", lambda: _corpus(config)), _check("model", lambda: _model(config)),
              _check("tokenizer", lambda: _tokenizer(config)), _check("output", lambda: _output(config, resume,
                                                                                                  overwrite))]
    if config.lang_map:
        checks.append(_check("lang_map", lambda: _lang_map(config.lang_map)))
    return DryRun(settings, checks, plan(config))


def setting_sources(preset: str | None, yaml_path: str | Path | None, flags: dict[str, Any]) -> dict[str, str]:
    sources = {key: f"preset {preset}" for key in (PRESETS.get(preset or "", {}))}
    if yaml_path is not None:
        sources.update({key: f"--config {yaml_path}" for key in load_yaml_config(yaml_path)})
    sources.update({key: "flag" for key, value in flags.items() if value is not None})
    return sources


def plan(config: PretrainConfig) -> list[str]:
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    per_step = config.batch_size * config.grad_accum * world
    lines = [f"{config.max_steps:,} optimiser steps of {config.batch_size} x {config.grad_accum} x {world} "
             f"process(es) = {per_step:,} chunks of {config.max_seq_len} tokens "
             f"({per_step * config.max_seq_len:,} tokens per step; "
             f"{_count(per_step * config.max_seq_len * config.max_steps)} tokens in all)"]
    if config.is_from_scratch:
        source = config.tokenizer or f"a {config.vocab_size:,}-piece Unigram tokenizer trained on the corpus"
        lines.append(f"random initialisation from the config of {config.model}; tokenizer: {source}")
    elif config.tokenizer:
        lines.append(f"continue {config.model}'s weights with the tokenizer {config.tokenizer}: rows matched by "
                     f"piece, new pieces initialised by --init-new-tokens {config.init_new_tokens or 'random'}")
    else:
        lines.append(f"continue {config.model}'s weights with its own tokenizer")
    lines.append(f"variant {config.variant}; lr {config.lr:g} (warmup {config.warmup_steps:,} steps, linear decay), "
                 f"{'fp32' if config.mixed_precision == 'no' else config.mixed_precision} precision; a checkpoint every {config.save_every:,} steps into "
                 f"{config.output_dir}")
    return lines


def _count(number: int) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if number >= size:
            return f"{number / size:,.2f}{unit}"
    return str(number)


def _check(what: str, run) -> Check:
    try:
        return Check(what, True, run())
    except LangsampError as err:
        return Check(what, False, str(err))


def _corpus(config: PretrainConfig) -> str:
    from langsamp_cli.pretrain.corpus import scan_corpus
    from langsamp_cli.pretrain.run_dir import default_corpus_dir

    root = config.corpus or default_corpus_dir()
    if not Path(root).expanduser().is_dir():
        raise LangsampError(f"--corpus {root}: no such directory")
    corpus = scan_corpus(Path(root).expanduser(), config.languages)
    lines = sum(source.lines for source in corpus.sources.values())
    where = root if config.corpus else f"the bundled demo corpus ({root})"
    return f"{where}: {len(corpus.sources)} language-scripts, {lines:,} lines" + (
        f"; skipped: {', '.join(corpus.skipped)}" if corpus.skipped else "")


def _model(config: PretrainConfig) -> str:
    from langsamp_cli.model_source import resolve_model

    if config.model == TINY_MODEL:
        return "tiny: an 8-layer, 64-wide XLM-R config built here"
    return _where(resolve_model(config.model))


def _tokenizer(config: PretrainConfig) -> str:
    from langsamp_cli.model_source import resolve_model

    if not config.tokenizer:
        return "the model's own" if not config.is_from_scratch else "trained on the corpus"
    return _where(resolve_model(config.tokenizer, flag="--tokenizer", needs_config=False))


def _where(resolved: str) -> str:
    return f"{resolved} ({'local directory' if Path(resolved).is_dir() else 'Hugging Face hub name'})"


def _lang_map(path: str) -> str:
    from langsamp_cli.official_format import read_id_map

    lang2id, script2id = read_id_map(path)
    return f"{path}: {len(lang2id)} languages, {len(script2id)} scripts"


def _output(config: PretrainConfig, resume: bool, overwrite: bool) -> str:
    from langsamp_cli.pretrain.run_dir import find_resume_point

    out = Path(config.output_dir)
    checkpoint, _ = find_resume_point(out, resume, overwrite, lambda *args, **kwargs: None)
    if checkpoint is not None:
        return f"{out}: would resume from {checkpoint.name}"
    if out.exists() and any(out.iterdir()):
        return f"{out}: would be {'overwritten' if overwrite else 'started again'}"
    return f"{out}: new"
