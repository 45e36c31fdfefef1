"""Pretraining throughput of the demo against the torch thread count, on a machine another process keeps busy.

Runs `langsamp pretrain` (the demo preset, a few steps) once per thread count, each time alone and beside
``--load N`` CPU-bound processes this script starts (and stops), and reads the trainer's own tokens/s from
log.jsonl (the first logging window, which holds the start-up, is left out). Wall-clock numbers: on a shared
machine they are noisy, so read the ratios, and rerun where it matters.

    python benchmarks/pretrain_threads.py                       # -> benchmarks/results/pretrain_threads.json
    python benchmarks/pretrain_threads.py --steps 20 --threads 1,2 --load 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, RESULTS, write_json

BUSY_LOOP = "import time\nend = time.time() + 3600\nwhile time.time() < end: pass\n"


def run_pretrain(threads: int, steps: int, log_every: int, folder: Path) -> dict:
    env = {**os.environ, "LANGSAMP_THREADS": str(threads)}
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "langsamp_cli", "pretrain", "--max-steps", str(steps),
                           "--log-every", str(log_every), "--save-every", str(steps), "--no-progress",
                           "--output-dir", str(folder)], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pretrain failed:\n{done.stderr[-2000:]}")
    records = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines() if line.strip()]
    steady = records[1:] or records
    return {"threads": threads, "tokens_per_s": round(sum(r["tokens_per_s"] for r in steady) / len(steady), 1),
            "first_window_tokens_per_s": records[0]["tokens_per_s"], "wall_s": round(time.time() - started, 1)}


def measure(threads: list[int], steps: int, log_every: int, load: int) -> list[dict]:
    rows = []
    for busy in (0, load) if load else (0,):
        loaders = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
        try:
            for count in threads:
                with tempfile.TemporaryDirectory() as tmp:
                    row = {"busy_processes": busy, "loadavg_1min": round(os.getloadavg()[0], 2),
                           **run_pretrain(count, steps, log_every, Path(tmp) / "run")}
                print(row, flush=True)
                rows.append(row)
        finally:
            for process in loaders:
                process.kill()
                process.wait()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="comma list of torch thread counts")
    parser.add_argument("--steps", type=int, default=30, help="pretraining steps per run")
    parser.add_argument("--log-every", type=int, default=5)
    parser.add_argument("--load", type=int, default=1, help="busy processes started for the loaded runs (0: none)")
    parser.add_argument("--output", type=Path, default=RESULTS / "pretrain_threads.json")
    args = parser.parse_args()
    rows = measure([int(t) for t in args.threads.split(",")], args.steps, args.log_every, args.load)
    write_json(args.output, {"rows": rows, "cpu_count": os.cpu_count(), "steps": args.steps,
                             "note": "wall-clock tokens/s of the demo preset; other jobs on the machine add noise"})


if __name__ == "__main__":
    main()
