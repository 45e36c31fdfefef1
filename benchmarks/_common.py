"""What every benchmark script shares: the checkout on ``sys.path``, ``--device``, timing, quiet transformers, JSON.

The scripts run as ``python benchmarks/NAME.py`` (this folder is then first on ``sys.path``) and import this
module before anything from ``langsamp_cli``, so they measure the checkout they sit in even where langsamp is not
installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
# The public data pack: ../shared/data beside the checkout, or $LANGSAMP_SHARED_DATA (as for the tests), e.g. a
# copy carried to a GPU machine by scripts/prepare_gpu_bundle.sh.
SHARED = Path(os.environ.get("LANGSAMP_SHARED_DATA", REPO.parent / "shared" / "data"))
DEVICES = ("cpu", "cuda")


def add_device_argument(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument("--device", choices=DEVICES, default="cpu", help=help)


def check_device(parser: argparse.ArgumentParser, device: str) -> None:
    """``--device cuda`` where torch sees no GPU: the usual argparse error (exit 2), before any work starts."""
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU on this machine (run on a GPU, or use --device cpu)")


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work (timings of asynchronous kernels); nothing on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Wall and process-CPU seconds of a ``with`` block; CPU time barely moves when other jobs share the machine."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def as_dict(self) -> dict[str, float]:
        return {"cpu_s": round(self.cpu, 4), "wall_s": round(self.wall, 4)}


def silence_transformers() -> None:
    """No load reports or progress bars from transformers in a benchmark's output (for the whole script)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def write_json(path: Path, record: dict[str, Any]) -> Path:
    """The result file, written atomically (parent folders made as needed)."""
    from langsamp_cli.io_utils import atomic_write_json

    return atomic_write_json(path, record)
