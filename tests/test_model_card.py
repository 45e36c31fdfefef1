"""The model card `pretrain` writes beside final/, and `report --model-card` adding (not duplicating) its tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from langsamp_cli.cli import main
from langsamp_cli.errors import LangsampError
from langsamp_cli.model_card import EVAL_END, EVAL_START, add_evaluation, replace_evaluation, split_card
from langsamp_cli.pretrain.config import build_config
from langsamp_cli.pretrain.run_dir import read_log
from langsamp_cli.pretrain.trainer import pretrain
from helpers import SAMPLE_TEXTS

CORPUS = {"eng_Latn": "en", "spa_Latn": "es", "rus_Cyrl": "ru", "ell_Grek": "el", "hin_Deva": "hi"}  # -> ISO 639-1
REPEATS = 12


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A 3-step run of a 2-layer model on five language-scripts; returns the run folder."""
    from transformers import XLMRobertaConfig

    root = tmp_path_factory.mktemp("card")
    corpus = root / "corpus"
    corpus.mkdir()
    for lang_script in CORPUS:
        lines = [f"{s} {i}" for i in range(REPEATS) for s in SAMPLE_TEXTS[lang_script]]
        (corpus / f"{lang_script}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    arch = root / "arch"
    XLMRobertaConfig(vocab_size=10, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=66, type_vocab_size=1).save_pretrained(arch)
    config = build_config("demo", None, dict(
        corpus=str(corpus), model=str(arch), from_scratch=True, tokenizer=str(tiny_model_dir),
        output_dir=str(root / "run"), max_seq_len=32, batch_size=2, grad_accum=1, max_steps=3, save_every=3,
        log_every=1, seed=1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pretrain(config, progress=False)
    finally:
        torch.set_num_threads(threads)
    return root / "run"


def card_of(directory: Path) -> tuple[dict, str]:
    return split_card((directory / "README.md").read_text(encoding="utf-8"))


def test_final_has_a_model_card_naming_every_corpus_language(trained: Path) -> None:
    final = trained / "final"
    meta, body = card_of(final)
    assert meta["language"] == [CORPUS[ls] for ls in sorted(CORPUS)]
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "fill-mask"
    assert "langsamp" in meta["tags"] and "license" not in meta
    text = (final / "README.md").read_text(encoding="utf-8")
    assert "# license:" in text.split("\n---\n", 1)[0]  # left to the user, as a comment
    chunks = [r for r in read_log(trained / "log.jsonl") if "chunks_per_language" in r][-1]["chunks_per_language"]
    for lang_script in CORPUS:
        lines = REPEATS * len(SAMPLE_TEXTS[lang_script])
        row = next(line for line in body.splitlines() if line.startswith(f"| {lang_script} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == f"{lines:,}" and cells[3] == f"{chunks.get(lang_script, 0):,}"
    assert "variant **both**" in body and "AutoModelForMaskedLM.from_pretrained" in body
    assert "load_checkpoint(" in body and "![MLM loss against optimiser step](loss.png)" in body
    assert "| max_steps | 3 |" in body  # the settings come from run.json
    assert (final / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert text.count(EVAL_START) == 1 and text.count(EVAL_END) == 1


def test_the_card_is_a_valid_hugging_face_model_card(trained: Path) -> None:
    hub = pytest.importorskip("huggingface_hub")
    card = hub.ModelCard((trained / "final" / "README.md").read_text(encoding="utf-8"), ignore_metadata_errors=False)
    assert card.data.language == [CORPUS[ls] for ls in sorted(CORPUS)]
    assert card.data.pipeline_tag == "fill-mask" and card.data.library_name == "transformers"


def results_json(model: str, task: str, metric: str, scores: dict[str, float]) -> dict:
    languages = [{"lang_script": ls, "lang": ls[:3], "script": ls[4:], "head_tail": "head",
                  "script_group": "Latn" if ls.endswith("Latn") else "non-Latn", "family": None, "n": 5,
                  "metrics": {metric: value}} for ls, value in scores.items()]
    return {"task": task, "model": model, "model_slug": Path(model).name, "seed": None, "metric": metric,
            "metrics": [metric], "languages": languages, "skipped": [], "groups": {}, "provenance": {}}


def write_results(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_report_adds_the_evaluation_tables_once(trained: Path, tmp_path: Path) -> None:
    final = trained / "final"
    ours = {"eng_Latn": 0.875, "rus_Cyrl": 0.5, "ell_Grek": 0.25}
    results = tmp_path / "results"
    write_results(results / "sr-t" / "final" / "seedna" / "results.json",
                  results_json(str(final), "sr-t", "acc@10", ours))
    write_results(results / "sr-t" / "other" / "seedna" / "results.json",  # another model: not on this card
                  results_json("/elsewhere/other", "sr-t", "acc@10", {"eng_Latn": 0.123, "rus_Cyrl": 0.456}))
    before = (final / "README.md").read_text(encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(results), "--output-dir", str(tmp_path / "rep"), "--model-card", str(final)])
    assert exit_.value.code in (0, None)
    once = (final / "README.md").read_text(encoding="utf-8")
    meta, body = split_card(once)
    assert meta == split_card(before)[0] and once.split(EVAL_START)[0] == before.split(EVAL_START)[0]
    section = once.split(EVAL_START, 1)[1].split(EVAL_END, 1)[0]
    all_mean = 100 * np.mean(list(ours.values()))
    assert re.search(r"\| SR-T \|.*" + re.escape(f"{all_mean:.1f}") + r" \|", section)
    assert "| sr-t | eng_Latn | head | Latn | 87.5 |" in section
    assert "12.3" not in section and "45.6" not in section and "Not evaluated yet" not in section
    add_evaluation(final, [results])  # a rerun replaces the section
    again = (final / "README.md").read_text(encoding="utf-8")
    assert again == once and again.count(EVAL_START) == 1 and again.count("## Evaluation") == 1


def test_model_card_errors_and_a_card_without_markers(trained: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_results(results / "sr-t" / "x" / "seedna" / "results.json",
                  results_json("/elsewhere/other", "sr-t", "acc@10", {"eng_Latn": 0.5}))
    with pytest.raises(LangsampError, match="none of the results under .* was made with this model"):
        add_evaluation(trained / "final", [results])
    with pytest.raises(LangsampError, match="not a model directory"):
        add_evaluation(tmp_path, [results])
    edited = replace_evaluation("---\nlanguage: [en]\n---\n# mine\n", "## Evaluation\nnew")
    assert edited.endswith(f"{EVAL_START}\n## Evaluation\nnew\n{EVAL_END}\n")
    assert replace_evaluation(edited, "## Evaluation\nnewer").count(EVAL_START) == 1
    with pytest.raises(LangsampError, match="no YAML front matter"):
        split_card("# just markdown\n")
