"""How many CPU threads torch computes with on a CPU-only run.

torch starts one intra-op thread per core. On a machine where other processes also want the cores, every
operation of a multi-threaded step waits for its slowest thread, and a thread that lost its core to another
process stalls the step: throughput can fall far below that of a single thread. Measured on a shared 2-core
machine (``benchmarks/pretrain_threads.py``, results in docs/benchmarks.md), so the default leaves one core
to the rest of the machine when it is busy: ``min(cores, torch's default)`` threads when the 1-minute load
average says the cores are free, one fewer per busy core otherwise (never fewer than one).
``$LANGSAMP_THREADS`` sets the number outright. The CLI applies the policy to every command (through
``OMP_NUM_THREADS``, before torch loads); pretraining applies it again when it starts.
"""

from __future__ import annotations

import os
import sys

from langsamp_cli.errors import LangsampError

ENV = "LANGSAMP_THREADS"


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def busy_cores() -> int:
    """Cores other processes keep busy, from the 1-minute load average (0 where it cannot be read)."""
    try:
        return int(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0


def cpu_threads(torch_default: int, cores: int | None = None, busy: int | None = None) -> int:
    """The thread count for a CPU run: ``$LANGSAMP_THREADS``, else the default policy of the module doc."""
    value = os.environ.get(ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise LangsampError(f"{ENV}={value!r}: use a whole number of threads, 1 or more")
        return int(value)
    cores = available_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    return max(1, min(cores, torch_default, cores - busy))


def set_thread_environment() -> None:
    """For a command about to start (torch not yet imported): ``OMP_NUM_THREADS`` from :func:`cpu_threads`, so
    fine-tuning and encoding on CPU follow the same policy as pretraining. A value the user set is kept."""
    if "OMP_NUM_THREADS" in os.environ or "torch" in sys.modules:
        return
    cores = available_cores()
    os.environ["OMP_NUM_THREADS"] = str(cpu_threads(torch_default=cores, cores=cores))


def use_cpu_threads() -> int:
    """Set torch's intra-op threads for a CPU run (see :func:`cpu_threads`); returns the number."""
    import torch

    threads = cpu_threads(torch.get_num_threads())
    torch.set_num_threads(threads)
    return threads
