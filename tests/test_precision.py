"""One precision story: every command picks its own --mixed-precision, in any order, in one process.

accelerate keeps device and precision in process-wide state; on a GPU machine a fine-tuning command
that wanted bf16 after an earlier command had set another precision died with "AcceleratorState has
already been initialized and cannot be changed". Fine-tuning now holds its precision in a Runtime
object of its own, and pretrain resets accelerate's precision before it starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from langsamp_cli.cli import app
from langsamp_cli.errors import LangsampError
from langsamp_cli.finetune import Runtime, TrainSettings, finetune, resolve_mixed_precision
from helpers import SAMPLE_TEXTS

SIB_LABELS = ["health", "sports"]


def _matmul_dtype(runtime: Runtime) -> torch.dtype:
    with runtime.autocast():
        return (torch.ones(2, 2, device=runtime.device) @ torch.ones(2, 2, device=runtime.device)).dtype


def test_two_runtimes_with_different_precisions_in_one_process() -> None:
    plain, half = Runtime("cpu", "no"), Runtime("cpu", "bf16")
    again = Runtime("cpu", "auto")
    assert (plain.mixed_precision, half.mixed_precision, again.mixed_precision) == ("no", "bf16", "no")
    assert _matmul_dtype(half) == torch.bfloat16
    assert _matmul_dtype(plain) == torch.float32 and _matmul_dtype(again) == torch.float32
    assert _matmul_dtype(half) == torch.bfloat16  # the later runtimes changed nothing for the earlier one
    assert half.describe() == "cpu (bf16)" and half.grad_scaler() is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_runtimes_with_different_precisions() -> None:
    auto, plain, half = Runtime("cuda", "auto"), Runtime("cuda", "no"), Runtime("cuda", "fp16")
    assert auto.mixed_precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert _matmul_dtype(auto) == auto.autocast_dtype and _matmul_dtype(plain) == torch.float32
    assert _matmul_dtype(half) == torch.float16 and half.grad_scaler() is not None
    assert auto.device.type == "cuda" and auto.device.index is not None


def test_precision_choices_and_their_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_mixed_precision("auto", use_cpu=True) == "no"
    assert resolve_mixed_precision("bf16", use_cpu=True) == "bf16"
    with pytest.raises(LangsampError, match="fp16 needs a CUDA device.*use bf16 or no"):
        resolve_mixed_precision("fp16", use_cpu=True)
    with pytest.raises(LangsampError, match="use one of auto, no, bf16, fp16"):
        resolve_mixed_precision("fp8", use_cpu=True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_mixed_precision("auto", use_cpu=False) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_mixed_precision("auto", use_cpu=False) == "fp16"
    assert resolve_mixed_precision("no", use_cpu=False) == "no"


class _Regressor(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(loss=((self.linear(x).squeeze(-1) - y) ** 2).mean())


def _train(rows: int, batch_size: int, grad_accum: int) -> tuple[torch.Tensor, int]:
    generator = torch.Generator().manual_seed(1)
    data = [{"x": torch.randn(3, generator=generator), "y": torch.randn((), generator=generator)} for _ in range(rows)]
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size)
    settings = TrainSettings(lr=0.1, epochs=1, batch_size=batch_size, grad_accum=grad_accum, seed=1,
                             weight_decay=0.0, adam_epsilon=1e-8, max_grad_norm=1e9, scheduler="constant",
                             warmup_ratio=0.0)
    model, outcome = finetune(_Regressor(), loader, lambda m: 0.0, settings, Runtime("cpu", "no"))
    return model.linear.weight.detach().clone(), outcome.optimizer_steps


def test_accumulated_micro_batches_equal_one_big_batch() -> None:
    accumulated, steps = _train(rows=4, batch_size=2, grad_accum=2)
    whole, whole_steps = _train(rows=4, batch_size=4, grad_accum=1)
    assert steps == whole_steps == 1
    torch.testing.assert_close(accumulated, whole, rtol=0, atol=1e-6)
    assert not torch.equal(whole, _Regressor().linear.weight)   # it did train
    assert _train(rows=5, batch_size=1, grad_accum=2)[1] == 3   # the short last window steps too


def _sib(root: Path, langs: tuple[str, ...]) -> Path:
    for lang in langs:
        (root / lang).mkdir(parents=True)
        for split in ("train", "dev", "test"):
            rows = [f"{i}\t{SIB_LABELS[i % 2]}\t{SAMPLE_TEXTS[lang][i % len(SAMPLE_TEXTS[lang])]} {i}" for i in range(8)]
            (root / lang / f"{split}.tsv").write_text("index_id\tcategory\ttext\n" + "\n".join(rows) + "\n",
                                                      encoding="utf-8")
    return root


def _invoke(args: list) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_pretrain_eval_donor_pretrain_in_one_process(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The sequence that failed on the GPU: each command with its own precision, one Python process."""
    from transformers import XLMRobertaConfig

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    langs = ("eng_Latn", "spa_Latn", "rus_Cyrl", "ell_Grek")
    for lang in langs:
        lines = [f"{s} {i}" for i in range(6) for s in SAMPLE_TEXTS[lang]]
        (corpus / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    arch = tmp_path / "arch"
    XLMRobertaConfig(vocab_size=10, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=66, type_vocab_size=1).save_pretrained(arch)
    pretrain = ["pretrain", "--corpus", corpus, "--model", arch, "--from-scratch", "--tokenizer", tiny_model_dir,
                "--max-steps", "2", "--save-every", "2", "--max-seq-len", "32", "--batch-size", "2", "--grad-accum", "1",
                "--log-every", "1", "--no-progress"]
    _invoke([*pretrain, "--output-dir", tmp_path / "run1", "--mixed-precision", "no"])
    model = tmp_path / "run1" / "final"

    sib = _sib(tmp_path / "sib", langs)
    quick = ["--epochs", "1", "--batch-size", "4", "--grad-accum", "1", "--max-length", "32"]
    _invoke(["eval", "sib200", "--model", model, "--data-dir", sib, "--output-dir", tmp_path / "eval", "--seeds", "1",
             "--languages", "spa_Latn", "--mixed-precision", "bf16", "--device", "cpu", *quick])
    unit = json.loads(next((tmp_path / "eval").glob("sib200/*/seed1/units/spa_Latn.json")).read_text())
    assert unit["config"]["mixed_precision"] == "bf16" and 0.0 <= unit["metrics"]["macro_f1"] <= 1.0

    record = json.loads(_invoke(["donor", "--target", "spa_Latn", "--model", model, "--candidates",
                                 "eng_Latn,rus_Cyrl,ell_Grek", "--json", "--evaluate", "sib200", "--data-dir", sib,
                                 "--output-dir", tmp_path / "donor", "--mixed-precision", "no",
                                 "--eval-option", "epochs=1", "--eval-option", "max_length=32",
                                 "--eval-option", "labels=[health, sports]"]))
    evaluation = record["evaluation"]
    for role in ("english", "donor"):
        results = json.loads(Path(evaluation["results"][evaluation[role]]).read_text(encoding="utf-8"))
        [spanish] = [r for r in results["languages"] if r["lang_script"] == "spa_Latn"]
        assert evaluation["per_language"]["spa_Latn"][role] == spanish["metrics"][evaluation["metric"]]

    _invoke([*pretrain, "--output-dir", tmp_path / "run2", "--mixed-precision", "no"])
    assert (tmp_path / "run2" / "final" / "model.safetensors").is_file()
