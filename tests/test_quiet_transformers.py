"""transformers is quiet while a langsamp command works and as the caller left it afterwards (a notebook or a
script that calls a command keeps its own logging settings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers.utils import logging as hf_logging

from helpers import SAMPLE_TEXTS
from langsamp_cli.cli import main
from langsamp_cli.model import build_model, quiet_transformers


@pytest.fixture()
def loud_transformers():
    """transformers at INFO with progress bars on (not its default), put back as it was after the test."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_info()
    hf_logging.enable_progress_bar()
    yield
    hf_logging.set_verbosity(verbosity)
    (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()


def write_sib(root: Path) -> Path:
    """eng_Latn train/dev/test in the SIB-200 layout, two labels."""
    sentences = [s for texts in SAMPLE_TEXTS.values() for s in texts]
    for split, n in (("train", 12), ("dev", 6), ("test", 6)):
        rows = [f"{i}\t{('health', 'sports')[i % 2]}\t{sentences[i % len(sentences)]} {i}" for i in range(n)]
        folder = root / "eng_Latn"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{split}.tsv").write_text("index_id\tcategory\ttext\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_scope_restores_verbosity_and_bars_even_after_an_error(loud_transformers) -> None:
    with pytest.raises(RuntimeError), quiet_transformers():
        assert hf_logging.get_verbosity() == hf_logging.ERROR and not hf_logging.is_progress_bar_enabled()
        raise RuntimeError("boom")
    assert hf_logging.get_verbosity() == hf_logging.INFO and hf_logging.is_progress_bar_enabled()


def test_fine_tuning_is_quiet_and_leaves_transformers_as_it_was(loud_transformers, tiny_model_dir: Path,
                                                                 tmp_path: Path, monkeypatch) -> None:
    from langsamp_cli.tasks import transfer

    seen = []
    real_finetune = transfer.finetune

    def recording_finetune(*args, **kwargs):
        seen.append((hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()))
        return real_finetune(*args, **kwargs)

    monkeypatch.setattr(transfer, "finetune", recording_finetune)
    args = ["eval", "sib200", "--model", str(tiny_model_dir), "--data-dir", str(write_sib(tmp_path / "sib")),
            "--output-dir", str(tmp_path / "out"), "--languages", "eng_Latn", "--seeds", "1", "--epochs", "1",
            "--batch-size", "4", "--grad-accum", "1", "--mixed-precision", "no"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert (exit_info.value.code or 0) == 0
    assert list((tmp_path / "out").glob("sib200/*/seed1/model/config.json"))  # a fine-tuned model was saved
    assert seen == [(hf_logging.ERROR, False)]  # quiet while it fine-tuned
    assert hf_logging.get_verbosity() == hf_logging.INFO and hf_logging.is_progress_bar_enabled()


def test_building_a_model_leaves_transformers_as_it_was(loud_transformers, tiny_model_dir: Path) -> None:
    build_model(str(tiny_model_dir), {"eng": 0}, {"Latn": 0}, variant="both")
    assert hf_logging.get_verbosity() == hf_logging.INFO and hf_logging.is_progress_bar_enabled()


def test_pretraining_restores_the_transformers_progress_bar_setting(tmp_path) -> None:
    from transformers.utils import logging as hf_logging

    from langsamp_cli.pretrain.config import build_config
    from langsamp_cli.pretrain.trainer import pretrain

    hf_logging.enable_progress_bar()
    config = build_config("demo", None, {"max_steps": 1, "batch_size": 2, "max_seq_len": 32, "vocab_size": 300,
                                         "save_every": 1, "output_dir": str(tmp_path / "run"),
                                         "languages": ["eng_Latn", "fra_Latn"]})
    pretrain(config, progress=False)
    assert hf_logging.is_progress_bar_enabled()
