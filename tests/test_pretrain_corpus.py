"""Corpus scanning, temperature sampling and one-language chunking (char-level fake tokenizer: exact checks)."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from helpers import BOS, EOS, MAPS, CharTokenizer, char_ids, write_corpus
from langsamp_cli.errors import LangsampError
from langsamp_cli.pretrain.corpus import (ChunkSampler, heldout_examples, language_id_from_name, sampling_probabilities,
                                          scan_corpus)



def test_language_id_from_name() -> None:
    assert language_id_from_name("eng_Latn.txt") == "eng_Latn"
    assert language_id_from_name("eng_Latn.txt.gz") == "eng_Latn"
    assert language_id_from_name("zho_Hani") == "zho_Hani"
    assert language_id_from_name("english.txt") is None
    assert language_id_from_name("eng_latn.txt") is None


def test_scan_counts_lines_files_gz_and_directories(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", {"eng_Latn": ["a b", "", "c d", "e"]})
    (root / "rus_Cyrl").mkdir()
    (root / "rus_Cyrl" / "part1.txt").write_text("один\nдва\n", encoding="utf-8")
    with gzip.open(root / "rus_Cyrl" / "part2.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("три\n\n")
    corpus = scan_corpus(root)
    assert corpus.languages == ["eng_Latn", "rus_Cyrl"]
    assert corpus.sources["eng_Latn"].lines == 3          # blank line not counted
    assert corpus.sources["rus_Cyrl"].lines == 3
    assert len(corpus.sources["rus_Cyrl"].files) == 2


def test_undecodable_lines_are_skipped_and_counted_per_file(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    (root / "eng_Latn.txt").write_bytes(b"good one\n\xff\xfe bad\ngood two\n\xc3\x28\n")
    corpus = scan_corpus(root)
    source = corpus.sources["eng_Latn"]
    assert source.lines == 2
    assert source.undecodable == {str(root / "eng_Latn.txt"): 2}
    sampler = ChunkSampler(corpus, CharTokenizer(), *MAPS, max_seq_len=2 + 15, alpha=0.3, seed=0)
    assert sampler.next_example().input_ids[1:-1] == char_ids("good one" + "good two")[:15]


def test_bad_corpus_inputs_are_one_line_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LangsampError, match="corpus is empty"):
        scan_corpus(empty)
    with pytest.raises(LangsampError, match="not found"):
        scan_corpus(tmp_path / "nope")
    bad = write_corpus(tmp_path / "bad", {"eng_Latn": ["x"]})
    (bad / "english.txt").write_text("hello\n")
    with pytest.raises(LangsampError, match=r"english\.txt: name is not a language-script id") as info:
        scan_corpus(bad)
    assert "\n" not in str(info.value)
    blank = write_corpus(tmp_path / "blank", {"eng_Latn": ["", " "]})
    with pytest.raises(LangsampError, match="no usable text.*eng_Latn: no non-empty UTF-8 line"):
        scan_corpus(blank)
    with pytest.raises(LangsampError, match="no data for requested language.*fra_Latn"):
        scan_corpus(bad.parent / "blank", languages=["fra_Latn"])


def test_language_without_text_is_skipped_with_reason(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", {"eng_Latn": ["hello"], "deu_Latn": [""]})
    corpus = scan_corpus(root)
    assert corpus.languages == ["eng_Latn"]
    assert corpus.skipped == {"deu_Latn": "no non-empty UTF-8 line"}


def test_sampling_probabilities_match_the_formula() -> None:
    sizes = [1000, 100, 10]
    probs = sampling_probabilities(sizes, 0.3)
    expected = np.array([1000 ** 0.3, 100 ** 0.3, 10 ** 0.3])
    np.testing.assert_allclose(probs, expected / expected.sum())
    np.testing.assert_allclose(sampling_probabilities(sizes, 1.0), np.array(sizes) / 1110)


def test_sampler_draws_languages_with_those_probabilities(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", {"eng_Latn": ["e" * 5] * 800, "deu_Latn": ["d" * 5] * 50,
                                         "rus_Cyrl": ["р" * 5] * 3})
    corpus = scan_corpus(root)
    sampler = ChunkSampler(corpus, CharTokenizer(), *MAPS, max_seq_len=10, alpha=0.3, seed=1)
    n = 6000
    counts = Counter(sampler.next_example().lang_script for _ in range(n))
    expected = sampling_probabilities([50, 800, 3], 0.3)  # sorted: deu, eng, rus
    observed = np.array([counts["deu_Latn"], counts["eng_Latn"], counts["rus_Cyrl"]]) / n
    np.testing.assert_allclose(observed, expected, atol=0.02)


def test_chunks_keep_one_language_use_all_tokens_in_order_and_wrap(tmp_path: Path) -> None:
    eng = [f"english sentence {i}." for i in range(7)]
    rus = [f"русское {i}" for i in range(5)]
    corpus = scan_corpus(write_corpus(tmp_path / "c", {"eng_Latn": eng, "rus_Cyrl": rus}))
    for cache_bytes in (1 << 30, 0):  # in-memory and streaming paths must agree
        sampler = ChunkSampler(corpus, CharTokenizer(), *MAPS, max_seq_len=16, alpha=0.3, seed=3,
                               cache_bytes=cache_bytes)
        bodies: dict[str, list[int]] = {"eng_Latn": [], "rus_Cyrl": []}
        for _ in range(60):
            example = sampler.next_example()
            assert len(example.input_ids) == 16
            assert example.input_ids[0] == BOS and example.input_ids[-1] == EOS
            assert (example.lang_id, example.script_id) == (
                (1, 1) if example.lang_script == "eng_Latn" else (2, 0))
            bodies[example.lang_script].extend(example.input_ids[1:-1])
        for lang_script, lines in (("eng_Latn", eng), ("rus_Cyrl", rus)):
            stream = char_ids("".join(lines))
            got = bodies[lang_script]
            assert len(got) > len(stream), "the test should wrap around at least once"
            assert got == (stream * (len(got) // len(stream) + 1))[: len(got)]


def test_sampler_state_resumes_the_exact_stream(tmp_path: Path) -> None:
    corpus = scan_corpus(write_corpus(tmp_path / "c", {"eng_Latn": [f"line {i}" for i in range(40)],
                                                       "deu_Latn": [f"zeile {i}" for i in range(9)]}))
    for cache_bytes in (1 << 30, 0):
        def make() -> ChunkSampler:
            return ChunkSampler(corpus, CharTokenizer(), *MAPS, max_seq_len=12, alpha=0.5, seed=7,
                                cache_bytes=cache_bytes)
        straight = make()
        expected = [straight.next_example().input_ids for _ in range(50)]
        first = make()
        head = [first.next_example().input_ids for _ in range(23)]
        state = first.state_dict()
        second = make()
        second.load_state_dict(state)
        tail = [second.next_example().input_ids for _ in range(27)]
        assert head + tail == expected


def test_rank_seeds_give_different_streams(tmp_path: Path) -> None:
    corpus = scan_corpus(write_corpus(tmp_path / "c", {"eng_Latn": ["a"] * 10, "deu_Latn": ["b"] * 10}))
    a, b = (ChunkSampler(corpus, CharTokenizer(), *MAPS, 4, 0.3, seed=5, rank=r) for r in range(2))
    assert [a.next_example().lang_script for _ in range(40)] != [b.next_example().lang_script for _ in range(40)]


def test_heldout_lines_are_reserved_and_not_trained_on(tmp_path: Path) -> None:
    lines = [f"s{i:03d}" for i in range(100)]
    corpus = scan_corpus(write_corpus(tmp_path / "c", {"eng_Latn": lines}), eval_lines=5)
    assert corpus.sources["eng_Latn"].heldout_lines == 5
    heldout = heldout_examples(corpus, CharTokenizer(), *MAPS, max_seq_len=12, max_chunks=10)
    held_tokens = [t for e in heldout["eng_Latn"] for t in e.input_ids[1:-1]]
    assert held_tokens == char_ids("".join(lines[:5]))
    for cache_bytes in (1 << 30, 0):
        sampler = ChunkSampler(corpus, CharTokenizer(), *MAPS, 12, 0.3, seed=0, cache_bytes=cache_bytes)
        first = sampler.next_example().input_ids[1:-1]
        assert first == char_ids("".join(lines[5:]))[:10]


def test_a_file_named_only_by_language_gets_its_script_from_the_text(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "rus.txt").write_text("Привет, мир\nЭто проверка\n", encoding="utf-8")
    (root / "sr").mkdir()  # Serbian is written in two scripts: the text decides
    (root / "sr" / "part1.txt").write_text("Ово је ћирилица\n", encoding="utf-8")
    (root / "ja.txt.gz").write_bytes(gzip.compress("これは日本語の文です。\n".encode()))
    assert sorted(scan_corpus(root).sources) == ["jpn_Jpan", "rus_Cyrl", "srp_Cyrl"]
