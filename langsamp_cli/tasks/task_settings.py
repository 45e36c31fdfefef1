"""The settings of an evaluation task, by task type: every YAML key and every `langsamp eval` flag.

Values live in the task YAMLs (``langsamp_cli/task_configs/``: ``base.yaml`` < the type template
``_retrieval.yaml`` / ``_classification.yaml`` / ``_tagging.yaml`` < ``<task>.yaml``), never here: a field
typed without ``| None`` must be set there. The eval commands' flags are generated from these fields
(:mod:`langsamp_cli.settings`); fields marked ``cli=False`` are YAML-only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from langsamp_cli.settings import meta, setting

TaskType = Literal["retrieval", "classification", "tagging"]  # the one list of task types (SETTINGS_BY_TYPE)
_DEVICE_HELP = "cpu, cuda, cuda:N (default: cuda when available)."


@dataclass
class TaskSettings:
    """Keys every task has."""

    task: str = setting("Name of the result folder and the report row (a YAML may define a new task).", cli=False)
    type: TaskType = setting("Which runner and keys apply.", cli=False)
    metric: str = setting("The headline metric of reports (acc@10, macro_f1, f1).", cli=False)
    description: str | None = setting("What the task is (shown nowhere but the YAML).", cli=False, hashed=False)
    model: str | None = setting("Encoder: our checkpoint dir, any HF model name or path.", "--model", "-m")
    data_dir: str | None = setting("Dataset folder (the layout is in the command's help).", path=True)
    languages: str | list[str] | None = setting("Target languages: comma list or a file (default: all found).",
                                                hashed=False)
    source_lang: str = setting("English side / language to fine-tune on (needs train + dev for transfer).")
    output_dir: str = setting("Results root.", path=True, hashed=False)
    device: str | None = setting(_DEVICE_HELP, hashed=False)
    overwrite: bool = setting("Recompute units that already have results.", "--overwrite", default=False,
                              run_only=True)
    shard: str | None = setting("Run only shard i of N ('i/N', 0-based) of the languages.", run_only=True)
    config: str | None = setting("Task YAML over the built-in one (langsamp_cli/task_configs/<task>.yaml); "
                                 "flags override both.", run_only=True, path=True)
    # written by load_task_config itself
    base_task: str | None = setting("The built-in task a YAML-defined task builds on.", cli=False)
    config_files: list[str] | None = setting("The YAML files the settings came from.", cli=False, hashed=False)


@dataclass
class RetrievalSettings(TaskSettings):
    """Sentence retrieval against English (SR-B, SR-T): no fine-tuning."""

    bible_dir: str | None = setting("Whole Bibles (verse-id TSV or CES XML) to pair with --english-bible.",
                                    path=True, optional_input=True)
    bible: list[str] | None = setting("A target whole Bible (verse-id TSV or CES XML) to pair with --english-bible; "
                                      "repeatable.", "--bible", path=True, optional_input=True)
    english_bible: str | None = setting("English whole Bible (e.g. eng_Latn.KJV.tsv), the query side for --bible "
                                        "/ --bible-dir.", path=True, optional_input=True)
    pairs: int = setting("At most N pairs per language, the first N (with whole Bibles: the first N verse ids "
                         "both share; sr-pairs: the first N sentence ids every language shares).",
                         positive=True)
    layer: int = setting("hidden_states index: 0 = embeddings, 8 = output of block 8.", non_negative=True)
    layers: str | None = setting("Score several layers from one forward pass: 'all' (0..depth) or a comma list "
                                 "such as 4,6,8. The task's layer is filed as usual, layer k under task "
                                 "'<task>@layer<k>'; `langsamp report --by-layer` plots them.")
    batch_size: int = setting("Full-length sentences per forward pass; shorter ones fill the same token budget "
                              "(batch-size x max-length on a GPU, x 128 on CPU).", positive=True, hashed=False)
    max_length: int = setting("Tokens per sentence incl. <s> </s>.", positive=True)
    exclude_special_tokens: bool = setting("Leave <s> and </s> out of the mean (official: included).",
                                           "--exclude-special-tokens/--include-special-tokens")
    dtype: Literal["float32", "auto", "bfloat16", "float16"] = setting(
        "float32 matches the official numbers; auto, bfloat16, float16 (CUDA only).", hashed=False)
    top_k: list[int] = setting("The k of every acc@k recorded.", cli=False, positive=True)
    scoring: Literal["cosine", "margin", "csls"] = setting(
        "How queries rank candidates: cosine (the paper's), margin (ratio margin, Artetxe & Schwenk 2019) or csls "
        "(Conneau et al. 2018). Non-cosine results are filed under task '<task>@<scoring>'.")
    margin_k: int = setting("Neighbours averaged by --scoring margin.", positive=True)
    csls_k: int = setting("Neighbours averaged by --scoring csls.", positive=True)
    pivots: str | list[str] | None = setting("sr-pairs: only these languages are queries (comma list or file); "
                                             "every language stays a target (default: all are queries).",
                                             optional_input=True)
    split: Literal["train", "dev", "test"] | None = setting("sr-pairs on SIB-200/FLORES folders: only this split's "
                                                           "sentences (default: every split).", optional_input=True)
    store_dtype: Literal["float32", "float16"] | None = setting(
        "sr-pairs: keep every language's vectors as float32 or float16 (half the memory; scores still float32).",
        optional_input=True)
    no_cache: bool = setting("Neither read nor write the embedding cache.", "--no-cache", default=False,
                             run_only=True)
    cache_dir: str | None = setting("Embedding cache (default $LANGSAMP_CACHE or ~/.cache/langsamp/embeddings).",
                                    run_only=True, path=True)


@dataclass
class TransferSettings(TaskSettings):
    """Zero-shot transfer: fine-tune on the source language, score every target language."""

    seeds: int | str | list[int] = setting("Seeds, e.g. 1,2,3 or 1-5; one result set per seed.")
    epochs: int = setting("Maximum epochs.", positive=True)
    lr: float = setting("AdamW learning rate.", positive=True)
    # not in the settings hash (as since the first results format): a unit trained with another batch size is reused
    batch_size: int = setting("Training batch size.", positive=True, hashed=False)
    grad_accum: int = setting("Gradient accumulation steps.", positive=True)
    max_length: int = setting("Tokens per example incl. special tokens.", positive=True)
    max_train_samples: int | None = setting("Use a seeded sample of N training examples, stratified by label (quick "
                                            "runs; recorded in the results).", positive=True)
    max_eval_samples: int | None = setting("Use a seeded sample of N dev and N test examples, stratified by label "
                                           "(quick runs; recorded in each result).", positive=True)
    patience: int | None = setting("Stop after N epochs without a better source dev score (0 or none: run every "
                                   "epoch).", non_negative=True)
    eval_batch_size: int = setting("Examples per forward pass when scoring.", positive=True, hashed=False)
    weight_decay: float = setting("AdamW weight decay.", non_negative=True)
    adam_epsilon: float = setting("AdamW epsilon.", positive=True)
    max_grad_norm: float = setting("Gradient clipping norm (0 = no clipping).", non_negative=True)
    scheduler: str = setting("Learning-rate schedule after warm-up: any transformers get_scheduler name (linear, "
                             "cosine, constant, ...).")
    warmup_ratio: float = setting("Share of the training steps used for linear warm-up.", non_negative=True)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = setting(
        "auto (bf16, or fp16 on GPUs without bf16; fp32 on CPU), no, bf16 (also on CPU), fp16 (CUDA only).",
        hashed=False)
    keep_model: bool = setting("Keep each seed's fine-tuned model under the results so reruns and shards reuse it.",
                               hashed=False)
    labels: list[str] | None = setting("Label order (none: read from the data).", cli=False)


@dataclass
class ClassificationSettings(TransferSettings):
    """Sequence classification (Taxi1500, SIB-200)."""

    bible: list[str] | None = setting("A target Bible (verse-id TSV or CES XML); repeatable.", "--bible",
                                      path=True, optional_input=True)
    bible_dir: str | None = setting("A folder of target Bibles (TSV / CES XML).", path=True, optional_input=True)


@dataclass
class TaggingSettings(TransferSettings):
    """Token classification (NER, POS)."""

    train_file: str | None = setting("Source training file instead of the source language's train split.",
                                     path=True, optional_input=True)
    dev_file: str | None = setting("Source dev file instead of the source language's dev split.", path=True,
                                   optional_input=True)
    entity_types: list[str] | None = setting("Entity types kept (others become O).", cli=False)
    ud_preparation: Literal["glot500", "syntactic"] | None = setting(
        "How CoNLL-U treebanks become words: glot500 (the paper's data: multi-word tokens as one surface word, "
        "every treebank of a language, no spaces/ZWNJ inside words) or syntactic (UD words, first treebank).",
        optional_input=True)


SETTINGS_BY_TYPE: dict[TaskType, type[TaskSettings]] = {
    "retrieval": RetrievalSettings, "classification": ClassificationSettings, "tagging": TaggingSettings}


def recorded_settings(settings: TaskSettings) -> dict[str, Any]:
    """The settings a result unit records: every field that is set, less the run options (--overwrite, ...)."""
    values = {field.name: getattr(settings, field.name) for field in fields(settings) if not meta(field).run_only}
    return {name: value for name, value in values.items() if value is not None}
