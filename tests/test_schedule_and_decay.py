"""What the optimiser does: the pretraining learning-rate schedule (also across a resume with more steps) and
which parameters get weight decay, in pretraining and fine-tuning alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import small_pretrain_settings
from langsamp_cli.model import build_model
from langsamp_cli.pretrain.config import build_config
from langsamp_cli.pretrain.run_dir import read_log
from langsamp_cli.pretrain.trainer import make_optimizer, pretrain
from langsamp_cli.weight_decay import decays, weight_decay_groups


def linear(step: int, peak: float, warmup: int, total: int) -> float:
    """The schedule written out: linear warmup to ``peak``, then linear decay to 0 at ``total`` (after ``step``
    optimiser steps, as the log records it)."""
    if step < warmup:
        return peak * step / warmup
    return peak * max(0.0, (total - step) / (total - warmup))


def logged_lr(out: Path) -> dict[int, float]:
    return {r["step"]: r["lr"] for r in read_log(out / "log.jsonl") if "lr" in r}


def test_logged_learning_rate_is_warmup_then_linear_decay_also_after_a_longer_resume(
        corpus_dir, tiny_model_dir, small_arch, tmp_path) -> None:
    out = tmp_path / "run"
    settings = small_pretrain_settings(corpus_dir, small_arch, tiny_model_dir, out, max_steps=6, warmup_steps=2,
                                       lr=1e-3)
    pretrain(build_config("demo", None, settings), progress=False)
    lrs = logged_lr(out)
    assert sorted(lrs) == [1, 2, 3, 4, 5, 6]
    for step, lr in lrs.items():
        assert lr == pytest.approx(linear(step, 1e-3, 2, 6), abs=1e-12), step
    # Resumed with a larger --max-steps: the decay is recomputed over the new horizon from the step reached.
    pretrain(build_config("demo", None, {**settings, "max_steps": 10}), progress=False, resume=True)
    lrs = logged_lr(out)
    assert sorted(lrs) == list(range(1, 11))
    for step in range(7, 11):
        assert lrs[step] == pytest.approx(linear(step, 1e-3, 2, 10), abs=1e-12), step


def test_weight_decay_groups_of_pretraining(tiny_model_dir) -> None:
    model = build_model(str(tiny_model_dir), {"eng": 0, "rus": 1}, {"Latn": 0, "Cyrl": 1})
    config = build_config("demo", None, {"weight_decay": 0.05})
    decayed, plain = make_optimizer(model, config).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    decayed_names = {names[id(p)] for p in decayed["params"]}
    plain_names = {names[id(p)] for p in plain["params"]}
    assert (decayed["weight_decay"], plain["weight_decay"]) == (0.05, 0.0)
    assert decayed_names | plain_names == {n for n, p in model.named_parameters() if p.requires_grad}
    assert "lang_embeddings.weight" in plain_names and "script_embeddings.weight" in plain_names
    assert any(p is model.mlm.get_input_embeddings().weight for p in decayed["params"])   # tied with the decoder
    assert "mlm.roberta.encoder.layer.0.attention.self.query.weight" in decayed_names
    assert "mlm.roberta.encoder.layer.0.attention.self.query.bias" in plain_names
    assert "mlm.roberta.embeddings.LayerNorm.weight" in plain_names and "mlm.lm_head.layer_norm.weight" in plain_names
    assert "mlm.lm_head.bias" in plain_names
    # every 1-D parameter of the model is a bias or a normalisation weight: none is decayed
    assert all(p.ndim >= 2 for p in decayed["params"])


def test_fine_tuning_uses_the_same_rule() -> None:
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = torch.nn.Linear(4, 4)
            self.LayerNorm = torch.nn.LayerNorm(4)
            self.frozen = torch.nn.Parameter(torch.zeros(4, 4), requires_grad=False)

    decayed, plain = weight_decay_groups(Head().named_parameters(), 0.01)
    assert [p.shape for p in decayed["params"]] == [torch.Size([4, 4])] and len(plain["params"]) == 3
    assert decays("classifier.out_proj.weight") and not decays("classifier.out_proj.bias")


def test_a_diverged_fine_tuning_loss_is_an_error_naming_the_run() -> None:
    import torch

    from langsamp_cli.errors import LangsampError
    from langsamp_cli.finetune import Runtime, TrainSettings, finetune

    class Diverged(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(2, 2))

        def forward(self, x: torch.Tensor):
            return type("Out", (), {"loss": (self.weight * x.sum()).sum() * float("nan")})()

    loader = torch.utils.data.DataLoader([{"x": torch.ones(2)} for _ in range(4)], batch_size=2)
    settings = TrainSettings(lr=1e-3, epochs=2, batch_size=2, grad_accum=1, seed=1, weight_decay=0.0,
                             adam_epsilon=1e-8, max_grad_norm=1.0, scheduler="linear", warmup_ratio=0.0)
    with pytest.raises(LangsampError, match="sib200/eng_Latn seed 1: the training loss is nan in epoch 1"):
        finetune(Diverged(), loader, lambda model: 0.0, settings, Runtime("cpu", "no"),
                 label="sib200/eng_Latn seed 1")
