"""Continued pretraining with another tokenizer: rows kept by piece, new rows by --init-new-tokens, records, resume."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, XLMRobertaForMaskedLM

from helpers import run_cli
from langsamp_cli.errors import LangsampError
from langsamp_cli.pretrain.config import build_config
from langsamp_cli.pretrain.trainer import pretrain
from langsamp_cli.pretrain.vocab_transfer import SOURCES_FILE, row_mapping, transfer_vocabulary
from langsamp_cli.tokenizer_extend import ExtendSettings, extend_tokenizer


@pytest.fixture(scope="module")
def extended_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_model_dir's 400-piece tokenizer extended with pieces of the bundled demo corpus."""
    out = tmp_path_factory.mktemp("extended") / "tok"
    extend_tokenizer(ExtendSettings(base=str(tiny_model_dir), add=300, output_dir=str(out), sample_lines=4000,
                                    heldout_lines=20))
    return out


def load_pair(tiny_model_dir: Path, extended_dir: Path):
    return AutoTokenizer.from_pretrained(str(tiny_model_dir)), AutoTokenizer.from_pretrained(str(extended_dir))


def moved(tiny_model_dir: Path, extended_dir: Path, method: str, seed: int = 0):
    old_tok, new_tok = load_pair(tiny_model_dir, extended_dir)
    original = XLMRobertaForMaskedLM.from_pretrained(str(tiny_model_dir)).eval()
    model = copy.deepcopy(original)
    transfer = transfer_vocabulary(model, old_tok, new_tok, method, seed)
    return original, model.eval(), transfer, old_tok, new_tok


def test_old_pieces_give_identical_hidden_states_and_logits(tiny_model_dir, extended_dir) -> None:
    original, model, transfer, old_tok, new_tok = moved(tiny_model_dir, extended_dir, "subword")
    assert transfer.kept == len(old_tok) and transfer.kept_same_id == len(old_tok)   # a strict extension
    assert model.get_input_embeddings().weight.shape[0] == len(new_tok) == model.config.vocab_size
    ids = torch.tensor([old_tok("the cat sat on the mat 12")["input_ids"]])
    with torch.no_grad():
        before = original(input_ids=ids, output_hidden_states=True)
        after = model(input_ids=ids, output_hidden_states=True)
    for a, b in zip(before.hidden_states, after.hidden_states):
        assert torch.equal(a, b)
    old_logits, new_logits = before.logits, after.logits[..., : len(old_tok)]
    assert float((old_logits - new_logits).abs().max()) == 0.0


def test_kept_rows_are_bit_identical_and_subword_rows_are_exact_means(tiny_model_dir, extended_dir) -> None:
    original, model, transfer, old_tok, new_tok = moved(tiny_model_dir, extended_dir, "subword")
    old_emb = original.get_input_embeddings().weight.detach().numpy()
    new_emb = model.get_input_embeddings().weight.detach().numpy()
    old_bias, new_bias = original.lm_head.bias.detach().numpy(), model.lm_head.bias.detach().numpy()
    mapping = row_mapping(old_tok, new_tok)
    kept = np.flatnonzero(mapping >= 0)
    assert np.array_equal(new_emb[kept], old_emb[mapping[kept]]) and np.array_equal(new_bias[kept], old_bias[mapping[kept]])
    assert model.lm_head.decoder.weight is model.get_input_embeddings().weight   # still tied
    by_method = {row.method for row in transfer.new_rows}
    assert by_method <= {"subword", "mean"} and "subword" in by_method
    for row in transfer.new_rows:
        if row.method == "subword":
            expected = old_emb[row.sources].astype(np.float64).mean(axis=0).astype(np.float32)
            expected_bias = np.float32(old_bias[row.sources].astype(np.float64).mean())
        else:
            expected = old_emb.astype(np.float64).mean(axis=0).astype(np.float32)
            expected_bias = np.float32(old_bias.astype(np.float64).mean())
        assert np.array_equal(new_emb[row.new_id], expected), row.piece
        assert new_bias[row.new_id] == expected_bias, row.piece
    # the sources are what the old tokenizer makes of the piece's surface string
    row = next(r for r in transfer.new_rows if r.method == "subword" and r.piece.startswith("▁") and len(r.sources) > 1)
    text = new_tok.convert_tokens_to_string([row.piece])
    assert old_tok(text, add_special_tokens=False)["input_ids"] == row.sources


