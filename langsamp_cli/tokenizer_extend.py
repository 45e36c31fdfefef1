"""`langsamp tokenizer extend`: add a corpus's pieces to a SentencePiece Unigram tokenizer, the way Glot500 did.

1. Sample training lines from the corpus (the pretraining layout) with the pretraining temperature: language i
   gets ``sample_lines * p_i`` lines, p_i ∝ lines_i ** alpha (its first training lines, after the held-out ones).
2. Train a Unigram model on them (``tokenizer.unigram_vocab``: deterministic, byte-identical reruns).
3. Append the trained pieces the base lacks, highest score first, with their scores, after every id the base
   has (its ``<mask>`` included): each base piece keeps its id. Glot500-m instead rebuilt the SentencePiece model,
   which moved ``<mask>`` to the end; continued pretraining matches rows by piece, so both layouts work.
4. Measure the base and the extended tokenizer on held-out lines of every language: tokens per word (words are
   whitespace-separated units, so for scripts written without spaces read it as tokens per phrase) and the
   ``<unk>`` rate, plus how many new pieces each script got.

The result loads with ``AutoTokenizer.from_pretrained(OUT)``; ``extension.json`` beside it records the inputs,
the settings and the table.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_dir, atomic_write_json
from langsamp_cli.settings import setting

RECORD_FILE = "extension.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


@dataclass
class ExtendSettings:
    base: str = setting("Tokenizer to extend: a model or tokenizer folder, or a hub name (a SentencePiece Unigram "
                        "tokenizer such as XLM-R's or one langsamp trained).", "--base", path=False)
    add: int = setting("New pieces to append at most (the highest-scoring trained pieces the base lacks).",
                       "--add", default=None, positive=True)
    output_dir: str = setting("Folder for the extended tokenizer (AutoTokenizer loads it).", "--output-dir", "-o",
                              default=None, path=True)
    corpus: str | None = setting("Pretraining-layout corpus: one xxx_Scrp text file (.txt/.gz) or folder per "
                                 "language-script (default: the bundled demo corpus).", path=True)
    languages: list[str] | None = setting("Use these language-scripts only (comma list or file; default: all).")
    alpha: float = setting("Sampling temperature of the training lines: p_i ∝ lines_i ** alpha (as pretraining).",
                           default=0.3, positive=True)
    sample_lines: int = setting("Training lines in all, shared among languages by the temperature.",
                                default=1_000_000, positive=True)
    train_vocab_size: int | None = setting("Size of the Unigram model trained on the corpus (default: twice --add).",
                                           positive=True)
    heldout_lines: int = setting("Lines per language kept out of training and used for the fertility table (at "
                                 "most a tenth of a language's lines).", default=200, positive=True)

    def check(self) -> ExtendSettings:
        if not self.base:
            raise LangsampError("--base is required: the tokenizer to extend (a folder or a hub name)")
        if not self.add:
            raise LangsampError("--add is required: how many new pieces to append at most")
        if not self.output_dir:
            raise LangsampError("--output-dir is required: where the extended tokenizer goes")
        if self.train_vocab_size is not None and self.train_vocab_size < self.add:
            raise LangsampError(f"--train-vocab-size {self.train_vocab_size} is smaller than --add {self.add}; "
                                "train at least as many pieces as you want to add")
        return self


@dataclass
class LanguageFertility:
    lang_script: str
    lines: int
    words: int
    base_tokens: int
    base_unk: int
    extended_tokens: int
    extended_unk: int

    @property
    def base_fertility(self) -> float:
        return self.base_tokens / max(self.words, 1)

    @property
    def extended_fertility(self) -> float:
        return self.extended_tokens / max(self.words, 1)

    @property
    def base_unk_rate(self) -> float:
        return self.base_unk / max(self.base_tokens, 1)

    @property
    def extended_unk_rate(self) -> float:
        return self.extended_unk / max(self.extended_tokens, 1)


@dataclass
class Extension:
    output_dir: Path
    base_size: int
    size: int
    added: int
    asked: int
    trained_pieces: int
    new_per_script: dict[str, int]
    fertility: list[LanguageFertility] = field(default_factory=list)
    training_lines: dict[str, int] = field(default_factory=dict)

    def record(self, settings: ExtendSettings) -> dict[str, Any]:
        return {"settings": asdict(settings), "base_vocab_size": self.base_size, "vocab_size": self.size,
                "added_pieces": self.added, "asked": self.asked, "trained_pieces": self.trained_pieces,
                "new_pieces_per_script": self.new_per_script, "training_lines": self.training_lines,
                "fertility": [{**asdict(row), "base_tokens_per_word": round(row.base_fertility, 4),
                               "extended_tokens_per_word": round(row.extended_fertility, 4),
                               "base_unk_rate": round(row.base_unk_rate, 6),
                               "extended_unk_rate": round(row.extended_unk_rate, 6)} for row in self.fertility]}


def extend_tokenizer(settings: ExtendSettings, say=lambda text: None) -> Extension:
    """Build the extended tokenizer of ``settings`` in ``output_dir`` (atomically) and measure it."""
    from langsamp_cli.pretrain.corpus import scan_corpus
    from langsamp_cli.pretrain.run_dir import default_corpus_dir

    settings.check()
    out = Path(settings.output_dir)
    if out.exists() and any(out.iterdir()):
        raise LangsampError(f"--output-dir {out}: exists and is not empty; pick a new folder")
    base = load_base(settings.base)
    vocab, specials = unigram_model(base, settings.base)
    corpus = scan_corpus(settings.corpus or default_corpus_dir(), settings.languages,
                         eval_lines=settings.heldout_lines)
    lines_by_language = training_lines(corpus, settings.alpha, settings.sample_lines)
    say(f"training a {settings.train_vocab_size or 2 * settings.add:,}-piece Unigram model on "
        f"{sum(map(len, lines_by_language.values())):,} lines of {len(lines_by_language)} language-scripts ...")
    from langsamp_cli.tokenizer import unigram_vocab

    trained = unigram_vocab([line for lines in lines_by_language.values() for line in lines],
                            settings.train_vocab_size or 2 * settings.add)
    new = new_pieces(vocab, trained, specials, settings.add)
    with atomic_dir(out) as tmp:
        extended = save_extended(base, vocab, new, tmp)
        fertility = measure(corpus, base, extended)
        result = Extension(out, len(base), len(extended), len(new), settings.add, len(trained),
                           pieces_per_script(piece for piece, _ in new), fertility,
                           {k: len(v) for k, v in lines_by_language.items()})
        atomic_write_json(tmp / RECORD_FILE, result.record(settings))
    return result


def load_base(source: str) -> Any:
    from transformers import AutoTokenizer

    from langsamp_cli.model import quiet_transformers

    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError) as err:
        raise LangsampError(f"--base {source}: no tokenizer found ({str(err).splitlines()[0]}); pass a model or "
                            "tokenizer folder, or a hub name") from None


def unigram_model(tokenizer: Any, source: str) -> tuple[list[list[Any]], set[str]]:
    """The base's Unigram pieces with scores, in id order, padded to every id it has (added tokens such as
    ``<mask>`` get a score-0 entry at their id, as XLM-R's own file has), and its special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    data = json.loads(backend.to_str()) if backend is not None else {}
    if (data.get("model") or {}).get("type") != "Unigram":
        kind = (data.get("model") or {}).get("type", type(tokenizer).__name__)
        raise LangsampError(f"--base {source}: a {kind} tokenizer; only SentencePiece Unigram tokenizers (XLM-R, "
                            "Glot500-m, langsamp's own) can be extended")
    vocab = [list(entry) for entry in data["model"]["vocab"]]
    added = sorted((token["id"], token["content"]) for token in data.get("added_tokens", []))
    for token_id, content in added:
        if token_id == len(vocab):
            vocab.append([content, 0.0])
        elif token_id > len(vocab) or vocab[token_id][0] != content:
            raise LangsampError(f"--base {source}: added token {content!r} at id {token_id} does not follow the "
                                "Unigram vocabulary; extend a plain SentencePiece tokenizer")
    if len(vocab) != len(tokenizer):
        raise LangsampError(f"--base {source}: {len(tokenizer):,} ids but {len(vocab):,} pieces in its model")
    return vocab, set(tokenizer.all_special_tokens)


