"""Pretraining throughput: langsamp's trainer step vs a plain Hugging Face ``Trainer`` MLM run.

Both sides train the same masked LM (same initial weights) on the same one-language chunks from the bundled demo
corpus, with the same per-device batch, AdamW settings and 15% masking:

- ours: ``langsamp_cli.pretrain.trainer.train_step`` (the trainer's real inner loop: ChunkSampler -> MLMCollator ->
  LangSAMPForMaskedLM with language+script tables -> accelerate backward -> AdamW), where the LM head runs on the
  masked rows only;
- baseline: ``transformers.Trainer`` + ``DataCollatorForLanguageModeling`` on ``XLMRobertaForMaskedLM``, which
  computes logits for every position and then ignores 85% of them.

Settings: (a) ``small-250k``: 2 layers x 256 hidden with XLM-R's 250,002-entry vocabulary (the LM head dominates,
as in XLM-R-base where it is a third of the parameters); (b) ``demo``: the `langsamp pretrain` demo model.
Tokens come from the demo tokenizer in both settings (the vocabulary size is what costs, not which ids occur).

Timing: after warmup steps, both sides alternate in blocks (ours, baseline, ours, baseline) so machine load hits
both alike; tokens/s is measured on process CPU time (other jobs on a shared machine barely disturb it), with
wall time reported too. Same torch thread count on both sides (``--threads``, default 1).

Loss definition: on one batch with zeroed language/script tables, our loss (mean cross-entropy over the masked
tokens, head on masked rows) and the HF model's loss (same mean, head on all rows) must agree; the difference
is written to the JSON.

    python benchmarks/pretrain_throughput.py            # writes benchmarks/results/pretrain_throughput.json
    python benchmarks/pretrain_throughput.py --quick    # fewer steps (smoke run)
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich import box
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from langsamp_cli.io_utils import atomic_write_json  # noqa: E402

RESULT = REPO / "benchmarks" / "results" / "pretrain_throughput.json"


@dataclass
class Setting:
    name: str
    arch: dict[str, int]
    vocab_size: int | None      # None = the tokenizer's size
    seq_len: int
    batch_size: int


SETTINGS = [
    Setting("small-250k", dict(hidden_size=256, num_hidden_layers=2, num_attention_heads=4, intermediate_size=1024),
            250_002, 128, 4),
    Setting("demo", dict(hidden_size=64, num_hidden_layers=8, num_attention_heads=4, intermediate_size=128),
            None, 128, 16),
]


def build_tokenizer(workdir: Path, corpus: Any) -> Any:
    from langsamp_cli.pretrain.trainer import tokenizer_training_lines
    from langsamp_cli.tokenizer import train_unigram_tokenizer

    return train_unigram_tokenizer(tokenizer_training_lines(corpus, limit=20_000), 4000, workdir / "tokenizer")


def build_models(setting: Setting, tokenizer: Any, lang2id: dict, script2id: dict) -> tuple[Any, Any]:
    """(LangSAMP model, plain HF masked LM) with identical initial weights."""
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    from langsamp_cli.model import build_model

    config = XLMRobertaConfig(vocab_size=setting.vocab_size or len(tokenizer), max_position_embeddings=setting.seq_len
                              + 2, type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              **setting.arch)
    torch.manual_seed(0)
    ours = build_model("scratch", lang2id, script2id, variant="both", from_scratch_config=config)
    plain = XLMRobertaForMaskedLM(config)
    plain.load_state_dict(ours.mlm.state_dict())
    return ours, plain


def loss_agreement(ours: Any, plain: Any, batch: dict[str, torch.Tensor]) -> float:
    """|our loss - HF loss| on one batch with the language/script tables zeroed (same model otherwise)."""
    probe = copy.deepcopy(ours).eval()
    for table in probe.tables().values():
        table.data.zero_()
    reference = copy.deepcopy(plain).eval()
    reference.load_state_dict(probe.mlm.state_dict())
    with torch.no_grad():
        ours_loss = float(probe(**batch).loss)
        hf_loss = float(reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  labels=batch["labels"]).loss)
    return abs(ours_loss - hf_loss)


class OursRunner:
    """The trainer's own step function with its sampler, collator, optimizer and schedule."""

    def __init__(self, model: Any, tokenizer: Any, corpus: Any, lang2id: dict, script2id: dict, setting: Setting):
        from accelerate import Accelerator
        from transformers import get_linear_schedule_with_warmup

        from langsamp_cli.pretrain.collate import MLMCollator
        from langsamp_cli.pretrain.config import PretrainConfig
        from langsamp_cli.pretrain.corpus import ChunkSampler
        from langsamp_cli.pretrain.trainer import make_optimizer

        self.config = PretrainConfig(batch_size=setting.batch_size, grad_accum=1, max_seq_len=setting.seq_len,
                                     lr=5e-5, max_steps=10_000)
        self.accelerator = Accelerator(cpu=True)
        optimizer = make_optimizer(model, self.config)
        self.scheduler = get_linear_schedule_with_warmup(optimizer, 0, self.config.max_steps)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.sampler = ChunkSampler(corpus, tokenizer, lang2id, script2id, setting.seq_len, 0.3, seed=0)
        self.collator = MLMCollator(tokenizer, 0.15, seed=0)

    def run(self, steps: int) -> tuple[int, float, float]:
        from langsamp_cli.pretrain.trainer import train_step

        tokens, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
        for _ in range(steps):
            tokens += train_step(self.model, self.optimizer, self.scheduler, self.sampler, self.collator,
                                 self.accelerator, self.config)[1]
        return tokens, time.process_time() - cpu0, time.perf_counter() - wall0


