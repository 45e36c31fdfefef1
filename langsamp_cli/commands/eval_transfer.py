"""`langsamp eval taxi1500|sib200|ner|pos`: zero-shot crosslingual transfer (flags -> library).

Values come from, in rising priority: the built-in defaults below (the paper's Appendix A), the
task YAML (``task_configs/<task>.yaml`` or ``--config``), then the flags given.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from langsamp_cli.errors import LangsampError

COMMON = {
    "source_lang": "eng_Latn",
    "seeds": "1",
    "output_dir": "results",
    "patience": None,
    "weight_decay": 0.0,
    "adam_epsilon": 1e-8,
    "max_grad_norm": 1.0,
    "scheduler": "linear",
    "warmup_ratio": 0.0,
    "eval_batch_size": 32,
    "max_length": 256,
    "mixed_precision": "auto",
    "device": None,
    "keep_model": True,
}
CLASSIFICATION = {"lr": 1e-5, "epochs": 40, "batch_size": 8, "grad_accum": 2}
TAGGING = {"lr": 2e-5, "epochs": 10, "batch_size": 8, "grad_accum": 4}
DEFAULTS = {
    "taxi1500": {**COMMON, **CLASSIFICATION,
                 "labels": ["Description", "Faith", "Grace", "Recommendation", "Sin", "Violence"]},
    "sib200": {**COMMON, **CLASSIFICATION,
               "labels": ["entertainment", "geography", "health", "politics", "science/technology", "sports",
                          "travel"]},
    "ner": {**COMMON, **TAGGING, "entity_types": ["PER", "ORG", "LOC"],
            "labels": ["B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O"]},
    "pos": {**COMMON, **TAGGING},  # labels: the 17 UPOS tags (data/conllu.py)
}

_MODEL = typer.Option(None, "--model", "-m", help="Encoder: our checkpoint dir, any HF model name or path.")
_DATA = typer.Option(None, "--data-dir", help="Dataset folder (see the task's help for the layout).")
_LANGS = typer.Option(None, "--languages", help="Target languages: comma list or a file (default: all found).")
_SOURCE = typer.Option(None, "--source-lang", help="Language to fine-tune on (default eng_Latn); needs train + dev.")
_SEEDS = typer.Option(None, "--seeds", help="Seeds, e.g. 1,2,3 or 1-5 (default 1-5, the paper's five seeds); one result set per seed.")
_EPOCHS = typer.Option(None, "--epochs", help="Maximum epochs (default 40 classification / 10 tagging).")
_LR = typer.Option(None, "--lr", help="AdamW learning rate (default 1e-5 classification / 2e-5 tagging).")
_BATCH = typer.Option(None, "--batch-size", help="Training batch size (default 8).")
_ACCUM = typer.Option(None, "--grad-accum", help="Gradient accumulation steps (default 2 classification / 4 tagging).")
_MAXTRAIN = typer.Option(None, "--max-train-samples", help="Use only the first N training examples (quick runs).")
_MAXEVAL = typer.Option(None, "--max-eval-samples", help="Use only the first N dev and test examples (quick runs).")
_MAXLEN = typer.Option(None, "--max-length", help="Tokens per example incl. <s> </s> (default 256).")
_PATIENCE = typer.Option(None, "--patience", help="Stop after N epochs without a better source dev score.")
_OUT = typer.Option(None, "--output-dir", help="Results root (default results/).")
_OVERWRITE = typer.Option(False, "--overwrite", help="Re-train and re-score units that already have results.")
_SHARD = typer.Option(None, "--shard", help="Run shard i of N ('i/N', 0-based) of the target languages.")
_CONFIG = typer.Option(None, "--config", help="Task YAML; flags override its values (default task_configs/<task>.yaml).")
_DEVICE = typer.Option(None, "--device", help="cpu, cuda, cuda:N (default: cuda when available).")
_PRECISION = typer.Option(None, "--mixed-precision", help="auto (bf16/fp16 on CUDA, fp32 on CPU), no, bf16, fp16.")
_TRAINFILE = typer.Option(None, "--train-file", help="Source training file instead of the source language's train split.")
_DEVFILE = typer.Option(None, "--dev-file", help="Source dev file instead of the source language's dev split.")
_KEEP = typer.Option(None, "--keep-model/--no-keep-model",
                     help="Keep each seed's fine-tuned model under the results so reruns and shards reuse it (default).")


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    eval_app.command("taxi1500")(taxi1500)
    eval_app.command("sib200")(sib200)
    eval_app.command("ner")(ner)
    eval_app.command("pos")(pos)


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
    """Taxi1500: 6-class Bible verse topics; data-dir holds <lang>_{train,dev,test}.tsv (macro-F1).

    Target test sets also come from any Bible (--bible / --bible-dir), joined on the official
    English test verse ids; each language's coverage is printed and recorded.
    """
    flags = dict(locals())
    bibles, folder = flags.pop("bible"), flags.pop("bible_dir")
    _run("taxi1500", flags, lambda settings, console: _taxi1500_data(settings, bibles, folder, console))


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
    _run("sib200", dict(locals()), _sib200_data)


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
    _run("ner", dict(locals()), _ner_data)


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
    _run("pos", dict(locals()), _pos_data)


# ---------------------------------------------------------------------------- data per task
def _taxi1500_data(settings: dict, bibles: list[Path] | None, bible_dir: Path | None, console: Console):
    from langsamp_cli.data.taxi1500 import discover_taxi1500, read_taxi1500_tsv
    from langsamp_cli.tasks.transfer import add_bible_targets, plan_from_files

    data_dir = _data_dir(settings)
    files, problems = discover_taxi1500(data_dir)
    _print_problems(problems, console)
    data = plan_from_files("taxi1500", files, read_taxi1500_tsv, settings["source_lang"], str(data_dir))
    from_folder, named = _bible_dir_files(bible_dir, console), _named_bibles(bibles)
    if from_folder or named:
        official = files.get("eng_Latn", {}).get("test")
        if official is None:
            raise LangsampError(f"{data_dir}: Bible targets need the official eng_test.tsv (its verse ids and labels)")
        add_bible_targets(data, from_folder, official, replace=False, console=console)
        add_bible_targets(data, named, official, replace=True, console=console)
    return data


def _bible_dir_files(bible_dir: Path | None, console: Console) -> dict[str, Path]:
    from langsamp_cli.data.bible import discover_bibles

    if bible_dir is None:
        return {}
    if not Path(bible_dir).is_dir():
        raise LangsampError(f"--bible-dir {bible_dir} is not a directory")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # other editions are printed below
        collection = discover_bibles(bible_dir)
    _print_problems(collection.problems, console)
    for lang, extra in collection.other_editions.items():
        _print_problems({p.name: f"{lang} already comes from {collection.files[lang].name}" for p in extra}, console)
    return dict(collection.files)


def _named_bibles(bibles: list[Path] | None) -> dict[str, Path]:
    from langsamp_cli.data.bible import bible_language

    found: dict[str, Path] = {}
    for path in bibles or []:
        if not Path(path).is_file():
            raise LangsampError(f"--bible {path}: file not found")
        found[bible_language(path)] = Path(path)
    return found


def _sib200_data(settings: dict, console: Console):
    from langsamp_cli.data.sib200 import discover_sib200, read_labels_file, read_sib200_tsv
    from langsamp_cli.tasks.transfer import plan_from_files

    data_dir = _data_dir(settings)
    files, problems = discover_sib200(data_dir)
    _print_problems(problems, console)

    def read(path: Path):
        return read_sib200_tsv(path, read_labels_file(path.parent))

    return plan_from_files("sib200", files, read, settings["source_lang"], str(data_dir))


def _ner_data(settings: dict, console: Console):
    from langsamp_cli.data.conll import discover_tagging, normalize_ner, read_tagged_file
    from langsamp_cli.tasks.transfer import plan_from_files

    data_dir = _data_dir(settings)
    found = discover_tagging(data_dir, extensions=("iob2",))
    _print_problems(found.problems, console)
    entity_types = list(settings["entity_types"])

    def read(path: Path):
        return normalize_ner(read_tagged_file(path), entity_types)

    return plan_from_files("ner", found.files, read, settings["source_lang"], str(data_dir),
                           settings.get("train_file"), settings.get("dev_file"))


def _pos_data(settings: dict, console: Console):
    from langsamp_cli.data.conllu import UPOS_TAGS, discover_treebanks, read_pos_file
    from langsamp_cli.tasks.transfer import plan_from_files

    settings.setdefault("labels", list(UPOS_TAGS))
    data_dir = _data_dir(settings)
    found = discover_treebanks(data_dir)
    _print_problems(found.problems, console)
    return plan_from_files("pos", found.files, read_pos_file, settings["source_lang"], str(data_dir),
                           settings.get("train_file"), settings.get("dev_file"))


def _data_dir(settings: dict) -> Path:
    from langsamp_cli.data.parallel import check_data_dir

    return check_data_dir(settings.get("data_dir"))


def _print_problems(problems: dict[str, str], console: Console) -> None:
    for name, reason in problems.items():
        console.print(f"[yellow]not used[/] {name}: {reason}", highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------- shared driver
def _settings(task: str, config: Path | None, flags: dict) -> dict:
    from langsamp_cli.task_config import load_task_config

    overrides = {k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items() if v is not None}
    loaded = load_task_config(task, overrides, config_file=config)
    settings = {**DEFAULTS[task], **{k: v for k, v in loaded.items() if v is not None}}
    if not settings.get("model"):
        raise LangsampError(f"--model is required for {task}: a checkpoint dir or a Hugging Face model name")
    from langsamp_cli.tasks import fit_max_length

    fit_max_length(settings, Console(stderr=True), explicit=flags.get("max_length") is not None)
    return settings


def _run(task: str, flags: dict, build_data) -> None:
    from langsamp_cli.results import parse_shard, print_results, select_shard
    from langsamp_cli.tasks import requested_languages
    from langsamp_cli.tasks.transfer import TransferRunner, parse_seeds, restrict_languages, train_settings

    overwrite, shard, config = flags.pop("overwrite"), flags.pop("shard"), flags.pop("config")
    console = Console(stderr=True)
    settings = _settings(task, config, flags)
    seeds = parse_seeds(settings.pop("seeds", None))
    train_settings(settings, seeds[0])  # bad training values fail before any data is read
    requested, any_script = requested_languages(settings.get("languages"))
    data = restrict_languages(build_data(settings, console), requested, str(settings.get("data_dir")), any_script)
    languages = select_shard(data.names(), parse_shard(shard))
    runner = TransferRunner(_task(task, settings), data, settings, console, progress=sys.stderr.isatty())
    summary = runner.run(seeds, languages, overwrite=overwrite)
    console.print(
        f"{task}: seeds {','.join(map(str, seeds))}; {len(summary.scored)} units scored, {len(summary.skipped)} skipped, "
        f"{len(summary.already_done)} already done; fine-tuned {len(summary.trained_seeds)}, "
        f"reused {len(summary.reused_seeds)}",
        highlight=False,
    )
    for results in summary.results:
        print_results(results)


def _task(task: str, settings: dict):
    from langsamp_cli.tasks.classification import ClassificationTask
    from langsamp_cli.tasks.tagging import TaggingTask

    kind = ClassificationTask if task in ("taxi1500", "sib200") else TaggingTask
    return kind(settings.get("task", task), max_length=int(settings["max_length"]), eval_batch_size=int(settings["eval_batch_size"]))
