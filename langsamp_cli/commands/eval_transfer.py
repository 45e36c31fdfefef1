"""`langsamp eval taxi1500|sib200|ner|pos`: zero-shot crosslingual transfer (flags -> library).

Values come from, in rising priority: the built-in defaults (``tasks/transfer_run.py``, the paper's
Appendix A), the task YAML (``langsamp_cli/task_configs/<task>.yaml``, then ``--config``), then the flags.
The run itself is :func:`langsamp_cli.tasks.transfer_run.run_transfer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from langsamp_cli.tasks.transfer_run import DEFAULTS  # noqa: F401 - the defaults' one home, re-exported

_MODEL = typer.Option(None, "--model", "-m", help="Encoder: our checkpoint dir, any HF model name or path.")
_DATA = typer.Option(None, "--data-dir", help="Dataset folder (see the task's help for the layout).")
_LANGS = typer.Option(None, "--languages", help="Target languages: comma list or a file (default: all found).")
_SOURCE = typer.Option(None, "--source-lang", help="Language to fine-tune on (default eng_Latn); needs train + dev.")
_SEEDS = typer.Option(None, "--seeds", help="Seeds, e.g. 1,2,3 or 1-5 (default 1-5, the paper's five seeds); one result set per seed.")
_EPOCHS = typer.Option(None, "--epochs", help="Maximum epochs (default 40 classification / 10 tagging).")
_LR = typer.Option(None, "--lr", help="AdamW learning rate (default 1e-5 classification / 2e-5 tagging).")
_BATCH = typer.Option(None, "--batch-size", help="Training batch size (default 8).")
_ACCUM = typer.Option(None, "--grad-accum", help="Gradient accumulation steps (default 2 classification / 4 tagging).")
_MAXTRAIN = typer.Option(None, "--max-train-samples", help="Use a seeded sample of N training examples, stratified "
                         "by label (quick runs; recorded in the results).")
_MAXEVAL = typer.Option(None, "--max-eval-samples", help="Use a seeded sample of N dev and N test examples, "
                        "stratified by label (quick runs; recorded in each result).")
_MAXLEN = typer.Option(None, "--max-length", help="Tokens per example incl. special tokens (default: the official "
                       "value, SIB-200 160, Taxi1500 100, NER/POS 256).")
_PATIENCE = typer.Option(None, "--patience", help="Stop after N epochs without a better source dev score.")
_OUT = typer.Option(None, "--output-dir", help="Results root (default results/).")
_OVERWRITE = typer.Option(False, "--overwrite", help="Re-train and re-score units that already have results.")
_SHARD = typer.Option(None, "--shard", help="Run shard i of N ('i/N', 0-based) of the target languages.")
_CONFIG = typer.Option(None, "--config", help="Task YAML over the built-in one (langsamp_cli/task_configs/<task>.yaml); flags override both.")
_DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: cuda when available).")
_PRECISION = typer.Option(None, "--mixed-precision", help="auto (bf16, or fp16 on GPUs without bf16; fp32 on CPU), "
                          "no, bf16 (also on CPU), fp16 (CUDA only).")
_TRAINFILE = typer.Option(None, "--train-file", help="Source training file instead of the source language's train split.")
_DEVFILE = typer.Option(None, "--dev-file", help="Source dev file instead of the source language's dev split.")
_KEEP = typer.Option(None, "--keep-model/--no-keep-model",
                     help="Keep each seed's fine-tuned model under the results so reruns and shards reuse it (default).")


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    from langsamp_cli.tasks import registry

    commands = {task_name(command): command for command in (taxi1500, sib200, ner, pos)}
    for name in registry.transfer_names():  # Typer takes the help from each function's docstring
        eval_app.command(name)(commands[name])


def task_name(command) -> str:
    """The task a command function runs: its name, with - for _ (``sr_b`` -> ``sr-b``)."""
    return command.__name__.replace("_", "-")


def taxi1500(
    model: Optional[str] = _MODEL, data_dir: Optional[Path] = _DATA, languages: Optional[str] = _LANGS,
    bible: Optional[list[Path]] = typer.Option(None, "--bible", metavar="<path>", help="A target Bible (verse-id TSV or CES XML); repeatable."),
    bible_dir: Optional[Path] = typer.Option(None, "--bible-dir", help="A folder of target Bibles (TSV / CES XML)."),
    source_lang: Optional[str] = _SOURCE, seeds: Optional[str] = _SEEDS, epochs: Optional[int] = _EPOCHS,
    lr: Optional[float] = _LR, batch_size: Optional[int] = _BATCH, grad_accum: Optional[int] = _ACCUM,
    max_train_samples: Optional[int] = _MAXTRAIN, max_eval_samples: Optional[int] = _MAXEVAL,
    max_length: Optional[int] = _MAXLEN, patience: Optional[int] = _PATIENCE, output_dir: Optional[Path] = _OUT,
    overwrite: bool = _OVERWRITE, shard: Optional[str] = _SHARD, config: Optional[Path] = _CONFIG,
    device: Optional[str] = _DEVICE, mixed_precision: Optional[str] = _PRECISION, keep_model: Optional[bool] = _KEEP,
) -> None:
    """Taxi1500: 6-class Bible verse topics (macro-F1).

    --data-dir holds verse_id<TAB>label<TAB>text files without a header, in the folder or below:
    eng_{train,dev,test}.tsv (the source) and <lang>_test.tsv per target language.

    Target test sets also come from any Bible (--bible / --bible-dir), joined on the official
    English test verse ids; each language's coverage is printed and recorded.
    """
    flags = dict(locals())
    bibles, folder = flags.pop("bible"), flags.pop("bible_dir")
    _run(task_name(taxi1500), flags, bibles, folder)


def sib200(
    model: Optional[str] = _MODEL, data_dir: Optional[Path] = _DATA, languages: Optional[str] = _LANGS,
    source_lang: Optional[str] = _SOURCE, seeds: Optional[str] = _SEEDS, epochs: Optional[int] = _EPOCHS,
    lr: Optional[float] = _LR, batch_size: Optional[int] = _BATCH, grad_accum: Optional[int] = _ACCUM,
    max_train_samples: Optional[int] = _MAXTRAIN, max_eval_samples: Optional[int] = _MAXEVAL,
    max_length: Optional[int] = _MAXLEN, patience: Optional[int] = _PATIENCE, output_dir: Optional[Path] = _OUT,
    overwrite: bool = _OVERWRITE, shard: Optional[str] = _SHARD, config: Optional[Path] = _CONFIG,
    device: Optional[str] = _DEVICE, mixed_precision: Optional[str] = _PRECISION, keep_model: Optional[bool] = _KEEP,
) -> None:
    """SIB-200: 7-class topics; data-dir holds <lang_Script>/{train,dev,test}.tsv (macro-F1)."""
    _run(task_name(sib200), dict(locals()))


def ner(
    model: Optional[str] = _MODEL, data_dir: Optional[Path] = _DATA, languages: Optional[str] = _LANGS,
    source_lang: Optional[str] = _SOURCE, train_file: Optional[Path] = _TRAINFILE, dev_file: Optional[Path] = _DEVFILE,
    seeds: Optional[str] = _SEEDS, epochs: Optional[int] = _EPOCHS,
    lr: Optional[float] = _LR, batch_size: Optional[int] = _BATCH, grad_accum: Optional[int] = _ACCUM,
    max_train_samples: Optional[int] = _MAXTRAIN, max_eval_samples: Optional[int] = _MAXEVAL,
    max_length: Optional[int] = _MAXLEN, patience: Optional[int] = _PATIENCE, output_dir: Optional[Path] = _OUT,
    overwrite: bool = _OVERWRITE, shard: Optional[str] = _SHARD, config: Optional[Path] = _CONFIG,
    device: Optional[str] = _DEVICE, mixed_precision: Optional[str] = _PRECISION, keep_model: Optional[bool] = _KEEP,
) -> None:
    """NER (PER/ORG/LOC, seqeval F1): UNER *.iob2, MasakhaNER <lang>/{dev,test}.txt or XTREME <lang>/{train,dev,test}."""
    _run(task_name(ner), dict(locals()))


def pos(
    model: Optional[str] = _MODEL, data_dir: Optional[Path] = _DATA, languages: Optional[str] = _LANGS,
    source_lang: Optional[str] = _SOURCE, train_file: Optional[Path] = _TRAINFILE, dev_file: Optional[Path] = _DEVFILE,
    seeds: Optional[str] = _SEEDS, epochs: Optional[int] = _EPOCHS,
    lr: Optional[float] = _LR, batch_size: Optional[int] = _BATCH, grad_accum: Optional[int] = _ACCUM,
    max_train_samples: Optional[int] = _MAXTRAIN, max_eval_samples: Optional[int] = _MAXEVAL,
    max_length: Optional[int] = _MAXLEN, patience: Optional[int] = _PATIENCE, output_dir: Optional[Path] = _OUT,
    overwrite: bool = _OVERWRITE, shard: Optional[str] = _SHARD, config: Optional[Path] = _CONFIG,
    device: Optional[str] = _DEVICE, mixed_precision: Optional[str] = _PRECISION, keep_model: Optional[bool] = _KEEP,
) -> None:
    """POS (17 UPOS tags, seqeval F1 + accuracy): UD treebanks *-ud-{train,dev,test}.conllu."""
    _run(task_name(pos), dict(locals()))


# ---------------------------------------------------------------------------- shared driver
def _run(task: str, flags: dict, bibles: list[Path] | None = None, bible_dir: Path | None = None) -> None:
    from langsamp_cli.results import print_results
    from langsamp_cli.tasks.transfer_run import run_transfer

    overwrite, shard, config = flags.pop("overwrite"), flags.pop("shard"), flags.pop("config")
    console = Console(stderr=True, emoji=False)
    result = run_transfer(task, flags, config=config, overwrite=overwrite, shard=shard, bibles=bibles,
                          bible_dir=bible_dir, console=console)
    console.print(result.describe(), highlight=False)
    for results in result.results:
        print_results(results)
