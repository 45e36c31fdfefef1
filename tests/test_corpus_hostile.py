"""Hostile pretraining corpora: over-long lines, binary files, symlinks, mislabelled scripts, tiny languages."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from langsamp_cli.errors import LangsampError
from langsamp_cli.pretrain.corpus import (MAX_LINE_BYTES, MIN_LANGUAGE_LINES, ChunkSampler, LineReader,
                                          corpus_notes, sampling_probabilities, scan_corpus)
from helpers import MAPS, CharTokenizer, char_ids, write_corpus

RUSSIAN = ["Привет, как дела сегодня", "Это проверка русского текста", "Мы читаем книги вечером"]


def all_pieces(files: list[Path]) -> list[str]:
    reader = LineReader(files)
    lines, _, at_end = reader.read((0, 0), 10**9)
    reader.close()
    assert at_end
    return lines


def one_at_a_time(files: list[Path]) -> list[str]:
    """Every piece read by a fresh reader from the saved position (what a resumed run does)."""
    pieces, position = [], (0, 0)
    while True:
        reader = LineReader(files)
        lines, position, at_end = reader.read(position, 1)
        reader.close()
        pieces += lines
        if at_end:
            return pieces


# ---------------------------------------------------------------------------- over-long lines
@pytest.mark.parametrize("compress", [False, True])
def test_an_over_long_line_is_read_in_bounded_pieces_at_spaces(tmp_path: Path, compress: bool) -> None:
    words = [f"w{i % 997}" for i in range(60_000)]  # ~280 KB on one line
    long_line = " ".join(words)
    text = "first line\n" + long_line + "\nlast line\n"
    root = tmp_path / "c"
    root.mkdir()
    path = root / ("eng_Latn.txt.gz" if compress else "eng_Latn.txt")
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    corpus = scan_corpus(root)
    source = corpus.sources["eng_Latn"]
    pieces = all_pieces([path])
    assert source.long_lines == {str(path): 1}
    assert source.lines == len(pieces) >= 2 + len(long_line) // MAX_LINE_BYTES + 1
    assert pieces[0] == "first line" and pieces[-1] == "last line"
    assert all(len(p.encode()) <= MAX_LINE_BYTES for p in pieces)
    assert " ".join(pieces[1:-1]).split() == words  # cut between words only: nothing lost, nothing split
    assert one_at_a_time([path]) == pieces
    assert any("1 line(s) over 65,536 bytes" in note for note in corpus_notes(corpus))


def test_a_long_line_without_spaces_is_cut_between_characters(tmp_path: Path) -> None:
    text = "ж" * 100_000 + "k" * 3 + "\n"  # 2-byte characters: a byte cut could split one
    path = tmp_path / "rus_Cyrl.txt"
    path.write_text(text, encoding="utf-8")
    pieces = all_pieces([path])
    assert len(pieces) == 4 and "".join(pieces) == text.strip()
    assert one_at_a_time([path]) == pieces


def test_long_line_chunks_match_the_text_in_both_stream_kinds(tmp_path: Path) -> None:
    line = " ".join(f"t{i}" for i in range(40_000))
    root = write_corpus(tmp_path / "c", {"eng_Latn": ["start", line, "end"]})
    corpus = scan_corpus(root)
    expected = char_ids("".join(all_pieces(corpus.sources["eng_Latn"].files)))
    for cache_bytes in (1 << 30, 0):
        sampler = ChunkSampler(corpus, CharTokenizer(), *MAPS, max_seq_len=1002, alpha=0.3, seed=0,
                               cache_bytes=cache_bytes)
        body = [t for _ in range(300) for t in sampler.next_example().input_ids[1:-1]]
        assert len(body) > len(expected), "the test should wrap around"
        assert body == (expected * 2)[:len(body)]


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from transformers import AutoTokenizer
    from langsamp_cli.pretrain.corpus import ChunkSampler, scan_corpus
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[2])
    tokenizer("warm up the tokenizer once")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    corpus = scan_corpus(sys.argv[1])
    sampler = ChunkSampler(corpus, tokenizer, {"eng": 0}, {"Latn": 0}, max_seq_len=128, alpha=0.3, seed=0,
                           cache_bytes=int(sys.argv[3]))
    chunks = [sampler.next_example() for _ in range(50)]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"grown_mb": (after - before) / 1024, "lines": corpus.sources["eng_Latn"].lines,
                      "long": sum(corpus.sources["eng_Latn"].long_lines.values()),
                      "chunk_len": len(chunks[-1].input_ids)}))
""")