class HFRunner:
    """transformers.Trainer + DataCollatorForLanguageModeling; steps after the first of each block are timed."""

    def __init__(self, model: Any, tokenizer: Any, chunks: list[list[int]], setting: Setting, workdir: Path):
        self.model, self.tokenizer, self.chunks, self.setting, self.workdir = model, tokenizer, chunks, setting, workdir
        self.offset = 0

    def run(self, steps: int) -> tuple[int, float, float]:
        from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments
        from transformers.trainer_callback import PrinterCallback

        timings: list[tuple[float, float]] = []

        class StepClock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                self.start = (time.process_time(), time.perf_counter())

            def on_step_end(self, args, state, control, **kwargs):
                timings.append((time.process_time() - self.start[0], time.perf_counter() - self.start[1]))

        n = (steps + 1) * self.setting.batch_size
        data = [{"input_ids": ids} for ids in self.chunks[self.offset:self.offset + n]]
        self.offset += n
        args = TrainingArguments(
            output_dir=str(self.workdir / "hf"), per_device_train_batch_size=self.setting.batch_size,
            max_steps=steps + 1, learning_rate=5e-5, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-6,
            weight_decay=0.01, optim="adamw_torch", use_cpu=True, report_to="none", save_strategy="no",
            logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=False, seed=0)
        collator = DataCollatorForLanguageModeling(self.tokenizer, mlm=True, mlm_probability=0.15)
        trainer = Trainer(model=self.model, args=args, train_dataset=data, data_collator=collator,
                          callbacks=[StepClock()])
        trainer.remove_callback(PrinterCallback)  # no end-of-training summary lines in the benchmark output
        trainer.train()
        measured = timings[1:]  # the first step of a block pays for the Trainer's lazy setup
        tokens = len(measured) * self.setting.batch_size * self.setting.seq_len
        return tokens, sum(t[0] for t in measured), sum(t[1] for t in measured)


