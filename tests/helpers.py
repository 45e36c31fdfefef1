"""Plain helpers shared by several test modules: sample texts, small data writers, independent references.

Fixtures live in conftest.py; everything here is an ordinary function or constant, imported as
``from helpers import ...`` (pytest puts tests/ on sys.path, the folder has no __init__.py).
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import pickle
import random
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LANGSAMP_SHARED_DATA", REPO.parent / "shared" / "data"))

# A few real sentences per script so the tokenizer sees every script the tests use.
SAMPLE_TEXTS = {
    "eng_Latn": [
        "In the beginning was the word, and the word was with the people.",
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Please enter a valid email address and try again later.",
    ],
    "spa_Latn": [
        "En el principio era la palabra y la palabra estaba con la gente.",
        "Por favor, introduzca una dirección de correo electrónico válida.",
    ],
    "rus_Cyrl": [
        "В начале было слово, и слово было у людей.",
        "Пожалуйста, введите правильный адрес электронной почты.",
    ],
    "zho_Hani": ["太初有道，道与人同在。", "请输入有效的电子邮件地址，然后重试。"],
    "arb_Arab": ["في البدء كانت الكلمة، والكلمة كانت مع الناس.", "يرجى إدخال عنوان بريد إلكتروني صالح."],
    "hin_Deva": ["आदि में वचन था, और वचन लोगों के साथ था।", "कृपया एक मान्य ईमेल पता दर्ज करें।"],
    "ell_Grek": ["Στην αρχή ήταν ο λόγος.", "Παρακαλώ εισάγετε μια έγκυρη διεύθυνση email."],
}


def all_sample_texts() -> list[str]:
    return [s for sents in SAMPLE_TEXTS.values() for s in sents] * 20


def write_sample_corpus(root: Path, langs: tuple[str, ...] = ("eng_Latn", "spa_Latn", "rus_Cyrl", "ell_Grek"),
                        first: int = 0, repeats: int = 12) -> Path:
    """One numbered file per language-script (another ``first`` gives the same sizes, other text)."""
    root.mkdir(parents=True, exist_ok=True)
    for lang_script in langs:
        lines = [f"{s} {i}" for i in range(first, first + repeats) for s in SAMPLE_TEXTS[lang_script]]
        (root / f"{lang_script}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def save_small_xlmr_config(path: Path, hidden_size: int = 32, layers: int = 2) -> Path:
    """A tiny XLM-R architecture for from-scratch pretraining tests (seconds per run)."""
    from transformers import XLMRobertaConfig

    XLMRobertaConfig(vocab_size=10, hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden_size, max_position_embeddings=66,
                     type_vocab_size=1).save_pretrained(path)
    return path


# ---------------------------------------------------------------------------- sentence vectors / retrieval
def brute_force(model_dir: Path, sentences: list[str], layer: int, drop_special: bool = False) -> np.ndarray:
    """Independent reference: one sentence at a time (no padding), full model, all hidden states."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    rows = []
    for sentence in sentences:
        ids = [tokenizer.cls_token_id] + tokenizer.convert_tokens_to_ids(tokenizer.tokenize(sentence)) + [
            tokenizer.sep_token_id
        ]
        with torch.no_grad():
            states = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        tokens = states[layer][0].numpy()
        rows.append(tokens[1:-1].mean(axis=0) if drop_special else tokens.mean(axis=0))
    return np.stack(rows)


ENGLISH_WORDS = "the a word people river dog fox light day night water house bread stone road king city".split()
OTHER_WORDS = {
    "deu_Latn": "der die das Wort Leute Fluss Hund Licht Tag Nacht Wasser Haus Brot Stein".split(),
    "fra_Latn": "le la les mot gens fleuve chien lumière jour nuit eau maison pain pierre".split(),
    "rus_Cyrl": "слово люди река собака свет день ночь вода дом хлеб камень дорога царь город".split(),
}


def sentences(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + f" {i}" for i in range(n)]


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def run_cli(args: list[str]) -> int:
    """`langsamp ARGS` in process; the exit code."""
    from langsamp_cli.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code or 0


def run_cli_captured(args: list) -> tuple[int, str]:
    """`langsamp ARGS` in process, its exit code and what it wrote to stderr (for module-scoped fixtures, where
    capsys is not available)."""
    import contextlib
    import io

    from langsamp_cli.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, buffer.getvalue()


