"""The transfer library entry point: a typed summary whose scores are the ones written to disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import SAMPLE_TEXTS
from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks.transfer_run import TransferRunResult, run_transfer

LABELS = ["entertainment", "geography", "health", "politics", "science/technology", "sports", "travel"]


def write_sib(root: Path) -> Path:
    """SIB-200 layout: English train/dev/test, Hindi test, a Russian test file with a broken row."""
    def table(lang: str, n: int) -> str:
        base = SAMPLE_TEXTS[lang]
        rows = [f"{i}\t{LABELS[i % 7]}\t{base[i % len(base)]} {i}" for i in range(n)]
        return "index_id\tcategory\ttext\n" + "\n".join(rows) + "\n"

    for lang, splits in (("eng_Latn", {"train": 21, "dev": 7, "test": 14}), ("hin_Deva", {"test": 14}),
                         ("rus_Cyrl", {"test": 14})):
        for split, n in splits.items():
            (root / lang).mkdir(parents=True, exist_ok=True)
            (root / lang / f"{split}.tsv").write_text(table(lang, n), encoding="utf-8")
    broken = root / "rus_Cyrl" / "test.tsv"
    broken.write_text(broken.read_text(encoding="utf-8") + "99\tonly-two-fields\n", encoding="utf-8")
    return root


def test_run_transfer_returns_the_scores_it_wrote(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "out"
    flags = {"model": str(tiny_model_dir), "data_dir": str(write_sib(tmp_path / "sib")), "output_dir": str(out),
             "seeds": "3", "epochs": 1, "batch_size": 4, "grad_accum": 1, "max_train_samples": 16}
    result = run_transfer("sib200", flags, progress=False)
    assert isinstance(result, TransferRunResult)
    assert (result.task, result.metric, result.seeds) == ("sib200", "macro_f1", [3])
    assert result.languages == ["eng_Latn", "hin_Deva", "rus_Cyrl"]
    assert result.trained_seeds == [3] and sorted(result.newly_scored) == [(3, "eng_Latn"), (3, "hin_Deva")]
    assert result.newly_skipped == [(3, "rus_Cyrl")]
    merged = json.loads(result.results[0].read_text(encoding="utf-8"))
    on_disk = {row["lang_script"]: row for row in merged["languages"]}
    assert result.scores[3] == {lang: pytest.approx(on_disk[lang]["metrics"]["macro_f1"])
                                for lang in ("eng_Latn", "hin_Deva")}
    assert result.score("hin_Deva") == result.scores[3]["hin_Deva"]
    assert "expected 3 tab-separated fields" in result.skipped[3]["rus_Cyrl"]
    assert result.score("rus_Cyrl") is None

    again = run_transfer("sib200", flags, progress=False)  # everything done: nothing trained, same numbers
    assert again.trained_seeds == [] and again.newly_scored == again.newly_skipped == []
    assert again.scores == result.scores and again.skipped == result.skipped
    assert again.describe() == "sib200: seeds 3; 0 units scored, 0 skipped, 3 already done; fine-tuned 0, reused 0"


def test_run_transfer_rejects_unknown_tasks_and_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(LangsampError, match="xnli: not a transfer task"):
        run_transfer("xnli", {"model": "x"})
    with pytest.raises(LangsampError, match="--model is required for sib200"):
        run_transfer("sib200", {"data_dir": str(tmp_path)})