def training_lines(corpus: Any, alpha: float, budget: int) -> dict[str, list[str]]:
    """Each language's first ``budget * p_i`` training lines (at least one, at most what it has)."""
    from langsamp_cli.pretrain.corpus import read_training, sampling_probabilities

    sources = list(corpus.sources.values())
    probs = sampling_probabilities([s.train_lines for s in sources], alpha)
    return {source.lang_script: read_training(source, min(source.train_lines, max(1, round(budget * prob))))
            for source, prob in zip(sources, probs)}


def new_pieces(vocab: list[list[Any]], trained: list[tuple[str, float]], specials: set[str], limit: int
               ) -> list[tuple[str, float]]:
    """Trained pieces the base lacks, highest score first (ties: the trainer's order), at most ``limit``."""
    known = {piece for piece, _ in vocab} | specials
    order = sorted(range(len(trained)), key=lambda i: (-trained[i][1], i))
    picked = [trained[i] for i in order if trained[i][0] not in known and trained[i][0] not in ("<s>", "</s>")]
    return [(piece, float(score)) for piece, score in picked[:limit]]


def save_extended(base: Any, vocab: list[list[Any]], new: list[tuple[str, float]], target: Path) -> Any:
    """Write base + ``new`` as a tokenizer folder in ``target``; returns it loaded back with AutoTokenizer."""
    from transformers import AutoTokenizer

    from langsamp_cli.model import quiet_transformers

    with tempfile.TemporaryDirectory() as scratch, quiet_transformers():
        base.save_pretrained(scratch)
        data = json.loads(base.backend_tokenizer.to_str())
        data["model"]["vocab"] = vocab + [[piece, score] for piece, score in new]
        (Path(scratch) / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        for path in Path(scratch).iterdir():  # a slow-tokenizer file would still describe the base vocabulary
            if path.name not in TOKENIZER_FILES and path.name != "special_tokens_map.json":
                path.unlink()
        extended = AutoTokenizer.from_pretrained(scratch)
        extended.save_pretrained(str(target))
    return AutoTokenizer.from_pretrained(str(target))


def pieces_per_script(pieces: Any) -> dict[str, int]:
    from langsamp_cli.languages import detect_script

    counts: Counter[str] = Counter()
    for piece in pieces:
        text = piece.replace("▁", "")
        try:
            counts[detect_script(text)] += 1
        except LangsampError:  # no letters: digits, punctuation, symbols
            counts["Zyyy"] += 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def measure(corpus: Any, base: Any, extended: Any) -> list[LanguageFertility]:
    """Tokens per word and <unk> counts of both tokenizers on each language's held-out lines, worst base first."""
    from langsamp_cli.pretrain.corpus import read_heldout

    rows = []
    for source in corpus.sources.values():
        lines = read_heldout(source)
        if not lines:
            continue
        words = sum(len(line.split()) for line in lines)
        counts = [_token_counts(tokenizer, lines) for tokenizer in (base, extended)]
        rows.append(LanguageFertility(source.lang_script, len(lines), words, *counts[0], *counts[1]))
    return sorted(rows, key=lambda row: (-row.base_fertility, row.lang_script))


def _token_counts(tokenizer: Any, lines: list[str]) -> tuple[int, int]:
    ids = tokenizer(lines, add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    return sum(map(len, ids)), sum(row.count(unk) for row in ids)
