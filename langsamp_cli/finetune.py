"""The one fine-tuning loop every transfer task uses.

AdamW with a (linear by default) schedule, gradient accumulation, a fixed number of epochs, the
source-language dev score after every epoch, and the best weights kept in memory (CPU copy) and
restored at the end; ``patience`` stops after that many epochs without a better dev score.
Devices and precision go through ``accelerate`` (bf16 by default on CUDA when the GPU has it,
fp16 otherwise; always fp32 on CPU, where half precision is much slower). One process per run:
scale out by running seeds or ``--shard`` slices as separate jobs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from langsamp_cli.errors import LangsampError

MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


@dataclass
class TrainSettings:
    lr: float
    epochs: int
    batch_size: int
    grad_accum: int = 1
    seed: int = 1
    patience: int | None = None       # epochs without a better dev score before stopping; None/0 = off
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    scheduler: str = "linear"         # any transformers.get_scheduler name
    warmup_ratio: float = 0.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum"):
            if int(getattr(self, name)) < 1:
                raise LangsampError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not float(self.lr) > 0:
            raise LangsampError(f"--lr must be positive, got {self.lr}")


@dataclass
class TrainOutcome:
    best_score: float
    best_epoch: int
    epochs_run: int
    optimizer_steps: int
    stopped_early: bool
    history: list[dict] = field(default_factory=list)   # per epoch: epoch, train_loss, dev_score

    def record(self) -> dict:
        return {
            "best_dev_score": self.best_score,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "optimizer_steps": self.optimizer_steps,
            "stopped_early": self.stopped_early,
            "history": self.history,
        }


class Runtime:
    """Device + precision for one run (accelerate keeps this state process-wide)."""

    def __init__(self, device: str | None = None, mixed_precision: str = "auto", grad_accum: int = 1):
        from accelerate import Accelerator

        use_cpu = _wants_cpu(device)
        precision = resolve_mixed_precision(mixed_precision, use_cpu)
        if not use_cpu and device and ":" in device:
            torch.cuda.set_device(torch.device(device))
        try:
            self.accelerator = Accelerator(cpu=use_cpu, mixed_precision=precision, gradient_accumulation_steps=grad_accum)
        except (ValueError, RuntimeError) as err:
            raise LangsampError(f"cannot set up device {device or 'auto'} with {precision} precision: {err}") from err
        self.mixed_precision = precision

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def autocast(self) -> AbstractContextManager:
        return self.accelerator.autocast()

    def describe(self) -> str:
        return f"{self.device} ({self.mixed_precision})"


def _wants_cpu(device: str | None) -> bool:
    if device is None:
        return not torch.cuda.is_available()
    if device == "cpu":
        return True
    if not device.startswith("cuda"):
        raise LangsampError(f"--device {device!r}: use cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise LangsampError(f"--device {device}: CUDA is not available here; use --device cpu")
    return False


def resolve_mixed_precision(value: str | None, use_cpu: bool) -> str:
    value = (value or "auto").lower()
    if value not in MIXED_PRECISION:
        raise LangsampError(f"--mixed-precision {value!r}: use one of {', '.join(MIXED_PRECISION)}")
    if use_cpu:
        if value in ("bf16", "fp16"):
            raise LangsampError(f"--mixed-precision {value} needs a CUDA device (on CPU it is much slower); use no")
        return "no"
    if value == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return value


def set_seed(seed: int) -> None:
    """Python, NumPy and torch (all devices) generators."""
    from accelerate.utils import set_seed as accelerate_set_seed

    accelerate_set_seed(int(seed))


def finetune(
    model: torch.nn.Module,
    train_loader: torch.utils.data.DataLoader,
    dev_score: Callable[[torch.nn.Module], float],
    settings: TrainSettings,
    runtime: Runtime,
    progress: bool = False,
    console: Console | None = None,
    label: str = "fine-tune",
) -> tuple[torch.nn.Module, TrainOutcome]:
    """Train, score on dev after every epoch, return the model holding its best weights."""
    from transformers import get_scheduler

    console = console or Console(stderr=True)
    accelerator = runtime.accelerator
    optimizer = torch.optim.AdamW(_param_groups(model, settings.weight_decay), lr=float(settings.lr),
                                  eps=float(settings.adam_epsilon))
    steps_per_epoch = math.ceil(len(train_loader) / settings.grad_accum)
    total_steps = steps_per_epoch * settings.epochs
    scheduler = get_scheduler(settings.scheduler, optimizer, num_warmup_steps=int(settings.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    outcome = TrainOutcome(best_score=-math.inf, best_epoch=0, epochs_run=0, optimizer_steps=0, stopped_early=False)
    best_state: dict[str, torch.Tensor] | None = None
    with _progress(progress, console) as bars:
        task = bars.add_task(label, total=len(train_loader) * settings.epochs)
        for epoch in range(1, settings.epochs + 1):
            loss = _train_epoch(model, train_loader, optimizer, scheduler, settings, accelerator, bars, task, outcome)
            score = _score(accelerator.unwrap_model(model), dev_score, runtime)
            outcome.epochs_run = epoch
            outcome.history.append({"epoch": epoch, "train_loss": loss, "dev_score": score})
            console.print(f"  {label} epoch {epoch}: train loss {loss:.4f}, dev {score:.4f}", highlight=False)
            if score > outcome.best_score:
                outcome.best_score, outcome.best_epoch = score, epoch
                best_state = _cpu_copy(accelerator.unwrap_model(model))
            elif settings.patience and epoch - outcome.best_epoch >= settings.patience:
                outcome.stopped_early = epoch < settings.epochs
                break
    model = accelerator.unwrap_model(model)
    if best_state is not None:
        model.load_state_dict(best_state)
    accelerator.free_memory()
    return model, outcome


def _train_epoch(model, loader, optimizer, scheduler, settings: TrainSettings, accelerator, bars, task,
                 outcome: TrainOutcome) -> float:
    model.train()
    total, batches = 0.0, 0
    for batch in loader:
        with accelerator.accumulate(model):
            loss = model(**batch).loss
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
                outcome.optimizer_steps += 1
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        total += float(loss.detach())
        batches += 1
        bars.advance(task)
    return total / max(batches, 1)


def _score(model: torch.nn.Module, dev_score: Callable[[torch.nn.Module], float], runtime: Runtime) -> float:
    model.eval()
    with torch.no_grad(), runtime.autocast():
        return float(dev_score(model))


def _cpu_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases and LayerNorm weights (the usual BERT recipe, as in the official code)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]


def _progress(enabled: bool, console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not enabled,
    )


def progress_bar(enabled: bool, console: Console | None = None) -> Progress:
    """The rich progress bar used for training and evaluation (hidden when ``enabled`` is False)."""
    return _progress(enabled, console or Console(stderr=True))
