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
from langsamp_cli.variants import variant_name

MIXED_PRECISION = ("no", "bf16", "fp16")
TINY_MODEL = "tiny"
INIT_METHODS = ("random", "donor", "mean")   # --init-new-languages


@dataclass
class PretrainConfig:
    # data
    corpus: str | None = None                 # Glot500-c style directory; None = the bundled demo corpus
    languages: list[str] | None = None        # restrict to these language-scripts (None = all in the corpus)
    alpha: float = 0.3                        # sampling temperature: p_i ∝ n_i ** alpha
    max_seq_len: int = 512                    # tokens per training chunk, <s> and </s> included
    mlm_probability: float = 0.15
    chunking: str = "langsamp"                # chunk layout: langsamp | official (see pretrain/corpus.py CHUNKING)
    cache_bytes: int = 64 * 2**20             # languages up to this raw size are tokenized once, kept in memory
    # model
    model: str = "xlm-roberta-base"           # checkpoint dir / hub name (continued) or config name (--from-scratch)
    from_scratch: bool = False                # `tiny` is always from scratch
    tokenizer: str | None = None              # from-scratch only; None = train a Unigram tokenizer on the corpus
    vocab_size: int = 8000                    # size of that trained tokenizer
    lang_emb: bool = True
    script_emb: bool = True
    lang_map: str | None = None               # official full_dicts.pkl/.json: reuse its lang2id/script2id
    init_new_languages: str = "random"         # rows of languages/scripts the initial checkpoint lacks:
                                              # random | donor | mean (pretrain/init_rows.py)
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
    compile: bool = False                     # torch.compile the model (opt-in: compiling takes minutes)
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
        return variant_name(self.lang_emb, self.script_emb)

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
            (self.chunking in ("langsamp", "official"),
             f"--chunking {self.chunking}: choose one of langsamp, official"),
            (self.lr > 0, f"--lr {self.lr}: must be positive"),
            (self.init_new_languages in INIT_METHODS,
             f"--init-new-languages {self.init_new_languages}: choose one of {', '.join(INIT_METHODS)}"),
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
    values = {key: check_type(key, value, yaml_path) for key, value in values.items()}
    return PretrainConfig(**values).validate()


# Expected kind of every setting: bool, int, float, str, optional str, list of str, two floats.
_OPTIONAL_STR = ("corpus", "tokenizer", "lang_map")
_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "a text value",
          "list": "a list of language-scripts like [eng_Latn, deu_Latn]", "pair": "two numbers like [0.9, 0.999]"}


def _kind(name: str) -> str:
    default = next(f.default for f in dataclasses.fields(PretrainConfig) if f.name == name)
    if name == "languages":
        return "list"
    if name == "adam_betas":
        return "pair"
    if name in _OPTIONAL_STR:
        return "str"
    return type(default).__name__


def _number(value: Any, whole: bool) -> int | float | None:
    """``value`` as a number (YAML reads ``5e-5`` as a string), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        return None
    if whole:
        return int(value) if float(value).is_integer() else None
    return float(value)


def check_type(name: str, value: Any, yaml_path: str | Path | None = None) -> Any:
    """The value converted to the setting's type; a wrong type is a one-line error naming key, value and type."""
    kind = _kind(name)
    converted: Any = None
    if value is None and (name in _OPTIONAL_STR or name == "languages"):
        return None
    if name == "mixed_precision" and value is False:  # YAML 1.1 reads a bare `no` as false
        return "no"
    if kind == "bool":
        converted = value if isinstance(value, bool) else None
    elif kind in ("int", "float"):
        converted = _number(value, whole=kind == "int")
    elif kind == "str":
        converted = value if isinstance(value, str) else None
    elif kind == "list":
        if isinstance(value, str):
            converted = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
            converted = list(value)
    elif kind == "pair" and isinstance(value, (list, tuple)) and len(value) == 2:
        numbers = [_number(item, whole=False) for item in value]
        converted = tuple(numbers) if None not in numbers else None
    if converted is None:
        raise LangsampError(f"{_where(name, yaml_path)}{name}: {value!r} is not {_WORDS[kind]} "
                            f"(expected {kind if kind != 'pair' else 'two floats'}); fix the value")
    return converted


def _where(name: str, yaml_path: str | Path | None) -> str:
    """``file:line: `` of the key in the YAML file (dashes or underscores), or '' when it came from a flag."""
    if yaml_path is None:
        return ""
    try:
        lines = Path(yaml_path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return f"{yaml_path}: "
    for number, line in enumerate(lines, 1):
        key = line.split(":", 1)[0].strip().strip("'\"").replace("-", "_")
        if ":" in line and key == name:
            return f"{yaml_path}:{number}: "
    return f"{yaml_path}: "
