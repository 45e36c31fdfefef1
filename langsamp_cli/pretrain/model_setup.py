"""What a run trains: its tokenizer (the checkpoint's, a given one, the model's, or one trained on the corpus),
the language/script ids and the model (loaded, built from scratch, or continued and extended)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from rich.markup import escape

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_dir, atomic_write_json
from langsamp_cli.pretrain.config import PretrainConfig
from langsamp_cli.pretrain.corpus import Corpus
from langsamp_cli.pretrain.run_dir import run_record

TOKENIZER_TRAINING_LINES = 2_000_000


def prepare_tokenizer(config: PretrainConfig, corpus: Corpus, out: Path, checkpoint: Path | None,
                      accelerator: Accelerator, say: Callable) -> Any:
    """The checkpoint's tokenizer; a given one (``--tokenizer``: from scratch, or continuing with the model moved to
    its vocabulary); the model's (continued pretraining); or train one (rank 0)."""
    from transformers import AutoTokenizer

    source = checkpoint or config.tokenizer or (config.model if not config.is_from_scratch else None)
    if source is not None and source == config.model:
        check_has_tokenizer(config.model, "continuing it needs its tokenizer")
    if source is None:
        target = out / "tokenizer"
        if accelerator.is_main_process and not (target / "tokenizer_config.json").exists():
            from langsamp_cli.tokenizer import train_unigram_tokenizer

            say(f"training a {config.vocab_size:,}-piece Unigram tokenizer on the corpus ...")
            with atomic_dir(target) as tmp:
                trained = train_unigram_tokenizer(tokenizer_training_lines(corpus), config.vocab_size, tmp)
            if len(trained) < config.vocab_size:
                say(f"note: --vocab-size {config.vocab_size:,}: this corpus supports only {len(trained):,} pieces; "
                    f"the tokenizer has {len(trained):,}")
        accelerator.wait_for_everyone()
        source = target
    try:
        return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError) as err:
        raise LangsampError(f"cannot load a tokenizer from {source} ({str(err).splitlines()[0]}); "
                            "pass a local model directory or --tokenizer DIR") from None