def benchmark(setting: Setting, tokenizer: Any, corpus: Any, steps: int, blocks: int, warmup: int,
              workdir: Path) -> dict[str, Any]:
    from langsamp_cli.pretrain.corpus import ChunkSampler
    from langsamp_cli.pretrain.trainer import corpus_maps

    lang2id, script2id = corpus_maps(corpus)
    ours_model, plain_model = build_models(setting, tokenizer, lang2id, script2id)
    chunk_source = ChunkSampler(corpus, tokenizer, lang2id, script2id, setting.seq_len, 0.3, seed=0)
    chunks = [chunk_source.next_example().input_ids for _ in range((steps + 1) * blocks * setting.batch_size + 64)]
    from langsamp_cli.pretrain.collate import MLMCollator

    probe_batch = MLMCollator(tokenizer, 0.15, seed=1)(ChunkSampler(corpus, tokenizer, lang2id, script2id,
                                                                    setting.seq_len, 0.3, seed=1).next_batch(4))
    loss_diff = loss_agreement(ours_model, plain_model, probe_batch)

    ours, hf = OursRunner(ours_model, tokenizer, corpus, lang2id, script2id, setting), \
        HFRunner(plain_model, tokenizer, chunks, setting, workdir)
    ours.run(warmup)
    hf.run(warmup)
    totals = {"ours": [0, 0.0, 0.0], "hf": [0, 0.0, 0.0]}
    for _ in range(blocks):
        for name, runner in (("ours", ours), ("hf", hf)):
            tokens, cpu, wall = runner.run(steps)
            totals[name] = [a + b for a, b in zip(totals[name], (tokens, cpu, wall))]
    rate = {name: {"tokens_per_cpu_s": t[0] / t[1], "tokens_per_wall_s": t[0] / t[2], "tokens": t[0]}
            for name, t in totals.items()}
    params = sum(p.numel() for p in plain_model.parameters())
    return {
        "setting": setting.name, "vocab_size": plain_model.config.vocab_size, **setting.arch,
        "seq_len": setting.seq_len, "batch_size": setting.batch_size, "parameters": params,
        "steps_per_block": steps, "blocks": blocks, "warmup_steps": warmup,
        "ours": rate["ours"], "hf_trainer": rate["hf"],
        "speedup_cpu": rate["ours"]["tokens_per_cpu_s"] / rate["hf"]["tokens_per_cpu_s"],
        "speedup_wall": rate["ours"]["tokens_per_wall_s"] / rate["hf"]["tokens_per_wall_s"],
        "loss_abs_diff_zero_tables": loss_diff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides")
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from langsamp_cli.demo_corpus import demo_corpus_dir
    from langsamp_cli.pretrain.corpus import scan_corpus

    corpus = scan_corpus(demo_corpus_dir())
    steps, blocks, warmup = (2, 1, 1) if args.quick else (3, 2, 1)
    console = Console()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp), corpus)
        for setting in SETTINGS:
            console.print(f"benchmarking {setting.name} ...", highlight=False)
            results.append(benchmark(setting, tokenizer, corpus, steps, blocks, warmup, Path(tmp)))
    table = Table(title="pretraining throughput (tokens/s of process CPU time)", box=box.SIMPLE_HEAD)
    for column in ("setting", "vocab", "ours", "HF Trainer", "speedup", "speedup (wall)", "|loss diff|"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for r in results:
        table.add_row(r["setting"], f"{r['vocab_size']:,}", f"{r['ours']['tokens_per_cpu_s']:,.0f}",
                      f"{r['hf_trainer']['tokens_per_cpu_s']:,.0f}", f"{r['speedup_cpu']:.2f}x",
                      f"{r['speedup_wall']:.2f}x", f"{r['loss_abs_diff_zero_tables']:.1e}")
    console.print(table)
    atomic_write_json(args.output, {
        "benchmark": "pretrain_throughput", "results": results, "threads": args.threads, "quick": args.quick,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                    "cpu_count": __import__("os").cpu_count(), "processor": platform.processor()},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    console.print(f"wrote {args.output}", highlight=False)


if __name__ == "__main__":
    main()
