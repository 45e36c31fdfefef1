"""Every pretraining setting in one dataclass, plus the `paper` preset.

The dataclass defaults are the `demo` run, what ``langsamp pretrain`` trains without ``--preset``: a tiny model
from scratch on the bundled corpus, a few minutes on 2 CPU cores (``tiny`` is from scratch by itself; leaving
``from_scratch`` unset means ``--model CKPT`` continues that checkpoint). A preset only overrides defaults.
Every limit of a value is declared with its field. Precedence, lowest to highest: dataclass defaults < preset <
YAML ``--config`` file < command-line flags.

Choices the paper leaves open, and what we do:
- sampling size n_i = number of non-empty lines (sentences) of a language-script, as in XLM/XLM-R;
  p_i is proportional to n_i ** alpha (alpha 0.3);
- learning-rate schedule: linear warmup over ``warmup_steps`` then linear decay to 0 at ``max_steps``
  (the Hugging Face ``linear`` schedule the official run_mlm-based scripts use); the paper gives only lr 5e-5;
- weight decay 0.01 on all weights except biases and LayerNorm (the RoBERTa/XLM-R convention);
- gradient clipping at norm 1.0 (the Hugging Face Trainer default).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import read_yaml_mapping
from langsamp_cli.settings import (check_known_keys, check_limits, convert_all, flag_names, meta, normalise_keys,
                                   setting, show_value)
from langsamp_cli.variants import variant_name

MixedPrecision = Literal["no", "bf16", "fp16"]
MIXED_PRECISION = typing.get_args(MixedPrecision)
TINY_MODEL = "tiny"
MAX_SEED = 2**31 - 1  # numpy takes seeds below 2**32; ranks and steps are added to it
MIN_VOCAB_SIZE = 100  # a trained tokenizer smaller than this is characters only
InitMethod = Literal["random", "donor", "mean"]   # --init-new-languages
InitTokens = Literal["random", "mean", "subword"]   # --init-new-tokens (pretrain/vocab_transfer.py)
INIT_METHODS = typing.get_args(InitMethod)


@dataclass
class PretrainConfig:
    # data
    corpus: str | None = setting("Directory with one xxx_Scrp text file (.txt/.gz) or folder per language-script, "
                                 "one sentence per line (default: the bundled demo corpus).", path=True)
    languages: list[str] | None = setting("Train on these language-scripts only (comma list or file; default: all "
                                          "in the corpus).")
    alpha: float = setting("Sampling temperature: p_i ∝ lines_i ** alpha.", default=0.3, positive=True)
    max_seq_len: int = setting("Tokens per chunk, <s> </s> included.", default=128, minimum=8)
    mlm_probability: float = setting("Share of the tokens masked.", default=0.15, positive=True, below=1)
    chunking: Literal["langsamp", "official"] = setting(
        "langsamp: one <s> ... </s> around each chunk, random replacements from ordinary tokens; official: every "
        "sentence in <s> ... </s>, chunks cut across them within groups of 1,000 lines (each group's remainder "
        "dropped), replacements from the whole vocabulary (the Glot500/LangSAMP pipeline).", default="langsamp")
    cache_bytes: int = setting("Languages up to this raw size are tokenized once and kept in memory.",
                               default=64 * 2**20, cli=False, non_negative=True)
    # model
    model: str = setting("Initial model: a checkpoint dir or hub name to continue pretraining, or a config (`tiny`, "
                         "or any name with --from-scratch).", "--model", "-m", default=TINY_MODEL)
    from_scratch: bool = setting("Random init from the model's config (and a tokenizer trained on the corpus) or "
                                 "continue from its weights (`tiny` is always from scratch).",
                                 "--from-scratch/--continue", default=False)
    tokenizer: str | None = setting("Tokenizer (folder or hub name). From scratch: use it instead of training a "
                                    "Unigram one on the corpus. Continuing: move the model to its vocabulary (rows "
                                    "matched by piece; new pieces by --init-new-tokens), e.g. an extension of the "
                                    "model's own tokenizer from 'langsamp tokenizer extend'.")
    init_new_tokens: InitTokens | None = setting(
        "Continuing with --tokenizer: rows of pieces the model's tokenizer lacks: random (N(0, initializer_range), "
        "bias 0: the official run) | mean (of all old rows) | subword (mean of the rows of the old pieces the piece "
        "splits into) (default: random).")
    vocab_size: int = setting("Pieces of the tokenizer trained on the corpus.", default=4000, positive=True,
                              minimum=MIN_VOCAB_SIZE, why="the corpus's characters take most of a smaller "
                              "vocabulary, leaving no room for words")
    lang_emb: bool = setting("Language embeddings.", default=True)
    script_emb: bool = setting("Script embeddings.", default=True)
    lang_map: str | None = setting("Official full_dicts.pkl/.json: reuse its language/script ids (continuing from "
                                   "the official checkpoint).", path=True)
    init_new_languages: InitMethod = setting(
        "Rows of corpus languages/scripts the initial checkpoint lacks: random | donor (mean of the 3 "
        "typologically closest checkpoint languages, URIEL) | mean (mean of the checkpoint languages of the same "
        "script); new scripts: mean of the checkpoint's script rows.", default="random")
    # optimisation
    seed: int = setting("Seed of init, sampling and masking (rank r adds r).", default=42, non_negative=True,
                        maximum=MAX_SEED)
    batch_size: int = setting("Chunks per device per micro-batch.", default=16, minimum=1)
    grad_accum: int = setting("Micro-batches per optimiser step.", default=1, minimum=1)
    lr: float = setting("Peak learning rate (linear warmup, then linear decay).", default=1e-3, positive=True)
    warmup_steps: int = setting("Linear warmup steps.", default=30, non_negative=True)
    weight_decay: float = setting("AdamW weight decay (not on biases and LayerNorm).", default=0.01,
                                  non_negative=True)
    adam_betas: tuple[float, float] = setting("AdamW betas.", default=(0.9, 0.999), cli=False)
    adam_eps: float = setting("AdamW epsilon.", default=1e-6, positive=True)
    max_grad_norm: float = setting("Gradient clipping norm.", default=1.0, positive=True)
    max_steps: int = setting("Optimiser steps in total.", default=400, minimum=1)
    mixed_precision: MixedPrecision = setting("no | bf16 | fp16 (GPU only).", default="no")
    compile: bool = setting("torch.compile the model (compiling takes minutes, pays off on long GPU runs).",
                            "--compile/--no-compile", default=False)
    # bookkeeping
    output_dir: str = setting("Run directory.", "--output-dir", "-o", default="runs/pretrain-demo", path=True)
    save_every: int = setting("Checkpoint every N steps.", default=100, minimum=1)
    keep_last: int = setting("Keep only the last K checkpoints.", default=2, minimum=1)
    log_every: int = setting("Log to log.jsonl every N steps.", default=10, positive=True)
    eval_every: int = setting("Held-out MLM loss every N steps (0 = off).", default=0, non_negative=True)
    patience: int = setting("Early stop after N evaluations without improvement (0 = never); the best model goes "
                            "to best/.", default=0, non_negative=True)
    eval_lines: int = setting("Held-out sentences per language (with --eval-every).", default=50, positive=True)
    eval_chunks: int = setting("Held-out chunks per language in each evaluation.", default=2, positive=True)

    @property
    def variant(self) -> str:
        return variant_name(self.lang_emb, self.script_emb)

    @property
    def is_from_scratch(self) -> bool:
        return self.from_scratch or self.model == TINY_MODEL

    def validate(self) -> PretrainConfig:
        """Every declared limit on the values as they are (defaults, presets and a resumed run's too), and the
        one rule that ties two settings together."""
        hints = typing.get_type_hints(PretrainConfig)
        for field in dataclasses.fields(self):
            check_limits(flag_names(field, hints[field.name])[0].split("/")[0], getattr(self, field.name), meta(field))
        if self.init_new_tokens is not None and (self.tokenizer is None or self.is_from_scratch):
            raise LangsampError(f"--init-new-tokens {self.init_new_tokens}: only acts when continuing a checkpoint "
                                "with --tokenizer (new pieces need rows); drop it or pass --tokenizer")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


DEFAULT_PRESET = "demo"   # what `langsamp pretrain` and an experiment run without a preset
PRESETS: dict[str, dict[str, Any]] = {
    DEFAULT_PRESET: {},  # the dataclass defaults
    # The paper's run (docs/paper-pretraining.md): XLM-R's weights continued with Glot500-m's tokenizer on
    # Glot500-c (pass --corpus), 4 GPUs x 32 x 8 = 1024 chunks of 512 tokens per step. Weight decay 0 and no
    # warmup are the HF Trainer defaults the official launcher ran with; bf16 where it used fp16.
    "paper": dict(
        model="xlm-roberta-base", tokenizer="cis-lmu/glot500-base", init_new_tokens="random", from_scratch=False,
        alpha=0.3, max_seq_len=512, batch_size=32, grad_accum=8, lr=5e-5, adam_eps=1e-6, weight_decay=0.0,
        warmup_steps=0, max_steps=150_000, save_every=5000, keep_last=30, log_every=100, mixed_precision="bf16",
        vocab_size=8000, output_dir="runs/pretrain-paper",
    ),
}


def load_yaml_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of PretrainConfig fields (dashes or underscores in keys)."""
    return normalise_keys(read_yaml_mapping(path))


def build_config(preset: str | None = DEFAULT_PRESET, yaml_path: str | Path | None = None,
                 overrides: dict[str, Any] | None = None, overrides_from: str | None = None) -> PretrainConfig:
    """Defaults < preset < YAML file < overrides (flags; None values mean "not given"), typed and checked.

    ``overrides_from`` names where the overrides come from in errors (e.g. an experiment file's ``pretrain:``
    section); without it they are flags, named ``--flag-name``.
    """
    if preset is not None and preset not in PRESETS:
        raise LangsampError(f"--preset {preset}: choose one of {', '.join(PRESETS)}")
    known = [f.name for f in dataclasses.fields(PretrainConfig)]
    from_file = load_yaml_config(yaml_path) if yaml_path is not None else {}
    check_known_keys(from_file, known, str(yaml_path), "for pretraining")
    from_flags = {key: value for key, value in (overrides or {}).items() if value is not None}
    check_known_keys(from_flags, known, overrides_from or "pretrain settings", "for pretraining" if overrides_from else "")
    values = {**(PRESETS[preset] if preset else {}), **convert_all(PretrainConfig, from_file, str(yaml_path), yaml_path),
              **convert_all(PretrainConfig, from_flags, overrides_from or "", as_flags=overrides_from is None)}
    return PretrainConfig(**values).validate()


def preset_notes() -> dict[str, str]:
    """Help text per setting: its default, or the value each preset runs with where they differ."""
    notes = {}
    hints = typing.get_type_hints(PretrainConfig)
    for field in dataclasses.fields(PretrainConfig):
        default = field.default if field.default is not dataclasses.MISSING else None
        effective = {name: values.get(field.name, default) for name, values in PRESETS.items()}
        flag = flag_names(field, hints[field.name])[0]
        if len({repr(value) for value in effective.values()}) > 1:
            notes[field.name] = ", ".join(f"{name}: {show_value(value, flag)}" for name, value in effective.items())
        elif default is not None:
            notes[field.name] = f"default: {show_value(default, flag)}"
    return notes