def hand_macro_f1(gold: list[str], predicted: list[str]) -> float:
    """Independent of scikit-learn: mean over the labels seen in gold or predictions of 2TP / (2TP + FP + FN);
    0 for a class never hit."""
    scores = []
    for label in sorted(set(gold) | set(predicted)):
        tp = sum(g == p == label for g, p in zip(gold, predicted))
        fp = sum(p == label != g for g, p in zip(gold, predicted))
        fn = sum(g == label != p for g, p in zip(gold, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def results_of(output_dir: Path) -> dict:
    [path] = list(output_dir.rglob("results.json"))
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- SIB-200 / similarity
def write_sib(root: Path, lang: str, rows: list[tuple[str, str]], split: str = "dev") -> None:
    folder = root / lang
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["index_id\tcategory\ttext", *(f"{i}\tscience\t{t}" for i, t in rows)]
    (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def sib_fixture(root: Path, n: int = 12) -> dict[str, list[str]]:
    """eng/rus/arb plus Chinese under the FLORES id zho_Hans; sentence i is 'the same' in every language."""
    texts = {}
    for lang, key in (("eng_Latn", "eng_Latn"), ("rus_Cyrl", "rus_Cyrl"), ("zho_Hans", "zho_Hani"),
                      ("arb_Arab", "arb_Arab")):
        samples = SAMPLE_TEXTS[key]
        texts[lang] = [f"{samples[i % len(samples)]} {i}" for i in range(n)]
        write_sib(root, lang, [(str(100 + i), t) for i, t in enumerate(texts[lang])])
    return texts


def invoke_cli(args: list[str]):
    """The Typer app through CliRunner (result has exit_code and output)."""
    from typer.testing import CliRunner

    from langsamp_cli.cli import app

    return CliRunner().invoke(app, args)


def read_matrix(path: Path) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(path.open(encoding="utf-8")))
    return rows[0][1:], np.array([[float(v) if v else np.nan for v in row[1:]] for row in rows[1:]])


# ---------------------------------------------------------------------------- pretraining corpus
BOS, EOS = 0, 2


class CharTokenizer:
    """One id per character (ord + 10): token streams are predictable, so chunk contents can be checked exactly."""

    bos_token_id, eos_token_id = BOS, EOS

    def __call__(self, lines: list[str], add_special_tokens: bool = False) -> dict[str, list[list[int]]]:
        assert not add_special_tokens
        return {"input_ids": [[ord(c) + 10 for c in line] for line in lines]}


def char_ids(text: str) -> list[int]:
    return [ord(c) + 10 for c in text]


def write_corpus(root: Path, languages: dict[str, list[str]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for lang_script, lines in languages.items():
        (root / f"{lang_script}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


MAPS = ({"deu": 0, "eng": 1, "rus": 2}, {"Cyrl": 0, "Latn": 1})


# ---------------------------------------------------------------------------- official checkpoints
LANG2ID = {"arb": 0, "eng": 1, "rus": 2, "zho": 3}
SCRIPT2ID = {"Arab": 0, "Cyrl": 1, "Hani": 2, "Latn": 3}
TOKEN_TYPE = "roberta.embeddings.token_type_embeddings.weight"
LAYER_WEIGHT = "roberta.encoder.layer.3.attention.self.query.weight"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model")


def write_official(tiny_model_dir: Path, folder: Path, drop: tuple[str, ...] = (TOKEN_TYPE,),
                   **config_fields) -> Path:
    """The official layout: the MLM state dict with `roberta.` keys, the two tables under roberta.embeddings.*,
    the official config flags, full_dicts.pkl, and no token-type embedding (the official class has none)."""
    from safetensors.torch import save_file
    from transformers import XLMRobertaForMaskedLM

    from langsamp_cli.official_format import OFFICIAL_LANG_KEY, OFFICIAL_SCRIPT_KEY

    mlm = XLMRobertaForMaskedLM.from_pretrained(str(tiny_model_dir))
    state = {k: v.clone().contiguous() for k, v in mlm.state_dict().items() if k not in drop}
    generator = torch.Generator().manual_seed(3)
    hidden = mlm.config.hidden_size
    state[OFFICIAL_LANG_KEY] = torch.randn(len(LANG2ID), hidden, generator=generator)
    state[OFFICIAL_SCRIPT_KEY] = torch.randn(len(SCRIPT2ID), hidden, generator=generator)
    state["lm_head.decoder.weight"] = state["roberta.embeddings.word_embeddings.weight"].clone()  # saved untied
    folder.mkdir(parents=True)
    save_file(state, str(folder / "model.safetensors"))
    config = mlm.config.to_dict()
    config.update(architectures=["XLMRobertaDecoupledForMaskedLM"], use_lang_embedding=True,
                  use_script_embedding=True, lang_size=len(LANG2ID), script_size=len(SCRIPT2ID),
                  decouple_at_input_embeddings=False, **config_fields)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    id2lang = {v: k for k, v in LANG2ID.items()}
    id2script = {v: k for k, v in SCRIPT2ID.items()}
    (folder / "full_dicts.pkl").write_bytes(pickle.dumps([id2lang, id2script, LANG2ID, SCRIPT2ID]))
    for name in TOKENIZER_FILES:
        if (tiny_model_dir / name).is_file():
            shutil.copy(tiny_model_dir / name, folder / name)
    return folder


def load_script(path: Path) -> types.ModuleType:
    """Import a script from scripts/ by its file name (an ordinary import, so the module registers itself)."""
    sys.path.insert(0, str(path.parent))
    try:
        return importlib.import_module(path.stem)
    finally:
        sys.path.remove(str(path.parent))


def small_pretrain_settings(corpus: Path, arch: Path, tokenizer: Path, output_dir: Path, **overrides) -> dict:
    """A few-step from-scratch run of the small architecture on the sample corpus (seconds)."""
    settings = dict(corpus=str(corpus), model=str(arch), from_scratch=True, tokenizer=str(tokenizer),
                    output_dir=str(output_dir), max_seq_len=32, batch_size=2, grad_accum=2, max_steps=6,
                    save_every=2, keep_last=2, log_every=1, warmup_steps=2, lr=1e-3, seed=5)
    return {**settings, **overrides}
