"""`langsamp pretrain`: LangSAMP masked-LM pretraining (flags -> PretrainConfig -> trainer.pretrain).

With no arguments it trains a tiny model from scratch on the bundled demo corpus (a few minutes on 2 CPU
cores). The same command runs under ``accelerate launch`` or ``torchrun`` for multi-GPU / multi-node training.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from langsamp_cli.pretrain.config import PRESETS


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.command("pretrain")(pretrain_command)


def pretrain_command(
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Directory with one xxx_Scrp text file (.txt/.gz) or "
                                          "folder per language-script, one sentence per line (default: bundled demo)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Initial model: a checkpoint dir or hub name to "
                                        "continue pretraining, or a config (`tiny`, or any name with --from-scratch)."),
    from_scratch: Optional[bool] = typer.Option(None, "--from-scratch/--continue", help="Random init from the "
                                                "model's config (and a tokenizer trained on the corpus) or continue "
                                                "from its weights (default: from scratch only for `tiny`)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="From scratch: use this tokenizer instead of "
                                            "training a Unigram one on the corpus."),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size",
                                             help="Pieces of the tokenizer trained on the corpus."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Run directory (demo: "
                                              "runs/pretrain-demo)."),
    preset: str = typer.Option("demo", "--preset", help=f"Base settings: {' | '.join(PRESETS)} (flags and --config "
                               "override them)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML of settings over the preset; flags win."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last complete checkpoint in --output-dir."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Delete an existing run in --output-dir and start again."),
    lang_emb: Optional[bool] = typer.Option(None, "--lang-emb/--no-lang-emb", help="Language embeddings (default on)."),
    script_emb: Optional[bool] = typer.Option(None, "--script-emb/--no-script-emb",
                                              help="Script embeddings (default on)."),
    lang_map: Optional[Path] = typer.Option(None, "--lang-map", help="Official full_dicts.pkl/.json: reuse its "
                                            "language/script ids (continuing from the official checkpoint)."),
    languages: Optional[str] = typer.Option(None, "--languages", help="Train on these language-scripts only "
                                            "(comma list or file)."),
    init_new_languages: Optional[str] = typer.Option(None, "--init-new-languages", help="Rows of corpus "
                                                     "languages/scripts the initial checkpoint lacks: random "
                                                     "(default) | donor (mean of the 3 typologically closest "
                                                     "checkpoint languages, URIEL) | mean (mean of the checkpoint "
                                                     "languages of the same script); new scripts: mean of the "
                                                     "checkpoint's script rows."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimiser steps in total."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Chunks per device per micro-batch."),
    grad_accum: Optional[int] = typer.Option(None, "--grad-accum", help="Micro-batches per optimiser step."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (linear warmup, then linear decay)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Linear warmup steps."),
    max_seq_len: Optional[int] = typer.Option(None, "--max-seq-len", help="Tokens per chunk, <s> </s> included."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Sampling temperature: p_i ∝ lines_i ** alpha."),
    chunking: Optional[str] = typer.Option(None, "--chunking", help="langsamp (default): one <s> ... </s> around "
                                           "each chunk, random replacements from ordinary tokens; official: every "
                                           "sentence in <s> ... </s>, chunks cut across them, replacements from "
                                           "the whole vocabulary (the Glot500/LangSAMP pipeline)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of init, sampling and masking (rank r adds r)."),
    save_every: Optional[int] = typer.Option(None, "--save-every", help="Checkpoint every N steps."),
    keep_last: Optional[int] = typer.Option(None, "--keep-last", help="Keep only the last K checkpoints."),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="Log to log.jsonl every N steps."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Held-out MLM loss every N steps (0 = off)."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Early stop after N evaluations without "
                                           "improvement (0 = never); the best model goes to best/."),
    mixed_precision: Optional[str] = typer.Option(None, "--mixed-precision", help="no | bf16 | fp16 (GPU only)."),
    compile_model: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the model "
                                                 "(off by default; compiling takes minutes, pays off on long GPU "
                                                 "runs)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (logs still go to log.jsonl)."),
) -> None:
    """Pretrain a LangSAMP model: MLM with language and script embeddings before the LM head."""
    from langsamp_cli.languages import parse_language_list
    from langsamp_cli.pretrain.config import build_config

    overrides = dict(
        corpus=str(corpus) if corpus else None, model=model, from_scratch=from_scratch, tokenizer=tokenizer,
        vocab_size=vocab_size, output_dir=str(output_dir) if output_dir else None, lang_emb=lang_emb,
        script_emb=script_emb, lang_map=str(lang_map) if lang_map else None,
        init_new_languages=init_new_languages,
        languages=parse_language_list(languages) if languages is not None else None, max_steps=max_steps,
        batch_size=batch_size, grad_accum=grad_accum, lr=lr, warmup_steps=warmup_steps, max_seq_len=max_seq_len,
        alpha=alpha, chunking=chunking, seed=seed, save_every=save_every, keep_last=keep_last, log_every=log_every,
        eval_every=eval_every, patience=patience, mixed_precision=mixed_precision, compile=compile_model,
    )
    settings = build_config(preset, config, overrides)
    if not resume:  # a resumed run loads its own checkpoint
        _check_sources(settings)
    from langsamp_cli.pretrain.trainer import language_counts_table, pretrain  # heavy: after the cheap checks

    err = Console(stderr=True, emoji=False)
    started = time.time()
    result = pretrain(settings, resume=resume, overwrite=overwrite, console=err, progress=not no_progress)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return
    table = language_counts_table(result.output_dir / "log.jsonl")
    if table is not None:
        err.print(table)
    out = Console()
    loss = f", last loss {result.last_loss:.3f}" if result.last_loss is not None else ""
    out.print(f"pretrained {result.steps} steps ({result.tokens_seen:,} tokens) in {time.time() - started:.0f} s"
              f"{loss}{'; stopped early' if result.stopped_early else ''}", highlight=False)
    if result.final_dir is None:
        out.print(f"stopped before the end: continue with --resume --output-dir {result.output_dir}", highlight=False)
        return
    out.print(f"final model: {result.final_dir}", highlight=False)
    if result.best_dir is not None:
        out.print(f"best held-out model: {result.best_dir}", highlight=False)
    out.print(f"log: {result.output_dir / 'log.jsonl'}", highlight=False)
    out.print("next:", highlight=False)
    for line in next_steps(result.final_dir, result.corpus_languages):
        out.print(f"  {line}", highlight=False, soft_wrap=True)


def _check_sources(settings) -> None:
    """Cheap checks before the trainer loads anything: the corpus folder, then the model and tokenizer names."""
    from langsamp_cli.errors import LangsampError
    from langsamp_cli.model_source import resolve_model
    from langsamp_cli.pretrain.config import TINY_MODEL

    if settings.corpus and not Path(settings.corpus).expanduser().is_dir():
        raise LangsampError(f"--corpus {settings.corpus}: no such directory; pass a folder with one xxx_Scrp text "
                            "file or folder per language, or leave --corpus out for the bundled demo corpus")
    if settings.model != TINY_MODEL:
        settings.model = resolve_model(settings.model)
    if settings.tokenizer:
        settings.tokenizer = resolve_model(settings.tokenizer, flag="--tokenizer")


SHARED_TATOEBA = Path("../shared/data/tatoeba/v1")


def next_steps(final_dir: Path, corpus_languages: list[str]) -> list[str]:
    """Commands that run as printed: the bundled SR-T sample always, real Tatoeba data when it sits beside us."""
    from langsamp_cli.task_config import bundled_dir
    from langsamp_cli.tasks.registry import SAMPLE_TASK

    sample = bundled_dir("samples") / SAMPLE_TASK
    sample_langs = sorted(p.suffix[1:] for p in sample.glob("tatoeba.*-eng_Latn.*") if p.suffix != ".eng_Latn")
    langs = [lang for lang in sample_langs if not corpus_languages or lang in corpus_languages] or sample_langs
    steps = [f"langsamp eval sr-t --model {final_dir} --data-dir {sample} --languages {','.join(langs)}"
             "   # bundled smoke sample (UI strings), not Tatoeba"]
    if SHARED_TATOEBA.is_dir():
        steps.append(f"langsamp eval sr-t --model {final_dir} --data-dir {SHARED_TATOEBA} "
                     "--languages fra_Latn,rus_Cyrl,jpn_Jpan")
    else:
        steps.append("# real Tatoeba: the LASER tatoeba/v1 files (README, 'Data formats'), then "
                     f"langsamp eval sr-t --model {final_dir} --data-dir PATH/TO/tatoeba/v1")
    steps.append(f"langsamp plot-embeddings --model {final_dir}")
    return steps
