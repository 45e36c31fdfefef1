"""Train a SentencePiece-style Unigram tokenizer (XLM-R special tokens) for from-scratch runs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import XLMRobertaTokenizer

XLMR_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def train_unigram_tokenizer(
    texts: Iterable[str], vocab_size: int, output_dir: str | Path | None = None
) -> XLMRobertaTokenizer:
    """Learn a Unigram vocabulary on ``texts`` and wrap it as an XLM-R tokenizer.

    The special-token layout (<s>=0, <pad>=1, </s>=2, <unk>=3, <mask> last) is XLM-R's, so any
    code written for XLM-R checkpoints works unchanged on models trained with it.
    """
    backend = Tokenizer(models.Unigram())
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=XLMR_SPECIALS, unk_token="<unk>", show_progress=False
    )
    backend.train_from_iterator(texts, trainer)
    vocab = [tuple(piece) for piece in json.loads(backend.to_str())["model"]["vocab"]]
    tokenizer = XLMRobertaTokenizer(vocab=vocab)
    if output_dir is not None:
        tokenizer.save_pretrained(str(output_dir))
    return tokenizer