def test_mean_and_random_rows(tiny_model_dir, extended_dir) -> None:
    original, model, transfer, _, _ = moved(tiny_model_dir, extended_dir, "mean")
    old_emb = original.get_input_embeddings().weight.detach().numpy()
    new_ids = [row.new_id for row in transfer.new_rows]
    expected = old_emb.astype(np.float64).mean(axis=0).astype(np.float32)
    assert np.array_equal(model.get_input_embeddings().weight.detach().numpy()[new_ids], np.tile(expected, (len(new_ids), 1)))
    _, model, transfer, _, _ = moved(tiny_model_dir, extended_dir, "random", seed=7)
    rows = model.get_input_embeddings().weight.detach()[new_ids]
    assert abs(float(rows.std()) - model.config.initializer_range) < 0.002 and abs(float(rows.mean())) < 0.002
    assert torch.count_nonzero(model.lm_head.bias.detach()[new_ids]) == 0   # the official zero-padded bias
    _, again, _, _, _ = moved(tiny_model_dir, extended_dir, "random", seed=7)
    assert torch.equal(again.get_input_embeddings().weight, model.get_input_embeddings().weight)   # seeded


def test_rows_follow_pieces_when_ids_differ(tiny_model_dir, tmp_path) -> None:
    """A tokenizer with the same pieces in another order: every row moves with its piece."""
    old_tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    data = json.loads(old_tok.backend_tokenizer.to_str())
    vocab = data["model"]["vocab"]
    vocab[10:20] = vocab[10:20][::-1]
    old_tok.save_pretrained(str(tmp_path))
    (tmp_path / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    new_tok = AutoTokenizer.from_pretrained(str(tmp_path))
    model = XLMRobertaForMaskedLM.from_pretrained(str(tiny_model_dir))
    before = model.get_input_embeddings().weight.detach().clone()
    transfer = transfer_vocabulary(model, old_tok, new_tok, "subword", 0)
    assert transfer.kept == len(old_tok) and transfer.kept_same_id == len(old_tok) - 10 and not transfer.new_rows
    after = model.get_input_embeddings().weight.detach()
    assert torch.equal(after[10:20], before[10:20].flip(0)) and torch.equal(after[:10], before[:10])
    assert "moved to the piece's new id" in transfer.line()


def test_incompatible_tokenizers_are_one_line_errors(tiny_model_dir, tmp_path) -> None:
    old_tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    other = copy.deepcopy(old_tok)
    other.mask_token = "[MASK]"
    with pytest.raises(LangsampError, match="mask_token is '\\[MASK\\]'.*same special tokens"):
        transfer_vocabulary(XLMRobertaForMaskedLM.from_pretrained(str(tiny_model_dir)), old_tok, other, "mean", 0)
    from langsamp_cli.tokenizer import train_unigram_tokenizer

    foreign = train_unigram_tokenizer(["ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ ᎠᏍᎦᏯ"] * 30, 20, tmp_path / "foreign")
    with pytest.raises(LangsampError, match="shares no piece"):
        transfer_vocabulary(XLMRobertaForMaskedLM.from_pretrained(str(tiny_model_dir)), old_tok, foreign, "mean", 0)


def test_init_new_tokens_without_a_tokenizer_is_refused(tiny_model_dir, tmp_path, capsys) -> None:
    code = run_cli(["pretrain", "--model", str(tiny_model_dir), "--init-new-tokens", "subword",
                    "--output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "--init-new-tokens subword: only acts when continuing" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def continued(corpus_dir: Path, tiny_model_dir: Path, extended_dir: Path, out: Path, **overrides):
    settings = dict(corpus=str(corpus_dir), model=str(tiny_model_dir), tokenizer=str(extended_dir),
                    init_new_tokens="subword", output_dir=str(out), max_seq_len=32, batch_size=2, grad_accum=1,
                    max_steps=4, save_every=2, keep_last=2, log_every=1, warmup_steps=1, lr=1e-3, seed=3)
    return build_config("demo", None, {**settings, **overrides})


def test_pretrain_continues_with_the_tokenizer_records_it_and_resumes_bit_identically(
        corpus_dir, tiny_model_dir, extended_dir, tmp_path) -> None:
    straight = pretrain(continued(corpus_dir, tiny_model_dir, extended_dir, tmp_path / "a"), progress=False)
    stopped = pretrain(continued(corpus_dir, tiny_model_dir, extended_dir, tmp_path / "b"), progress=False,
                       stop_after_steps=2)
    assert stopped.final_dir is None
    resumed = pretrain(continued(corpus_dir, tiny_model_dir, extended_dir, tmp_path / "b"), progress=False,
                       resume=True)
    for name in ("model.safetensors", "langsamp_embeddings.safetensors"):
        a, b = load_file(str(straight.final_dir / name)), load_file(str(resumed.final_dir / name))
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a), name

    new_size = len(AutoTokenizer.from_pretrained(str(extended_dir)))
    old_size = len(AutoTokenizer.from_pretrained(str(tiny_model_dir)))
    final = straight.final_dir
    assert len(AutoTokenizer.from_pretrained(str(final))) == new_size
    assert json.loads((final / "config.json").read_text())["vocab_size"] == new_size
    meta = json.loads((final / "langsamp.json").read_text())["vocab_transfer"]
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert meta["new_vocab_size"] == new_size and meta["kept_rows"] == meta["old_vocab_size"] == old_size
    assert meta["init_new_tokens"] == "subword" and sum(meta["initialised_rows"].values()) == new_size - old_size
    assert run["vocab_transfer"]["kept_rows"] == old_size and run["config"]["tokenizer"] == str(extended_dir)
    rows = (tmp_path / "a" / SOURCES_FILE).read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + new_size - old_size and rows[1].split("\t")[0] == str(old_size)
    card = (final / "README.md").read_text(encoding="utf-8")
    assert "## Vocabulary" in card and f"{old_size:,} trained rows kept" in card
    resumed_meta = json.loads((resumed.final_dir / "langsamp.json").read_text())["vocab_transfer"]
    assert resumed_meta == meta


def test_paper_preset_is_the_papers_run_and_dry_run_checks_every_input(monkeypatch, tmp_path, capsys) -> None:
    paper = build_config("paper")
    assert (paper.model, paper.tokenizer, paper.init_new_tokens) == ("xlm-roberta-base", "cis-lmu/glot500-base",
                                                                      "random")
    assert (paper.alpha, paper.lr, paper.adam_eps, paper.batch_size, paper.grad_accum) == (0.3, 5e-5, 1e-6, 32, 8)
    assert (paper.max_seq_len, paper.max_steps, paper.save_every, paper.weight_decay) == (512, 150_000, 5000, 0.0)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    assert run_cli(["pretrain", "--preset", "paper", "--dry-run"]) == 2
    captured = capsys.readouterr()
    for row in ("tokenizer           cis-lmu/glot500-base  preset paper", "adam_eps            1e-06",
                "max_steps           150,000               preset paper", "131,072 tokens per step",
                "BAD model: --model xlm-roberta-base", "BAD tokenizer: --tokenizer cis-lmu/glot500-base",
                "ok  output: runs/pretrain-paper: new"):
        assert row in captured.out, row
    assert "dry run: 2 input(s) would stop the run (model, tokenizer" in captured.err
    assert not (tmp_path / "runs").exists()


def test_dry_run_of_a_local_continuation_passes_and_trains_nothing(tiny_model_dir, extended_dir, corpus_dir,
                                                                    tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert run_cli(["pretrain", "--model", str(tiny_model_dir), "--tokenizer", str(extended_dir), "--corpus",
                    str(corpus_dir), "--lr", "1e-4", "--output-dir", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "lr                  0.0001" in printed and "flag" in printed
    assert f"continue {tiny_model_dir}'s weights with the tokenizer {extended_dir}" in printed
    assert "ok  corpus:" in printed and "4 language-scripts" in printed and "nothing was trained" in printed
    assert not out.exists()


def test_a_model_folder_without_its_tokenizer_is_refused(tiny_model_dir, extended_dir, corpus_dir, tmp_path) -> None:
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, bare / name)
    for tokenizer in (None, str(extended_dir)):
        config = continued(corpus_dir, bare, extended_dir, tmp_path / f"run-{tokenizer is None}", tokenizer=tokenizer,
                           init_new_tokens="subword" if tokenizer else None)
        with pytest.raises(LangsampError, match="no tokenizer files in the folder"):
            pretrain(config, progress=False)
        assert not (tmp_path / f"run-{tokenizer is None}").exists()