def single_line_memory(tmp_path: Path, model: Path, megabytes: int, cache_bytes: int) -> dict:
    """Peak memory growth (MB) of scanning + chunking a corpus of one ``megabytes`` MB line, in a fresh process."""
    root = tmp_path / "corpus"
    root.mkdir()
    word_cycle = (b"the people river light water house stone road city king bread night ") * 16
    with open(root / "eng_Latn.txt", "wb") as handle:
        for _ in range(megabytes * 2**20 // len(word_cycle)):
            handle.write(word_cycle)
        handle.write(b"\n")
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(root), str(model), str(cache_bytes)],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["long"] == 1 and got["lines"] >= megabytes * 2**20 // MAX_LINE_BYTES and got["chunk_len"] == 128
    return got


def test_a_4_mb_single_line_keeps_memory_bounded(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Old code: ~770 MB for this line (the whole line went to the tokenizer at once); now ~40 MB."""
    got = single_line_memory(tmp_path, tiny_model_dir, 4, cache_bytes=1 << 30)
    assert got["grown_mb"] < 200, got


@pytest.mark.slow
@pytest.mark.parametrize("cache_bytes", [1 << 30, 0])
def test_a_20_mb_single_line_keeps_memory_bounded(tmp_path: Path, tiny_model_dir: Path, cache_bytes: int) -> None:
    """Old code: the whole line went to the tokenizer at once (GBs of resident memory)."""
    got = single_line_memory(tmp_path, tiny_model_dir, 20, cache_bytes)
    assert got["grown_mb"] < 300, got


# ---------------------------------------------------------------------------- binary / undecodable files
def test_a_binary_file_is_left_out_and_reported(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", {"eng_Latn": [f"english line {i}" for i in range(200)]})
    rng = np.random.default_rng(0)
    (root / "deu_Latn.txt").write_bytes(rng.integers(1, 256, size=60_000, dtype=np.uint8).tobytes())
    (root / "fra_Latn.txt").write_bytes(b"\x00\x01" * 100 + b"\nbonjour\n")  # NUL bytes: binary (or UTF-16)
    corpus = scan_corpus(root)
    assert corpus.languages == ["eng_Latn"]
    assert "mostly not UTF-8" in corpus.skipped_files[str(root / "deu_Latn.txt")]
    assert "NUL bytes" in corpus.skipped_files[str(root / "fra_Latn.txt")]
    assert corpus.skipped["deu_Latn"].startswith("no usable file (mostly not UTF-8")
    notes = corpus_notes(corpus, sampling_probabilities([200], 0.3))
    assert any(n.startswith(f"skipped file {root / 'deu_Latn.txt'}: mostly not UTF-8") for n in notes)


def test_a_bad_file_next_to_good_ones_does_not_cost_the_language(tmp_path: Path) -> None:
    root = tmp_path / "c"
    (root / "deu_Latn").mkdir(parents=True)
    (root / "deu_Latn" / "a.txt").write_text("\n".join(f"zeile {i}" for i in range(150)) + "\n")
    (root / "deu_Latn" / "b.txt").write_bytes(b"\xff\xfe\xfa\n" * 20 + b"ok\n")
    corpus = scan_corpus(root)
    assert corpus.sources["deu_Latn"].files == [root / "deu_Latn" / "a.txt"]
    assert corpus.sources["deu_Latn"].lines == 150
    assert list(corpus.skipped_files) == [str(root / "deu_Latn" / "b.txt")]


# ---------------------------------------------------------------------------- symlinks
def test_a_symlink_to_a_folder_containing_the_corpus_is_refused(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "corpus", {"rus_Cyrl": RUSSIAN * 100})
    (root / "deu_Latn").symlink_to("../", target_is_directory=True)
    with pytest.raises(LangsampError, match=r"deu_Latn: symlink to .* contains the corpus itself") as info:
        scan_corpus(root)
    assert "\n" not in str(info.value)


def test_one_file_under_two_language_names_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "rus_Cyrl").mkdir(parents=True)
    (root / "rus_Cyrl" / "part.txt").write_text("\n".join(RUSSIAN) + "\n")
    (root / "deu_Latn").symlink_to("rus_Cyrl", target_is_directory=True)
    with pytest.raises(LangsampError,
                       match=r"rus_Cyrl/part.txt: the same file as .*deu_Latn/part.txt \(deu_Latn\) but filed as rus_Cyrl"):
        scan_corpus(root)


def test_symlinked_folders_inside_a_language_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "eng_Latn").mkdir(parents=True)
    (root / "eng_Latn" / "a.txt").write_text("hello there\n")
    (root / "eng_Latn" / "loop").symlink_to("..", target_is_directory=True)  # would recurse forever
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("\n".join(RUSSIAN) + "\n")
    (root / "eng_Latn" / "elsewhere").symlink_to(tmp_path / "other", target_is_directory=True)
    corpus = scan_corpus(root)
    assert corpus.sources["eng_Latn"].files == [root / "eng_Latn" / "a.txt"]


# ---------------------------------------------------------------------------- names vs content
def test_a_file_whose_script_disagrees_with_its_name_is_warned_about(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", {"deu_Latn": RUSSIAN * 50, "rus_Cyrl": RUSSIAN * 50,
                                         "zho_Hans": ["这是一个中文句子。"] * 150, "jpn_Jpan": ["日本語の文です。"] * 150})
    corpus = scan_corpus(root)
    assert corpus.warnings == [f"warning: {root / 'deu_Latn.txt'}: text is mostly Cyrl script but the file is "
                               "filed as deu_Latn; check the file or its name"]
    assert corpus.languages == ["deu_Latn", "jpn_Jpan", "rus_Cyrl", "zho_Hans"]  # kept: a warning, not a guess


def test_a_tiny_language_that_gets_up_sampled_is_named(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", {"eng_Latn": [f"line {i}" for i in range(5000)],
                                         "deu_Latn": ["eins", "zwei"]})
    corpus = scan_corpus(root)
    probs = sampling_probabilities([2, 5000], 0.3)  # sorted: deu_Latn, eng_Latn
    notes = corpus_notes(corpus, probs)
    assert notes == [f"warning: deu_Latn has only 2 training line(s) (under {MIN_LANGUAGE_LINES}) but is sampled as "
                     f"{probs[0]:.1%} of chunks (0.0% of the lines): its text repeats; add text, leave it out with "
                     "--languages, or raise --alpha"]
    assert corpus_notes(corpus, sampling_probabilities([2, 5000], 1.0)) == []  # proportional: not up-sampled


def test_a_stream_whose_buffer_runs_out_exactly_at_the_end_wraps_around(tmp_path: Path) -> None:
    """Reads stop at a line budget; a block ending right at the end of the file must not look like 'no text'."""
    lines = ["abcd"] * 8
    corpus = scan_corpus(write_corpus(tmp_path / "c", {"eng_Latn": lines}))
    sampler = ChunkSampler(corpus, CharTokenizer(), *MAPS, max_seq_len=2 + 16, alpha=0.3, seed=0, cache_bytes=0)
    stream = sampler.stream("eng_Latn")
    stream.block_lines = 4  # two reads of exactly 16 tokens each cover the file
    bodies = [stream.take(16) for _ in range(5)]
    assert bodies == [char_ids("abcd" * 4)] * 5
