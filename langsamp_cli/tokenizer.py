"""Train a SentencePiece Unigram tokenizer (XLM-R special tokens) for from-scratch runs.

Training is deterministic: the same texts give the same pieces, scores and ids in every process
and on every machine. The texts are sorted first (so the order they were read in does not
matter), every text is used (no random sentence sampling) and the trainer runs with a fixed
number of threads (its EM sums depend on how the work is split, not on timing). The Hugging Face
``tokenizers`` Unigram trainer is not used because it is not reproducible: its vocabulary comes
out in a different id order from run to run, even with RAYON_NUM_THREADS=1, and so does every
model trained on top of it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

from transformers import XLMRobertaTokenizer

from langsamp_cli.errors import LangsampError

XLMR_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
TRAINER_THREADS = 4  # part of the recipe: another thread count gives (slightly) other scores


def train_unigram_tokenizer(
    texts: Iterable[str], vocab_size: int, output_dir: str | Path | None = None, num_threads: int = TRAINER_THREADS
) -> XLMRobertaTokenizer:
    """Learn a Unigram vocabulary on ``texts`` and wrap it as an XLM-R tokenizer.

    The special-token layout (<s>=0, <pad>=1, </s>=2, <unk>=3, <mask> last) is XLM-R's, so any
    code written for XLM-R checkpoints works unchanged on models trained with it. The vocabulary
    may come out smaller than ``vocab_size`` on a small corpus.
    """
    vocab = unigram_vocab(texts, vocab_size, num_threads)
    tokenizer = XLMRobertaTokenizer(vocab=vocab)
    if output_dir is not None:
        tokenizer.save_pretrained(str(output_dir))
    return tokenizer


def limit_alphabet(lines: list[str], vocab_size: int) -> list[str]:
    """The lines, NFKC-normalised, without the characters that do not fit in the vocabulary.

    The trainer gives every character of its input a piece and refuses a vocabulary smaller than
    that. When a corpus has more distinct characters than half the vocabulary, only the most frequent
    ``vocab_size // 2`` are kept for training (ties broken by code point); the others become <unk>.
    """
    import unicodedata
    from collections import Counter

    lines = [unicodedata.normalize("NFKC", line) for line in lines]
    counts = Counter(ch for line in lines for ch in line if not ch.isspace())
    room = max(1, int(vocab_size) // 2)
    if len(counts) <= room:
        return lines
    kept = {ch for ch, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:room]}
    filtered = ("".join(ch for ch in line if ch in kept or ch.isspace()).strip() for line in lines)
    return [line for line in filtered if line]


def unigram_vocab(texts: Iterable[str], vocab_size: int, num_threads: int = TRAINER_THREADS) -> list[tuple[str, float]]:
    """(piece, score) in id order, specials first; identical for identical input."""
    import sentencepiece as spm

    lines = sorted(line.strip() for text in texts for line in str(text).splitlines() if line.strip())
    lines = limit_alphabet(lines, vocab_size)
    if not lines:
        raise LangsampError("no text to train a tokenizer on; check the corpus files")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=model, model_type="unigram", vocab_size=int(vocab_size),
            bos_id=0, pad_id=1, eos_id=2, unk_id=3, bos_piece="<s>", pad_piece="<pad>", eos_piece="</s>",
            unk_piece="<unk>", normalization_rule_name="nfkc", character_coverage=1.0,
            hard_vocab_limit=False, input_sentence_size=0, shuffle_input_sentence=False,
            max_sentence_length=1 << 20, num_threads=int(num_threads), minloglevel=2,
        )
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LangsampError(f"tokenizer training failed ({reason}); try another --vocab-size") from None
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = [(processor.id_to_piece(i), float(processor.get_score(i))) for i in range(processor.get_piece_size())]
    for position, special in enumerate(XLMR_SPECIALS):  # scores of control pieces are 0, as XLM-R's
        vocab[position] = (special, 0.0)
    return vocab
