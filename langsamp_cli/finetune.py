"""The one fine-tuning loop every transfer task uses.

AdamW with a (linear by default) schedule, gradient accumulation, a fixed number of epochs, the
source-language dev score after every epoch, and the best weights kept in memory (CPU copy) and
restored at the end; ``patience`` stops after that many epochs without a better dev score.

Device and precision belong to one ``Runtime`` object, in plain torch (``torch.autocast``, a
``GradScaler`` for fp16). accelerate is deliberately not used here: it keeps device and precision in
process-wide state, so a second command in the same process (``experiment``: pretrain then eval,
``donor --evaluate``, a notebook) could not pick another precision. ``--mixed-precision auto`` is
bf16 on a GPU that has it, fp16 on other GPUs, fp32 on CPU; bf16 may also be asked for on CPU
(torch autocast runs it there, usually slower than fp32); fp16 on CPU is refused (no loss
scaling there, and no speed to gain). One process per run: scale out by running seeds or
``--shard`` slices as separate jobs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch
from rich.console import Console

from langsamp_cli.errors import LangsampError
from langsamp_cli.progress import make_progress
from langsamp_cli.weight_decay import weight_decay_groups

MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
HALF_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainSettings:
    """One fine-tuning run's optimisation settings, built from the task's (already checked) settings object:
    the fields, their limits and their values live in ``TransferSettings`` and the task YAML."""

    lr: float
    epochs: int
    batch_size: int
    grad_accum: int
    seed: int
    weight_decay: float
    adam_epsilon: float
    max_grad_norm: float              # 0 = no clipping
    scheduler: str                    # any transformers.get_scheduler name
    warmup_ratio: float
    patience: int | None = None       # epochs without a better dev score before stopping; None or 0 = off


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
    """Device + precision for one fine-tuning run; nothing about it is process-wide."""

    def __init__(self, device: str | None = None, mixed_precision: str = "auto", grad_accum: int = 1):
        use_cpu = _wants_cpu(device)
        self.mixed_precision = resolve_mixed_precision(mixed_precision, use_cpu)
        self.device = torch.device("cpu") if use_cpu else _cuda_device(device)
        self.grad_accum = int(grad_accum)
        self.autocast_dtype: torch.dtype | None = HALF_DTYPES.get(self.mixed_precision)

    def autocast(self) -> AbstractContextManager:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 needs loss scaling (its range is too small for small gradients); bf16 and fp32 do not."""
        return torch.amp.GradScaler(self.device.type) if self.mixed_precision == "fp16" else None

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


def _cuda_device(device: str | None) -> torch.device:
    try:
        resolved = torch.device(device or "cuda")
    except RuntimeError as err:
        raise LangsampError(f"--device {device!r}: use cpu, cuda or cuda:N") from err
    index = torch.cuda.current_device() if resolved.index is None else resolved.index
    count = torch.cuda.device_count()
    if index >= count:
        raise LangsampError(f"--device {device}: this machine has {count} GPU(s) (cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)


def resolve_mixed_precision(value: str | None, use_cpu: bool) -> str:
    """auto -> bf16 on a GPU that has it, fp16 on other GPUs, no on CPU; bf16 is allowed on CPU, fp16 is not."""
    value = (value or "auto").lower()
    if value not in MIXED_PRECISION:
        raise LangsampError(f"--mixed-precision {value!r}: use one of {', '.join(MIXED_PRECISION)}")
    if use_cpu:
        if value == "fp16":
            raise LangsampError("--mixed-precision fp16 needs a CUDA device (on CPU there is no loss scaling and "
                                "no speed to gain); use bf16 or no")
        return "no" if value == "auto" else value
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
    model = model.to(runtime.device)
    optimizer = torch.optim.AdamW(weight_decay_groups(model.named_parameters(), settings.weight_decay),
                                  lr=float(settings.lr), eps=float(settings.adam_epsilon))
    steps_per_epoch = math.ceil(len(train_loader) / settings.grad_accum)
    total_steps = steps_per_epoch * settings.epochs
    scheduler = get_scheduler(settings.scheduler, optimizer, num_warmup_steps=int(settings.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    step = _OptimizerStep(model, optimizer, scheduler, settings, runtime.grad_scaler())
    outcome = TrainOutcome(best_score=-math.inf, best_epoch=0, epochs_run=0, optimizer_steps=0, stopped_early=False)
    best_state: dict[str, torch.Tensor] | None = None
    with progress_bar(progress, console, unit="batch") as bars:
        task = bars.add_task(label, total=len(train_loader) * settings.epochs)
        for epoch in range(1, settings.epochs + 1):
            loss = _train_epoch(model, train_loader, step, runtime, bars, task, outcome)
            if not math.isfinite(loss):  # the weights are NaN from here on: every later score would be noise
                raise LangsampError(f"{label}: the training loss is {loss} in epoch {epoch} (diverged); lower --lr, "
                                    "or use --mixed-precision no if it happened in half precision")
            score = _score(model, dev_score, runtime)
            outcome.epochs_run = epoch
            outcome.history.append({"epoch": epoch, "train_loss": loss, "dev_score": score})
            console.print(f"  {label} epoch {epoch}: train loss {loss:.4f}, dev {score:.4f}", highlight=False)
            if score > outcome.best_score:
                outcome.best_score, outcome.best_epoch = score, epoch
                best_state = _cpu_copy(model)
            elif settings.patience and epoch - outcome.best_epoch >= settings.patience:
                outcome.stopped_early = epoch < settings.epochs
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, outcome


class _OptimizerStep:
    """Backward of one micro-batch, and the optimizer step every ``grad_accum`` micro-batches.

    The loss of each micro-batch is divided by ``grad_accum`` (also in a short last window), and the
    last micro-batch of an epoch always steps, as accelerate's ``accumulate`` did before.
    """

    def __init__(self, model, optimizer, scheduler, settings: TrainSettings, scaler: torch.amp.GradScaler | None):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.settings, self.scaler = settings, scaler

    def backward(self, loss: torch.Tensor) -> None:
        scaled = loss / self.settings.grad_accum
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()

    def step(self) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.settings.max_grad_norm and self.settings.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.settings.max_grad_norm))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)


def _train_epoch(model, loader, step: _OptimizerStep, runtime: Runtime, bars, task, outcome: TrainOutcome) -> float:
    model.train()
    total = torch.zeros((), dtype=torch.float64, device=runtime.device)  # summed on the device: no sync per batch
    batches, last = 0, len(loader)
    for index, batch in enumerate(loader, start=1):
        batch = {key: value.to(runtime.device, non_blocking=True) for key, value in batch.items()}
        with runtime.autocast():
            loss = model(**batch).loss
        step.backward(loss)
        if index % step.settings.grad_accum == 0 or index == last:
            step.step()
            outcome.optimizer_steps += 1
        total += loss.detach()
        batches += 1
        bars.advance(task)
    return float(total) / max(batches, 1)


def _score(model: torch.nn.Module, dev_score: Callable[[torch.nn.Module], float], runtime: Runtime) -> float:
    model.eval()
    with torch.no_grad(), runtime.autocast():
        return float(dev_score(model))


def _cpu_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def progress_bar(enabled: bool, console: Console | None = None, unit: str = "step"):
    """Progress of training and evaluation (:func:`langsamp_cli.progress.make_progress`; nothing when not enabled)."""
    return make_progress(console or Console(stderr=True), enabled, unit=unit, transient=True)
