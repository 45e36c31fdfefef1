"""Moving a model to an extended vocabulary at XLM-R -> Glot500-m size: time and peak extra memory.

The paper's run resizes XLM-R's 250,002 x 768 token table to Glot500-m's 401,145 rows. This script builds a
synthetic model of that shape (one transformer layer: only the token table matters; random weights) and two
synthetic SentencePiece Unigram tokenizers (250,002 pieces; the same plus 151,143 longer pieces), then measures,
each side in a fresh process so that one side's freed memory cannot hide the other's:

- ``langsamp``: ``pretrain/vocab_transfer.transfer_vocabulary`` with ``--method`` (rows matched by piece),
- ``transformers``: ``model.resize_token_embeddings(401145, mean_resizing=False)`` (what the official launcher
  calls; it cannot match by piece, so it only works for a strict extension).

Times are wall seconds and process CPU seconds (the latter barely moves when other jobs share the machine).
Peak extra memory = the highest resident set size sampled every 2 ms during the call, minus the resident set size
just before it. Target: a few seconds, and an extra peak of at most about twice the new table
(401,145 x 768 x 4 bytes = 1.23 GB).

    python benchmarks/vocab_resize.py                      # subword -> benchmarks/results/vocab_resize.json
    python benchmarks/vocab_resize.py --method random
    python benchmarks/vocab_resize.py --old 20000 --new 32000 --hidden 256   # small smoke run
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import platform
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from _common import RESULTS, silence_transformers, write_json  # first: it puts this checkout on sys.path

TARGET_EXTRA = 2.0   # peak extra memory / bytes of the new table


def synthetic_pieces(count: int, length_from: int) -> list[str]:
    """``count`` distinct word-start pieces of lowercase letters, shortest first, from ``length_from`` letters."""
    pieces: list[str] = []
    for length in itertools.count(length_from):
        for letters in itertools.product(string.ascii_lowercase, repeat=length):
            pieces.append("▁" + "".join(letters))
            if len(pieces) == count:
                return pieces
    return pieces


def tokenizers(old_size: int, new_size: int):
    """XLM-R-layout Unigram tokenizers: specials, letters, old pieces (1-4 letters), <mask>; then longer pieces."""
    from transformers import XLMRobertaTokenizer

    letters = [(c, -5.0) for c in string.ascii_lowercase]
    old_body = [(p, -8.0 - i * 1e-5) for i, p in enumerate(synthetic_pieces(old_size - 5 - len(letters), 1))]
    old_vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *letters, *old_body]
    extra = synthetic_pieces(new_size - old_size, 5)   # longer than every old piece: all new
    new_vocab = old_vocab + [("<mask>", 0.0)] + [(p, -12.0) for p in extra]
    old = XLMRobertaTokenizer(vocab=old_vocab)
    new = XLMRobertaTokenizer(vocab=new_vocab)
    return old, new


def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096


class PeakSampler:
    """The highest resident set size seen while the block runs (sampled every 2 ms in a thread)."""

    def __enter__(self) -> PeakSampler:
        self.before = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def one_side(side: str, method: str, old_size: int, new_size: int, hidden: int) -> dict:
    """Build the model and tokenizers, then time and measure one resize (run in its own process)."""
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    torch.manual_seed(0)
    old, new = tokenizers(old_size, new_size)
    assert len(old) == old_size and len(new) == new_size, (len(old), len(new))
    config = XLMRobertaConfig(vocab_size=old_size, hidden_size=hidden, num_hidden_layers=1,
                              num_attention_heads=max(hidden // 64, 1), intermediate_size=4 * hidden)
    model = XLMRobertaForMaskedLM(config)
    before_rows = model.get_input_embeddings().weight[:old_size - 1].detach().clone()
    with PeakSampler() as memory:
        started, started_cpu = time.perf_counter(), time.process_time()
        if side == "langsamp":
            from langsamp_cli.pretrain.vocab_transfer import transfer_vocabulary

            transfer = transfer_vocabulary(model, old, new, method, seed=0)
            detail = transfer.record()
        else:
            model.resize_token_embeddings(new_size, mean_resizing=False)
            detail = {}
        seconds, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    table = model.get_input_embeddings().weight
    assert table.shape == (new_size, hidden) and torch.equal(table[:old_size - 1], before_rows)
    return {"side": side, "seconds": round(seconds, 3), "cpu_s": round(cpu, 3), "extra_peak_bytes": memory.peak - memory.before,
            "new_table_bytes": new_size * hidden * table.element_size(), "detail": detail}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("random", "mean", "subword"), default="subword")
    parser.add_argument("--old", type=int, default=250_002)
    parser.add_argument("--new", type=int, default=401_145)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--side", choices=("langsamp", "transformers"), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS / "vocab_resize.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    silence_transformers()
    if args.side:  # a child process: one measurement, as JSON on stdout
        print(json.dumps(one_side(args.side, args.method, args.old, args.new, args.hidden)))
        return {}
    sides = {}
    for side in ("langsamp", "transformers"):
        command = [sys.executable, __file__, "--side", side, "--method", args.method, "--old", str(args.old),
                   "--new", str(args.new), "--hidden", str(args.hidden), "--threads", str(args.threads)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        sides[side] = json.loads(done.stdout.strip().splitlines()[-1])
    ours = sides["langsamp"]
    extra = ours["extra_peak_bytes"] / ours["new_table_bytes"]
    record = {
        "benchmark": "vocab_resize",
        "question": f"resize a {args.old:,} x {args.hidden} token table to {args.new:,} rows "
                    f"(--init-new-tokens {args.method}) vs transformers' resize_token_embeddings",
        "seconds": ours["seconds"], "cpu_s": ours["cpu_s"], "extra_peak_gb": round(ours["extra_peak_bytes"] / 1e9, 3),
        "new_table_gb": round(ours["new_table_bytes"] / 1e9, 3), "extra_over_new_table": round(extra, 3),
        "target_extra_over_new_table": TARGET_EXTRA, "within_target": extra <= TARGET_EXTRA,
        "transformers_seconds": sides["transformers"]["seconds"], "transformers_cpu_s": sides["transformers"]["cpu_s"],
        "transformers_extra_peak_gb": round(sides["transformers"]["extra_peak_bytes"] / 1e9, 3),
        "rows": ours["detail"],
        "setting": {"old": args.old, "new": args.new, "hidden": args.hidden, "method": args.method,
                    "threads": args.threads, "model": "1-layer XLM-R shape, random weights; synthetic Unigram "
                    "tokenizers (the new one a strict extension)"},
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "machine": platform.machine(), "time": datetime.datetime.now(datetime.timezone.utc)
                        .strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    if args.old == 250_002 and args.new == 401_145 and args.hidden == 768:
        write_json(args.output.with_name(f"{args.output.stem}_{args.method}.json")
                   if args.method != "subword" else args.output, record)
    print(f"langsamp ({args.method}): {ours['seconds']:.2f} s ({ours['cpu_s']:.2f} s CPU), extra peak {record['extra_peak_gb']:.2f} GB = "
          f"{extra:.2f} x the new table ({record['new_table_gb']:.2f} GB; target <= {TARGET_EXTRA}: "
          f"{'met' if extra <= TARGET_EXTRA else 'NOT met'}); transformers resize_token_embeddings: "
          f"{record['transformers_seconds']:.2f} s ({record['transformers_cpu_s']:.2f} s CPU), extra peak {record['transformers_extra_peak_gb']:.2f} GB")
    return record


if __name__ == "__main__":
    main()
