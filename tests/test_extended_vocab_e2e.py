"""The whole extended-vocabulary path on real data: tokenizer extend -> pretrain --tokenizer (stopped, resumed) ->
every eval task, similarity, plot-embeddings and donor on the result (slow: a few minutes on 2 cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, XLMRobertaForMaskedLM

from helpers import run_cli
from langsamp_cli.demo_corpus import demo_corpus_dir
from langsamp_cli.pretrain.config import build_config
from langsamp_cli.pretrain.trainer import pretrain
from langsamp_cli.tiny import tiny_config
from langsamp_cli.tokenizer import train_unigram_tokenizer

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]
FEW = ["--seeds", "1", "--epochs", "1", "--lr", "1e-3", "--max-train-samples", "60", "--max-eval-samples", "40"]


def base_model(folder: Path) -> Path:
    """A tiny XLM-R whose tokenizer knows every demo script's letters but learned its pieces mostly on English."""
    root = Path(demo_corpus_dir())
    texts = root.joinpath("eng_Latn.txt").read_text(encoding="utf-8").splitlines()[:1500]
    for path in sorted(root.glob("*.txt")):
        texts += [] if path.stem == "eng_Latn" else path.read_text(encoding="utf-8").splitlines()[-25:]
    tokenizer = train_unigram_tokenizer(texts, 700, folder)
    torch.manual_seed(0)
    XLMRobertaForMaskedLM(tiny_config(len(tokenizer), max_positions=66)).save_pretrained(str(folder))
    return folder


def test_extend_pretrain_resume_then_every_command(shared_data: Path, tmp_path: Path, capsys) -> None:
    base = base_model(tmp_path / "base")
    extended = tmp_path / "extended"
    assert run_cli(["tokenizer", "extend", "--base", str(base), "--add", "1500", "--output-dir", str(extended),
                    "--sample-lines", "6000"]) == 0
    settings = dict(model=str(base), tokenizer=str(extended), init_new_tokens="subword", max_seq_len=64,
                    batch_size=4, grad_accum=1, max_steps=8, save_every=4, log_every=2, warmup_steps=2, lr=1e-3,
                    output_dir=str(tmp_path / "run"))
    stopped = pretrain(build_config("demo", None, settings), progress=False, stop_after_steps=4)
    assert stopped.final_dir is None
    assert run_cli(["pretrain", "--model", str(base), "--tokenizer", str(extended), "--init-new-tokens", "subword",
                    "--output-dir", str(tmp_path / "run"), "--resume", "--max-steps", "8", "--no-progress"]) == 0
    model = tmp_path / "run" / "final"
    assert len(AutoTokenizer.from_pretrained(str(model))) == len(AutoTokenizer.from_pretrained(str(extended)))
    assert json.loads((model / "langsamp.json").read_text())["vocab_transfer"]["init_new_tokens"] == "subword"
    capsys.readouterr()

    data = shared_data
    results = str(tmp_path / "results")
    commands = [
        ["eval", "sr-t", "--data-dir", f"{data}/tatoeba/v1", "--languages", "fra_Latn,rus_Cyrl", "--no-cache"],
        ["eval", "sr-b", "--bible", f"{data}/bible/sword/spa_Latn.RV1909.tsv", "--english-bible",
         f"{data}/bible/sword/eng_Latn.KJV.tsv", "--pairs", "100", "--no-cache"],
        ["eval", "taxi1500", "--data-dir", f"{data}/taxi1500/eng_data", "--bible",
         f"{data}/bible/sword/spa_Latn.RV1909.tsv", *FEW],
        ["eval", "sib200", "--data-dir", f"{data}/sib200/annotated", "--languages", "eng,rus,arb", *FEW],
        ["eval", "ner", "--data-dir", f"{data}/ner/uner", "--train-file",
         f"{data}/ner/uner/UNER_English-EWT/prerelease_0c7ce0d/en_ewt-ud-train.iob2", *FEW],
        ["eval", "pos", "--data-dir", f"{data}/ud", "--languages", "eng,spa", *FEW],
    ]
    for command in commands:
        assert run_cli([*command, "--model", str(model), "--output-dir", results]) == 0, command
    tasks = {path.parent.name for path in Path(results).rglob("results.json")}
    assert len(list(Path(results).rglob("results.json"))) >= 6, tasks
    assert run_cli(["similarity", "--model", str(model), "--data-dir", f"{data}/sib200/annotated", "--languages",
                    "eng_Latn,rus_Cyrl,arb_Arab", "--n", "20", "--output-dir", str(tmp_path / "sim"),
                    "--no-cache"]) == 0
    assert (tmp_path / "sim").is_dir() and any((tmp_path / "sim").rglob("*.png"))
    assert run_cli(["plot-embeddings", "--model", str(model), "--output-dir", str(tmp_path / "emb")]) == 0
    assert any((tmp_path / "emb").rglob("*.png"))
    assert run_cli(["donor", "--target", "ukr_Cyrl", "--model", str(model), "--top", "3"]) == 0
    assert "best donor for ukr_Cyrl" in capsys.readouterr().out
