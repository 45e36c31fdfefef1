"""Conformance with the official LangSAMP evaluation code (cisnlp/LangSAMP, ``evaluation/``).

Each test runs a small re-implementation of the official code path next to ours on the same input
and compares the numbers (ids, texts, coordinates), not just that something runs.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from langsamp_cli.errors import LangsampError

# ---------------------------------------------------------------------------- 1. SIB-200 quoting
QUOTED_ROWS = [
    ("61", "science/technology", '"During his speech he said that ""Today Apple is going to reinvent the phone""."'),
    ("7", "travel", '"A walking safari (also called a ""bush walk"", ""hiking safari"") takes hours."'),
    ("12", "health", 'He said "hi" in the middle, which is literal.'),
    ("13", "sports", '"Quoted, without inner quotes"'),
    ("14", "politics", "  leading spaces stay, as pandas keeps them"),
    ("15", "geography", "Plain text with an apostrophe's mark."),
]


def _write_sib_split(path: Path, rows=QUOTED_ROWS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["index_id\tcategory\ttext", *("\t".join(row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _official_sib_read(path: Path) -> tuple[list[str], list[str]]:
    """evaluate_sib_all.py read_data: pandas, tab separated, bad lines skipped, str() of each text."""
    df = pd.read_csv(path, delimiter="\t", on_bad_lines="skip", engine="python")
    return [str(t) for t in df.text.values], [str(c) for c in df.category.values]


def test_sib200_reader_unquotes_like_the_official_pandas_reader(tmp_path: Path) -> None:
    from langsamp_cli.data.sib200 import read_sib200_tsv

    path = _write_sib_split(tmp_path / "eng_Latn" / "test.tsv")
    texts, categories = _official_sib_read(path)
    ours = read_sib200_tsv(path)
    assert ours.texts == texts
    assert ours.labels == categories
    assert ours.texts[0] == 'During his speech he said that "Today Apple is going to reinvent the phone".'


def test_similarity_reads_sib200_unquoted(tmp_path: Path) -> None:
    from langsamp_cli.data.multiparallel import load_multiparallel

    for lang in ("eng_Latn", "fra_Latn"):
        _write_sib_split(tmp_path / lang / "test.tsv")
    data = load_multiparallel(tmp_path, ["eng_Latn", "fra_Latn"])
    official, _ = _official_sib_read(tmp_path / "eng_Latn" / "test.tsv")
    assert data.sentences["fra_Latn"]["test:61"] == official[0]
    assert set(data.sentences["eng_Latn"].values()) == set(official)


def test_sib200_unbalanced_quote_is_an_error_not_a_merged_row(tmp_path: Path) -> None:
    from langsamp_cli.data.sib200 import read_sib200_tsv

    path = _write_sib_split(tmp_path / "x" / "test.tsv",
                            [("1", "travel", '"an open quote that never closes'), ("2", "health", "next row")])
    with pytest.raises(LangsampError, match=r"test\.tsv:2: malformed quoting"):
        read_sib200_tsv(path)
    closed_later = _write_sib_split(tmp_path / "y" / "test.tsv", [("1", "travel", '"opens here'),
                                                                   ("2", "health", 'closes here"')])
    with pytest.raises(LangsampError, match=r"test\.tsv:2: a quoted field runs over 2 lines"):
        read_sib200_tsv(closed_later)


def test_sib200_row_pandas_would_drop_is_an_error(tmp_path: Path) -> None:
    from langsamp_cli.data.sib200 import read_sib200_tsv

    path = _write_sib_split(tmp_path / "x" / "test.tsv", [*QUOTED_ROWS, ("9", "travel", '"Quoted" then text')])
    assert len(_official_sib_read(path)[0]) == len(QUOTED_ROWS)  # the official reader silently loses the row
    with pytest.raises(LangsampError, match=rf"test\.tsv:{len(QUOTED_ROWS) + 2}: malformed quoting"):
        read_sib200_tsv(path)


def test_sib200_reader_matches_pandas_on_every_real_file(shared_data: Path) -> None:
    from langsamp_cli.data.sib200 import read_sib200_tsv

    files = sorted((shared_data / "sib200" / "annotated").glob("*/*.tsv"))
    assert files
    differing = 0
    for path in files:
        official, _ = _official_sib_read(path)
        differing += sum(a != b for a, b in zip(official, read_sib200_tsv(path).texts))
    assert differing == 0


# ---------------------------------------------------------------------------- 2. max lengths
def test_classification_max_lengths_are_the_official_ones() -> None:
    from langsamp_cli.task_config import load_task_config

    assert load_task_config("sib200")["max_length"] == 160   # evaluate_sib_all.py --max_length default
    assert load_task_config("taxi1500")["max_length"] == 100  # taxi1500/evaluate_all.py encode()
    assert load_task_config("ner")["max_length"] == 256       # evaluate_all_ner.py --max_seq_len default
    assert load_task_config("pos")["max_length"] == 256
    assert load_task_config("sib200")["max_grad_norm"] == 0  # the official classification loops never clip


# ---------------------------------------------------------------------------- 3./4. tagging inputs
def _official_split(tokenizer, words: list[str], tags: list[str], max_len: int) -> list[list[tuple[str, str]]]:
    """evaluate_all_{pos,ner}.py tokenize_preprocess: a new sentence whenever the next word would overflow."""
    budget = max_len - 3  # XLM-R / RoBERTa tokenizers
    sentences: list[list[tuple[str, str]]] = [[]]
    counter = 0
    for word, tag in zip(words, tags):
        n = len(tokenizer.tokenize(word))
        if (n == 0 or n > budget) and len(word) != 0:
            word, n = tokenizer.unk_token, 1
        if counter + n > budget:
            sentences.append([])
            counter = n
        else:
            counter += n
        sentences[-1].append((word, tag))
    return sentences


def _official_features(tokenizer, sentence: list[tuple[str, str]], max_len: int) -> tuple[list[int], list[int]]:
    """utils_tag.convert_examples_to_features with sep_token_extra=True (as run_tag.py calls it), unpadded.

    Returns (input_ids, positions that carry a label).
    """
    tokens, labelled = [], []
    for word, _ in sentence:
        pieces = tokenizer.tokenize(word)
        if len(word) != 0 and not pieces:
            pieces = [tokenizer.unk_token]
        labelled.append(len(tokens) + 1)
        tokens.extend(pieces)
    tokens = tokens[: max_len - 3]
    tokens = [tokenizer.cls_token, *tokens, tokenizer.sep_token, tokenizer.sep_token]
    return tokenizer.convert_tokens_to_ids(tokens), [p for p in labelled if p < len(tokens) - 2]


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def test_tagging_ids_equal_the_official_features(tiny_tokenizer) -> None:
    from langsamp_cli.tasks.tagging import TaggingTask

    words = "The quick brown fox jumps over the lazy dog near the river bank .".split()
    tags = ["O"] * len(words)
    [official] = _official_split(tiny_tokenizer, words, tags, 256)
    ids, labelled = _official_features(tiny_tokenizer, official, 256)
    [ours] = TaggingTask("ner", max_length=256).encode(tiny_tokenizer, words)
    assert ours.input_ids == ids
    assert ours.input_ids[-2:] == [tiny_tokenizer.sep_token_id] * 2
    assert ours.first_pieces == labelled


def test_long_sentence_is_split_like_the_official_preprocessing(tiny_tokenizer) -> None:
    from langsamp_cli.tasks.tagging import TaggingTask

    rng = random.Random(3)
    vocabulary = "in the beginning was word and people river bank quick brown fox lazy dog valid email".split()
    words = [rng.choice(vocabulary) for _ in range(400)]
    words[17] = "x" * 300  # more pieces than fit: one <unk>, as officially
    tags = [f"T{i % 5}" for i in range(400)]
    official = _official_split(tiny_tokenizer, words, tags, 64)
    parts = TaggingTask("pos", max_length=64).encode(tiny_tokenizer, words)
    assert len(parts) == len(official) > 1
    for part, sentence in zip(parts, official):
        ids, labelled = _official_features(tiny_tokenizer, sentence, 64)
        assert part.input_ids == ids and len(ids) <= 64
        assert part.first_pieces == labelled
        assert [t for _, t in sentence] == tags[part.words]
    assert sum(len(p.first_pieces) for p in parts) == 400  # every word is predicted (and scored)


def test_long_sentence_every_word_is_scored(tiny_model_dir: Path, tiny_tokenizer) -> None:
    from langsamp_cli.data.conll import TaggedSentences
    from langsamp_cli.finetune import Runtime
    from langsamp_cli.tasks.tagging import TaggingTask

    task = TaggingTask("pos", max_length=32)
    words = ["the", "people", "river", "bank"] * 50
    data = TaggedSentences([words, ["dog"]], [["NOUN"] * 200, ["NOUN"]], source="mem")
    task.fit_labels(data)
    model = task.build_model(str(tiny_model_dir))
    runtime = Runtime("cpu", "no")
    predicted, parts = task.predict(model, tiny_tokenizer, data.tokens, runtime)
    assert sum(map(len, predicted)) == 201
    metrics, extra = task.evaluate(model, tiny_tokenizer, data, runtime)
    assert metrics["accuracy"] == 1.0  # one label: every one of the 201 words is right, none dropped
    assert extra["split_sentences"] == 1 and extra["parts"] == len(parts) > 2


# ---------------------------------------------------------------------------- 5. PCA
def test_pca_is_the_exact_pca_on_a_610_row_table() -> None:
    from langsamp_cli.analysis.pca import pca_2d

    table = np.random.default_rng(0).normal(size=(610, 768))
    coords, ratio = pca_2d(table)
    centered = table - table.mean(axis=0)
    u, s, vt = np.linalg.svd(centered, full_matrices=False)
    exact = centered @ vt[:2].T
    signs = np.sign((coords * exact).sum(axis=0))  # a component's sign is arbitrary
    np.testing.assert_allclose(coords * signs, exact, atol=1e-8)
    np.testing.assert_allclose(ratio, (s[:2] ** 2) / (s ** 2).sum(), rtol=1e-10)


# ---------------------------------------------------------------------------- 6. --max-eval-samples
def test_max_eval_samples_is_a_seeded_stratified_sample() -> None:
    from langsamp_cli.data.taxi1500 import LabelledTexts
    from langsamp_cli.tasks.transfer import take_sample

    classes = ["science/technology", "travel", "politics", "sports", "health", "entertainment", "geography"]
    sizes = [51, 40, 30, 25, 25, 20, 13]  # sorted by category like the SIB-200 test files
    labels = [c for c, n in zip(classes, sizes) for _ in range(n)]
    data = LabelledTexts([f"t{i}" for i in range(len(labels))], labels, [str(i) for i in range(len(labels))], "x")
    sample = take_sample(data, 20)
    counts = Counter(sample.labels)
    assert len(sample) == 20 and set(counts) == set(classes)  # the first 20 rows would be one class
    exact = {c: 20 * n / len(labels) for c, n in zip(classes, sizes)}
    assert all(abs(counts[c] - exact[c]) < 1 for c in classes)
    assert sample.notes["sample"] == {"seed": 0, "n": 20, "of": len(labels), "method": "stratified",
                                      "per_class": dict(sorted(counts.items()))}
    assert take_sample(data, 20).ids == sample.ids and sample.ids == sorted(sample.ids, key=int)
    assert take_sample(data, 20, seed=1).ids != sample.ids
    assert take_sample(data, None) is data and take_sample(data, 10_000) is data


def test_max_eval_samples_for_tagging_is_a_seeded_random_sample() -> None:
    from langsamp_cli.data.conll import TaggedSentences
    from langsamp_cli.tasks.transfer import take_sample

    data = TaggedSentences([[f"w{i}"] for i in range(50)], [["O"]] * 50, source="x", lines=list(range(1, 51)),
                           tag_lines=[[i] for i in range(1, 51)])
    sample = take_sample(data, 10)
    assert len(sample) == 10 and sample.tokens != data.tokens[:10]
    assert sample.lines == [int(t[0][1:]) + 1 for t in sample.tokens]
    assert sample.notes["sample"] == {"seed": 0, "n": 10, "of": 50, "method": "random"}


# ---------------------------------------------------------------------------- 7. pretraining chunks
def _corpus(tmp_path: Path) -> tuple[Path, list[str]]:
    from helpers import SAMPLE_TEXTS

    lines = [f"{s} {i}" for i in range(6) for s in SAMPLE_TEXTS["eng_Latn"]]
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "eng_Latn.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root, lines


def _chunks(root: Path, tokenizer, chunking: str, count: int, max_seq_len: int = 16) -> list[list[int]]:
    from langsamp_cli.pretrain.corpus import ChunkSampler, scan_corpus

    sampler = ChunkSampler(scan_corpus(root), tokenizer, {"eng": 0}, {"Latn": 0}, max_seq_len, 0.3, seed=0,
                           chunking=chunking)
    return [sampler.next_example().input_ids for _ in range(count)]


def test_official_chunking_concatenates_sentences_each_in_bos_eos(tmp_path: Path, tiny_tokenizer) -> None:
    root, lines = _corpus(tmp_path)
    # run_mlm-style: tokenizer(lines) with special tokens, concatenated, cut into max_seq_len blocks
    stream = [t for line in lines for t in tiny_tokenizer(line)["input_ids"]]
    chunks = _chunks(root, tiny_tokenizer, "official", 5)
    assert chunks == [stream[i * 16:(i + 1) * 16] for i in range(5)]
    bos, eos = tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id
    assert chunks[0][0] == bos and sum(c.count(bos) for c in chunks) >= 2 and sum(c.count(eos) for c in chunks) >= 1
    assert any(c[0] != bos for c in chunks)  # blocks start mid-sentence


def test_langsamp_chunking_wraps_each_chunk_once(tmp_path: Path, tiny_tokenizer) -> None:
    root, lines = _corpus(tmp_path)
    stream = [t for line in lines for t in tiny_tokenizer(line, add_special_tokens=False)["input_ids"]]
    bos, eos = tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id
    chunks = _chunks(root, tiny_tokenizer, "langsamp", 5)
    assert chunks == [[bos, *stream[i * 14:(i + 1) * 14], eos] for i in range(5)]


def test_random_replacements_come_from_the_chosen_vocabulary(tiny_tokenizer) -> None:
    import torch

    from langsamp_cli.pretrain.collate import MLMCollator, mask_tokens

    special = set(tiny_tokenizer.all_special_ids)
    ordinary = MLMCollator(tiny_tokenizer, random_from="ordinary").random_pool.tolist()
    everything = MLMCollator(tiny_tokenizer, random_from="all").random_pool.tolist()
    assert everything == list(range(len(tiny_tokenizer)))  # DataCollatorForLanguageModeling: randint(len(tokenizer))
    assert ordinary == [i for i in range(len(tiny_tokenizer)) if i not in special]

    ids = torch.full((64, 64), 10, dtype=torch.long)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    replaced = {}
    for name, pool in (("ordinary", ordinary), ("all", everything)):
        generator = torch.Generator().manual_seed(0)
        corrupted, labels = mask_tokens(ids, maskable, tiny_tokenizer.mask_token_id, torch.tensor(pool), 0.9,
                                        generator)
        picked = corrupted[(labels != -100) & (corrupted != tiny_tokenizer.mask_token_id) & (corrupted != 10)]
        replaced[name] = set(picked.tolist())
    assert not replaced["ordinary"] & special
    assert replaced["all"] & special


def test_chunking_setting_is_checked() -> None:
    from langsamp_cli.pretrain.config import build_config

    assert build_config("demo").chunking == "langsamp"
    assert build_config("demo", None, {"chunking": "official"}).chunking == "official"
    with pytest.raises(LangsampError, match="--chunking: 'sentences' is not one of langsamp, official"):
        build_config("demo", None, {"chunking": "sentences"})


def test_pretraining_runs_with_official_chunking(tmp_path: Path, tiny_model_dir: Path) -> None:
    import math

    import torch

    from langsamp_cli.pretrain.config import build_config
    from langsamp_cli.pretrain.run_dir import read_log
    from langsamp_cli.pretrain.trainer import pretrain

    root, _ = _corpus(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = build_config("demo", None, dict(
            corpus=str(root), from_scratch=True, tokenizer=str(tiny_model_dir), output_dir=str(tmp_path / "run"),
            max_seq_len=16, batch_size=2, grad_accum=1, max_steps=2, save_every=2, log_every=1, seed=3,
            chunking="official"))
        result = pretrain(config, progress=False)
    finally:
        torch.set_num_threads(threads)
    losses = [r["loss"] for r in read_log(result.output_dir / "log.jsonl") if "loss" in r]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
