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
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimiser steps in total."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Chunks per device per micro-batch."),
    grad_accum: Optional[int] = typer.Option(None, "--grad-accum", help="Micro-batches per optimiser step."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (linear warmup, then linear decay)."),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Linear warmup steps."),
    max_seq_len: Optional[int] = typer.Option(None, "--max-seq-len", help="Tokens per chunk, <s> </s> included."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Sampling temperature: p_i ∝ lines_i ** alpha."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of init, sampling and masking (rank r adds r)."),
    save_every: Optional[int] = typer.Option(None, "--save-every", help="Checkpoint every N steps."),
    keep_last: Optional[int] = typer.Option(None, "--keep-last", help="Keep only the last K checkpoints."),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="Log to log.jsonl every N steps."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Held-out MLM loss every N steps (0 = off)."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Early stop after N evaluations without "
                                           "improvement (0 = never); the best model goes to best/."),
    mixed_precision: Optional[str] = typer.Option(None, "--mixed-precision", help="no | bf16 | fp16 (GPU only)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (logs still go to log.jsonl)."),
) -> None:
    """Pretrain a LangSAMP model: MLM with language and script embeddings before the LM head."""
    from langsamp_cli.languages import parse_language_list
    from langsamp_cli.pretrain.config import build_config
    from langsamp_cli.pretrain.trainer import language_counts_table, pretrain

    overrides = dict(
        corpus=str(corpus) if corpus else None, model=model, from_scratch=from_scratch, tokenizer=tokenizer,
        vocab_size=vocab_size, output_dir=str(output_dir) if output_dir else None, lang_emb=lang_emb,
        script_emb=script_emb, lang_map=str(lang_map) if lang_map else None,
        languages=parse_language_list(languages) if languages else None, max_steps=max_steps,
        batch_size=batch_size, grad_accum=grad_accum, lr=lr, warmup_steps=warmup_steps, max_seq_len=max_seq_len,
        alpha=alpha, seed=seed, save_every=save_every, keep_last=keep_last, log_every=log_every,
        eval_every=eval_every, patience=patience, mixed_precision=mixed_precision,
    )
    settings = build_config(preset, config, overrides)
    err = Console(stderr=True)
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
    out.print(f"  langsamp eval sr-t --model {result.final_dir} --data-dir DATA/tatoeba/v1", highlight=False)
    out.print(f"  langsamp plot-embeddings --model {result.final_dir}", highlight=False)
