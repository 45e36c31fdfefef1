"""Every pretraining setting in one dataclass, plus the two presets (`demo`, `paper`).

Precedence, lowest to highest: dataclass defaults < preset < YAML ``--config`` file < command-line flags.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import read_yaml_mapping

MIXED_PRECISION = ("no", "bf16", "fp16")
TINY_MODEL = "tiny"


@dataclass
class PretrainConfig:
    # data
    corpus: str | None = None                 # Glot500-c style directory; None = the bundled demo corpus
    languages: list[str] | None = None        # restrict to these language-scripts (None = all in the corpus)
    alpha: float = 0.3                        # sampling temperature: p_i ∝ n_i ** alpha
    max_seq_len: int = 512                    # tokens per training chunk, <s> and </s> included
    mlm_probability: float = 0.15
    cache_bytes: int = 64 * 2**20             # languages up to this raw size are tokenized once, kept in memory
    # model
    model: str = "xlm-roberta-base"           # checkpoint dir / hub name (continued) or config name (--from-scratch)
    from_scratch: bool = False                # `tiny` is always from scratch
    tokenizer: str | None = None              # from-scratch only; None = train a Unigram tokenizer on the corpus
    vocab_size: int = 8000                    # size of that trained tokenizer
    lang_emb: bool = True
    script_emb: bool = True
    lang_map: str | None = None               # official full_dicts.pkl/.json: reuse its lang2id/script2id
    # optimisation
    seed: int = 42
    batch_size: int = 32                      # per device
    grad_accum: int = 8
    lr: float = 5e-5
    warmup_steps: int = 0
    weight_decay: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-6
    max_grad_norm: float = 1.0
    max_steps: int = 150_000
    mixed_precision: str = "no"
    # bookkeeping
    output_dir: str = "runs/pretrain"
    save_every: int = 5000
    keep_last: int = 3
    log_every: int = 100
    eval_every: int = 0                       # 0 = no held-out evaluation / early stopping
    patience: int = 0                         # stop after this many evaluations without improvement (0 = never)
    eval_lines: int = 50                      # held-out sentences per language (only when eval_every > 0)
    eval_chunks: int = 2                      # held-out chunks per language in each evaluation

    @property
    def variant(self) -> str:
        return {(True, True): "both", (True, False): "lang", (False, True): "script", (False, False): "vanilla"}[
            (self.lang_emb, self.script_emb)
        ]

    @property
    def is_from_scratch(self) -> bool:
        return self.from_scratch or self.model == TINY_MODEL

    def validate(self) -> PretrainConfig:
        checks = [
            (self.max_seq_len >= 8, f"--max-seq-len {self.max_seq_len}: use at least 8"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size}: use at least 1"),
            (self.grad_accum >= 1, f"--grad-accum {self.grad_accum}: use at least 1"),
            (self.max_steps >= 1, f"--max-steps {self.max_steps}: use at least 1"),
            (self.save_every >= 1, f"--save-every {self.save_every}: use at least 1"),
            (self.keep_last >= 1, f"--keep-last {self.keep_last}: use at least 1"),
            (self.alpha > 0, f"--alpha {self.alpha}: use a value in (0, 1]"),
            (0 < self.mlm_probability < 1, f"mlm_probability {self.mlm_probability}: use a value in (0, 1)"),
            (self.lr > 0, f"--lr {self.lr}: must be positive"),
            (self.mixed_precision in MIXED_PRECISION,
             f"--mixed-precision {self.mixed_precision}: choose one of {', '.join(MIXED_PRECISION)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise LangsampError(message)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # A tiny model from scratch on the bundled corpus: a few minutes on 2 CPU cores.
    # `tiny` is from scratch by itself; leaving from_scratch unset means `--model CKPT` continues that checkpoint.
    "demo": dict(
        model=TINY_MODEL, vocab_size=4000, max_seq_len=128, batch_size=16, grad_accum=1,
        lr=1e-3, warmup_steps=30, max_steps=400, save_every=100, keep_last=2, log_every=10,
        output_dir="runs/pretrain-demo",
    ),
    # The paper's continued pretraining of XLM-R on Glot500-c (4 GPUs: 32 x 8 x 4 = 1024 per step).
    "paper": dict(
        model="xlm-roberta-base", from_scratch=False, max_seq_len=512, batch_size=32, grad_accum=8, lr=5e-5,
        max_steps=150_000, save_every=5000, keep_last=30, log_every=100, mixed_precision="bf16",
        output_dir="runs/pretrain-paper",
    ),
}


def load_yaml_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of PretrainConfig fields (dashes or underscores in keys)."""
    data = read_yaml_mapping(path)
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def build_config(preset: str | None = "demo", yaml_path: str | Path | None = None,
                 overrides: dict[str, Any] | None = None) -> PretrainConfig:
    """Defaults < preset < YAML file < overrides (flags; None values mean "not given")."""
    if preset is not None and preset not in PRESETS:
        raise LangsampError(f"--preset {preset}: choose one of {', '.join(PRESETS)}")
    values: dict[str, Any] = dict(PRESETS[preset]) if preset else {}
    if yaml_path is not None:
        values.update(load_yaml_config(yaml_path))
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    known = {f.name for f in dataclasses.fields(PretrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        source = f"{yaml_path}: " if yaml_path else ""
        raise LangsampError(f"{source}unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if isinstance(values.get("adam_betas"), list):
        values["adam_betas"] = tuple(values["adam_betas"])
    return PretrainConfig(**values).validate()