def tokenizer_training_lines(corpus: Corpus, limit: int = TOKENIZER_TRAINING_LINES) -> list[str]:
    """Up to ``limit`` training lines, the same share from every language (never the held-out lines)."""
    from langsamp_cli.pretrain.corpus import read_training

    per_language = max(1000, limit // len(corpus.sources))
    return [line for source in corpus.sources.values()
            for line in read_training(source, min(per_language, source.train_lines))]


def check_has_tokenizer(model: str, why: str) -> None:
    """A local model folder without tokenizer files: one line naming what pretraining needs it for."""
    from langsamp_cli.model_source import lacks_tokenizer

    if lacks_tokenizer(model):
        raise LangsampError(f"--model {model}: no tokenizer files in the folder ({why}); copy the tokenizer it was "
                            "trained with into it (tokenizer.save_pretrained(folder)), or pass --from-scratch "
                            "--tokenizer DIR to train from its config only")


def language_maps(config: PretrainConfig, corpus: Corpus, checkpoint: Path | None
                  ) -> tuple[dict[str, int], dict[str, int]]:
    """Reuse the mapping of --lang-map / the checkpoint / the initial model; else build it from the corpus."""
    from langsamp_cli.official_format import read_id_map

    if config.lang_map:
        lang2id, script2id = read_id_map(config.lang_map)
        origin = config.lang_map
    else:
        candidates = [p for p in (checkpoint, None if config.is_from_scratch else Path(config.model)) if p]
        meta = next((p / "langsamp.json" for p in candidates if (p / "langsamp.json").is_file()), None)
        if meta is None:
            return corpus_maps(corpus)
        saved = json.loads(meta.read_text(encoding="utf-8"))
        lang2id, script2id, origin = saved["lang2id"], saved["script2id"], str(meta)
    missing = sorted({s.lang_script for s in corpus.sources.values()
                      if s.lang not in lang2id or s.script not in script2id})
    if missing and not config.lang_map:
        from langsamp_cli.pretrain.init_rows import extend_maps

        return extend_maps(lang2id, script2id, missing)  # new rows: init_rows.initialise_from_checkpoint
    if missing:
        raise LangsampError(f"{origin}: the language/script mapping lacks corpus language-script(s) "
                            f"{', '.join(missing)}; drop them with --languages or start from a mapping that has them")
    return lang2id, script2id


def corpus_maps(corpus: Corpus) -> tuple[dict[str, int], dict[str, int]]:
    """Sorted ISO 639-3 languages and ISO 15924 scripts, ids in that order (as the official code)."""
    langs = sorted({s.lang for s in corpus.sources.values()})
    scripts = sorted({s.script for s in corpus.sources.values()})
    return {lang: i for i, lang in enumerate(langs)}, {script: i for i, script in enumerate(scripts)}


def check_memory(config: PretrainConfig, tokenizer: Any, checkpoint: Path | None, accelerator: Accelerator) -> None:
    """Refuse a model that surely cannot train in this machine's memory, before anything is built."""
    from langsamp_cli.pretrain.memory import check_fits

    model_config = training_model_config(config, tokenizer, checkpoint)
    if model_config is not None:
        check_fits(model_config, config.batch_size, config.max_seq_len, accelerator.device, str(config.model))


def training_model_config(config: PretrainConfig, tokenizer: Any, checkpoint: Path | None) -> Any:
    """The config of the model about to be built or loaded (None when it cannot be read without loading)."""
    if checkpoint is None and config.is_from_scratch:
        return from_scratch_config(config, tokenizer)
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(str(checkpoint or config.model), local_files_only=True)
    except (OSError, ValueError):
        return None
    if checkpoint is None and config.tokenizer:  # continuing with --tokenizer: the table grows to its vocabulary
        model_config.vocab_size = max(int(getattr(model_config, "vocab_size", 0) or 0), len(tokenizer))
    return model_config


def prepare_model(config: PretrainConfig, tokenizer: Any, lang2id: dict[str, int], script2id: dict[str, int],
                  checkpoint: Path | None, corpus: Corpus | None = None, say: Callable = print) -> torch.nn.Module:
    from langsamp_cli.model import build_model, load_checkpoint, usable_positions

    if checkpoint is not None:
        model = load_checkpoint(checkpoint)
    elif config.is_from_scratch:
        torch.manual_seed(config.seed)  # the same initial weights on every rank and in every rerun
        model = build_model(config.model, lang2id, script2id, variant=config.variant,
                            from_scratch_config=from_scratch_config(config, tokenizer))
    else:
        torch.manual_seed(config.seed)
        model = build_model(config.model, lang2id, script2id, variant=config.variant)
        if config.tokenizer:  # rows moved to the given tokenizer's vocabulary (pretrain/vocab_transfer.py)
            model.vocab_transfer = move_to_tokenizer(model, config, tokenizer, say)
        if corpus is not None:  # rows of languages/scripts the initial model lacks (--init-new-languages)
            from langsamp_cli.pretrain.init_rows import corpus_scripts, initialise_from_checkpoint

            initialise_from_checkpoint(model, config.model, config.lang_map, config.init_new_languages,
                                       corpus_scripts(corpus.sources), say)
    limit = usable_positions(model.mlm.config)
    if limit is not None and config.max_seq_len > limit:
        raise LangsampError(f"--max-seq-len {config.max_seq_len} exceeds what {config.model} supports "
                            f"({limit}); lower it")
    return model


def from_scratch_config(config: PretrainConfig, tokenizer: Any) -> Any:
    """tiny -> tiny.tiny_config; anything else -> AutoConfig of that name/path with our vocabulary."""
    ids = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
               bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if config.model == "tiny":
        from langsamp_cli.tiny import tiny_config

        model_config = tiny_config(len(tokenizer), max_positions=config.max_seq_len + 2)
    else:
        from transformers import AutoConfig

        try:
            model_config = AutoConfig.from_pretrained(config.model)
        except (OSError, ValueError) as err:
            raise LangsampError(f"--model {config.model}: no model config found ({str(err).splitlines()[0]}); "
                                "use tiny, a local model directory or a hub name") from None
    for key, value in ids.items():
        setattr(model_config, key, value)
    return model_config


def move_to_tokenizer(model: torch.nn.Module, config: PretrainConfig, tokenizer: Any, say: Callable) -> Any:
    """Resize the token rows of ``model`` from its own tokenizer's vocabulary to ``tokenizer``'s."""
    from transformers import AutoTokenizer

    from langsamp_cli.pretrain.vocab_transfer import transfer_vocabulary

    check_has_tokenizer(config.model, "its pieces are matched with --tokenizer's by string")
    try:
        own = AutoTokenizer.from_pretrained(str(config.model))
    except (OSError, ValueError) as err:
        raise LangsampError(f"--model {config.model}: no tokenizer beside the weights ({str(err).splitlines()[0]}), "
                            "so the rows of --tokenizer's pieces cannot be matched; use a model folder with its "
                            "tokenizer files") from None
    transfer = transfer_vocabulary(model.mlm, own, tokenizer, config.init_new_tokens or "random", config.seed,
                                   tokenizer=str(config.tokenizer), model=str(config.model))
    say(escape(transfer.line()), highlight=False)
    return transfer


def record_vocab_transfer(out: Path, model: torch.nn.Module, accelerator: Accelerator) -> None:
    """``vocab_transfer.tsv`` (every new row and what it was made from) and its summary in ``run.json``."""
    from langsamp_cli.pretrain.vocab_transfer import SOURCES_FILE, write_sources

    transfer = getattr(model, "vocab_transfer", None)
    if transfer is None or isinstance(transfer, dict) or not accelerator.is_main_process:
        return
    write_sources(transfer, out / SOURCES_FILE)
    record = run_record(out)
    record["vocab_transfer"] = {**transfer.record(), "rows_file": SOURCES_FILE}
    atomic_write_json(out / "run.json", record)
