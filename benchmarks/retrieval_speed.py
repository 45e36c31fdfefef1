"""SR-B / SR-T speed: langsamp's encoder vs a loop written the way the official scripts work.

Baseline (official style): ``tokenizer.tokenize`` per sentence, ``[cls] + tokens + [sep]``, fixed
batches in file order padded to the batch maximum, the full model with ``output_hidden_states``,
mean pooling of every layer, layer 8 kept, both sides (English too) encoded for every language,
faiss ``IndexFlatL2`` per language, batch size 128 (the official ``.sh``). The model is loaded once
(the official script reloads it for every file, so the baseline here is, if anything, flattered).
Batch size never changes a number, so each side runs at its own default (ours: 32); the SR-T
baseline is also timed at batch 32 and reported as ``official_style_same_batch_cpu_s``.

Ours: ``SentenceEncoder`` (first 8 blocks only, length-sorted batches, inference mode, English
dedupe, disk cache) + ``score_pairs``. Cold = empty cache (model load and fingerprint included);
warm = a second run over the same cache. Accuracies must be identical (asserted).

Timing: both sides run with the same torch thread count (default 1) and are compared on process
CPU time, which other jobs on a shared machine barely disturb; wall time is reported too.

Memory: resident-set growth and the Python/numpy heap peak (tracemalloc), measured in a fresh
subprocess per size while the real runner scores 5, 10, 20 languages; it must stay flat.

On a GPU (``--device cuda``) the run is one side-by-side comparison on the device, XLM-R-base sized
(12 x 768, 12 heads, 3072 FFN, 250,002-entry vocabulary, random weights; the tokenizer is a Unigram
one trained on the benchmark sentences, since no XLM-R tokenizer may be downloaded here), SR-T on
the real Tatoeba files when ../shared/data is present (default 30 languages x up to 1000 pairs):
the official-style loop (fp32) and our encoder at fp32 and at bf16, each after a short warm-up,
timed on the wall clock between device synchronisations, with sentences/s (over the sentences the
task holds, 2 per pair, so ratios are time ratios), peak GPU memory (``max_memory_allocated``)
and the accuracies of each side. Our encoder runs without its disk cache there (encoding is
what is measured). ``--side-by-side --device cpu`` runs the same comparison on CPU (no bf16 side).

    python benchmarks/retrieval_speed.py                # real ../shared/data when present
    python benchmarks/retrieval_speed.py --quick        # fewer sentences (smoke run)
    python benchmarks/retrieval_speed.py --device cuda  # GPU -> benchmarks/results/retrieval_speed_cuda.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import os
import resource
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import faiss
import numpy as np
import torch

from _common import (  # first: it puts this checkout on sys.path
    REPO,
    RESULTS,
    SHARED,
    Timer,
    add_device_argument,
    check_device,
    silence_transformers,
    synchronize,
    write_json,
)
from langsamp_cli.data.parallel import ParallelPairs
from langsamp_cli.data.tatoeba import discover_tatoeba
from langsamp_cli.encode import SentenceEncoder
from langsamp_cli.tasks.retrieval import (
    RetrievalPlan,
    RetrievalUnit,
    plan_from_pair_files,
    plan_sr_b_bibles,
    release_free_memory,
    run_retrieval,
    score_pairs,
)
from langsamp_cli.tiny import build_tiny_model

MODEL_ARCH = dict(num_hidden_layers=12, hidden_size=256, num_attention_heads=4, intermediate_size=1024)
LAYER = 8


# ---------------------------------------------------------------------------- data
def load_task_data(task: str, n_languages: int, n_pairs: int) -> list[ParallelPairs]:
    """Real shared data when present (SR-T: LASER Tatoeba; SR-B: KJV x christos-c), else generated."""
    if task == "sr-t" and (SHARED / "tatoeba" / "v1").is_dir():
        tatoeba = SHARED / "tatoeba" / "v1"
        plan = plan_from_pair_files(*discover_tatoeba(tatoeba), None, str(tatoeba))
    elif task == "sr-b" and (SHARED / "bible" / "christos-c").is_dir():
        plan = plan_sr_b_bibles(SHARED / "bible" / "christos-c", SHARED / "bible" / "sword" / "eng_Latn.KJV.tsv",
                                None, n_pairs)
    else:
        return generated_pairs(task, n_languages, n_pairs)
    pairs = []
    for name in sorted(plan.units)[:n_languages]:
        loaded = plan.units[name].load()
        pairs.append(ParallelPairs(name, loaded.target[:n_pairs], loaded.english[:n_pairs]))
    return pairs


def generated_pairs(task: str, n_languages: int, n_pairs: int) -> list[ParallelPairs]:
    rng = random.Random(0)
    words = [f"w{i}" for i in range(3000)]
    shared_english = [" ".join(rng.choices(words, k=rng.randint(4, 40))) for _ in range(n_pairs)]
    out = []
    for lang in range(n_languages):
        english = shared_english if task == "sr-b" else [" ".join(rng.choices(words, k=rng.randint(4, 40))) for _ in range(n_pairs)]
        target = [" ".join(reversed(s.split())) + f" x{lang}" for s in english]
        out.append(ParallelPairs(f"l{lang:02d}_Latn", target, english))
    return out


# ---------------------------------------------------------------------------- official-style baseline
def official_embed(model, tokenizer, sentences: list[str], batch_size: int,
                   device: torch.device | None = None) -> list[np.ndarray]:
    """All layers' mean-pooled vectors, the way the official extract_embeddings builds them."""
    device = device or torch.device("cpu")
    tokens = [tokenizer.tokenize(s) for s in sentences]
    layers = model.config.num_hidden_layers
    out = [np.zeros((len(sentences), model.config.hidden_size), np.float32) for _ in range(layers)]
    for start in range(0, len(tokens), batch_size):
        chunk = tokens[start : start + batch_size]
        width = min(max(len(t) for t in chunk) + 2, 512)
        ids, mask = [], []
        for toks in chunk:
            row = tokenizer.convert_tokens_to_ids([tokenizer.cls_token] + toks[: width - 2] + [tokenizer.sep_token])
            ids.append(row + [tokenizer.pad_token_id] * (width - len(row)))
            mask.append([1] * len(row) + [0] * (width - len(row)))
        ids_t, mask_t = torch.tensor(ids).to(device), torch.tensor(mask).to(device)
        with torch.no_grad():
            states = model(input_ids=ids_t, attention_mask=mask_t, token_type_ids=torch.zeros_like(ids_t),
                           output_hidden_states=True).hidden_states[-layers:]
            for layer, hidden in enumerate(states):
                pooled = (hidden * mask_t.unsqueeze(2).float()).sum(1) / mask_t.sum(1).view(-1, 1).float()
                out[layer][start : start + len(chunk)] = pooled.cpu().numpy().astype(np.float32)
    return out


def official_accuracy(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    faiss.normalize_L2(x)
    faiss.normalize_L2(y)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    _, predictions = index.search(y, 10)
    hits = {k: sum(i in p[:k] for i, p in enumerate(predictions)) for k in (1, 5, 10)}
    return {f"acc@{k}": hits[k] / len(predictions) for k in (1, 5, 10)}


def run_official(model_dir: Path, data: list[ParallelPairs], batch_size: int) -> tuple[Timer, dict]:
    with Timer() as timer:
        scores = _official_loop(model_dir, data, batch_size)
    return timer, scores


def _official_loop(model_dir: Path, data: list[ParallelPairs], batch_size: int) -> dict:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    scores = {}
    for pairs in data:
        target = official_embed(model, tokenizer, pairs.target, batch_size)
        english = official_embed(model, tokenizer, pairs.english, batch_size)
        scores[pairs.lang_script] = official_accuracy(target[LAYER - 1], english[LAYER - 1])  # index 7
    return scores


# ---------------------------------------------------------------------------- ours
def run_ours(model_dir: Path, data: list[ParallelPairs], batch_size: int, cache_dir: Path) -> tuple[Timer, dict, int]:
    with Timer() as timer:
        encoder = SentenceEncoder(str(model_dir), layer=LAYER, batch_size=batch_size, cache_dir=cache_dir)
        scores = {pairs.lang_script: score_pairs(pairs, encoder, [LAYER])[LAYER] for pairs in data}
    return timer, scores, encoder.sentences_encoded


def compare(task: str, model_dir: Path, data: list[ParallelPairs], batch_size: int, official_batch_size: int,
            work: Path, same_batch_baseline: bool, repeats: int) -> dict:
    """Best of ``repeats`` (by CPU time) for every timing; speedups are CPU-time ratios."""
    official_runs = [run_official(model_dir, data, official_batch_size) for _ in range(repeats)]
    cold_runs = [run_ours(model_dir, data, batch_size, work / f"cache-{task}-{r}") for r in range(repeats)]
    warm_runs = [run_ours(model_dir, data, batch_size, work / f"cache-{task}-0") for _ in range(repeats)]
    official_t, official_scores = min(official_runs, key=lambda run: run[0].cpu)
    cold_t, cold_scores, encoded = min(cold_runs, key=lambda run: run[0].cpu)
    warm_t, warm_scores, warm_encoded = min(warm_runs, key=lambda run: run[0].cpu)
    assert all(run[1] == official_scores for run in official_runs + cold_runs + warm_runs), \
        f"{task}: accuracies differ from the official-style loop"
    assert warm_encoded == 0
    sentences = sum(2 * len(p) for p in data)
    row = {
        "languages": len(data),
        "pairs_per_language": [len(p) for p in data],
        "sentences_official_encodes": sentences,
        "sentences_we_encode_cold": encoded,
        "cpu_s": {"official_style": round(official_t.cpu, 2), "ours_cold": round(cold_t.cpu, 2),
                  "ours_warm": round(warm_t.cpu, 2)},
        "wall_s": {"official_style": round(official_t.wall, 2), "ours_cold": round(cold_t.wall, 2),
                   "ours_warm": round(warm_t.wall, 2)},
        "speedup_cold": round(official_t.cpu / cold_t.cpu, 2),
        "speedup_warm": round(official_t.cpu / warm_t.cpu, 2),
        "speedup_cold_wall": round(official_t.wall / cold_t.wall, 2),
        "identical_accuracies": True,
        "batch_size": {"official_style": official_batch_size, "ours": batch_size},
        "mean_acc@10": round(float(np.mean([s["acc@10"] for s in cold_scores.values()])), 4),
    }
    if same_batch_baseline:
        same_t, same_scores = min((run_official(model_dir, data, batch_size) for _ in range(repeats)),
                                  key=lambda run: run[0].cpu)
        assert same_scores == official_scores
        row["official_style_same_batch_cpu_s"] = round(same_t.cpu, 2)
        row["speedup_cold_same_batch"] = round(same_t.cpu / cold_t.cpu, 2)
    print(f"{task}: {json.dumps(row)}", flush=True)
    return row


# ---------------------------------------------------------------------------- memory (subprocesses)
class _MemoryStore:
    """Stands in for ResultStore (keeps records in memory) so the child runs the real runner loop."""

    def __init__(self) -> None:
        self.records: dict[str, dict] = {}

    def is_done(self, name: str) -> bool:
        return name in self.records

    def write(self, name: str, n: int, metrics: dict, extra: dict | None = None) -> None:
        self.records[name] = {"n": n, **metrics}

    def skip(self, name: str, reason: str) -> None:
        self.records[name] = {"reason": reason}


def memory_child(model_dir: Path, n_languages: int, n_pairs: int, batch_size: int) -> None:
    """Run the real runner over n languages; report resident memory (ru_maxrss is inherited over
    fork/exec on Linux, so the child samples /proc instead) and the Python/numpy heap peak."""
    from rich.console import Console

    data = {p.lang_script: p for p in load_task_data("sr-t", n_languages, n_pairs)}
    plan = RetrievalPlan({name: RetrievalUnit(name, lambda p=p: p) for name, p in data.items()})
    encoder = SentenceEncoder(str(model_dir), layer=LAYER, batch_size=batch_size, use_cache=False)
    encoder.encode(["warm up the model once"])
    release_free_memory()
    before = current_rss_mib()
    tracemalloc.start()
    store = _MemoryStore()
    run_retrieval(plan, encoder, {LAYER: store}, plan.names(), console=Console(file=open(os.devnull, "w")))
    _, heap_peak = tracemalloc.get_traced_memory()
    after = current_rss_mib()
    print(json.dumps({"languages": len(store.records), "sentences": 2 * sum(len(p) for p in data.values()),
                      "rss_before_mib": before, "rss_after_mib": after, "rss_growth_mib": after - before,
                      "python_numpy_heap_peak_mib": heap_peak / 2**20}))


def measure_memory(model_dir: Path, counts: list[int], n_pairs: int, batch_size: int) -> list[dict]:
    rows = []
    for count in counts:
        result = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(count), "--model-dir", str(model_dir), "--threads", "1",
             "--memory-pairs", str(n_pairs), "--batch-size", str(batch_size)],
            capture_output=True, text=True, check=True,
        )
        row = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append({k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()})
        print(f"memory: {rows[-1]}", flush=True)
    return rows


def current_rss_mib() -> float:
    """Resident set size now (not the peak), from /proc; 0.0 where /proc is unavailable."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * resource.getpagesize() / 2**20


# ---------------------------------------------------------------------------- side by side on one device
XLMR_BASE = dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                 vocab_size=250_002)


def build_xlmr_base(texts: list[str], output_dir: Path, tokenizer_vocab: int) -> Path:
    """XLM-R-base's architecture with random weights and a Unigram tokenizer trained on ``texts``."""
    from transformers import XLMRobertaModel

    from langsamp_cli.tiny import tiny_config
    from langsamp_cli.tokenizer import train_unigram_tokenizer

    train_unigram_tokenizer(texts, tokenizer_vocab, output_dir)
    torch.manual_seed(0)
    XLMRobertaModel(tiny_config(**XLMR_BASE), add_pooling_layer=False).save_pretrained(str(output_dir))
    return output_dir


def gpu_memory_scope(device: torch.device):
    """Resets the peak before a side runs; ``peak_mib()`` reads it after (None on CPU)."""
    class Scope:
        def __enter__(self):
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            return self

        def __exit__(self, *exc):
            return False

        @staticmethod
        def peak_mib() -> float | None:
            return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None
    return Scope()


def time_official(model_dir: Path, data: list[ParallelPairs], batch_size: int, device: torch.device) -> dict:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with gpu_memory_scope(device) as memory:
        model = AutoModel.from_pretrained(model_dir).to(device).eval()
        official_embed(model, tokenizer, data[0].english[:64], batch_size, device)  # warm-up (kernels, allocator)
        synchronize(device)
        with Timer() as timer:
            scores = {}
            for pairs in data:
                target = official_embed(model, tokenizer, pairs.target, batch_size, device)
                english = official_embed(model, tokenizer, pairs.english, batch_size, device)
                scores[pairs.lang_script] = official_accuracy(target[LAYER - 1], english[LAYER - 1])
            synchronize(device)
        peak = memory.peak_mib()
    del model
    return {"timer": timer, "scores": scores, "peak_gpu_mib": peak, "batch_size": batch_size, "dtype": "float32"}


def time_ours(model_dir: Path, data: list[ParallelPairs], batch_size: int, device: torch.device, dtype: str,
              max_batch_tokens: int | None) -> dict:
    encoder = SentenceEncoder(str(model_dir), layer=LAYER, batch_size=batch_size, device=str(device),
                              use_cache=False, dtype=dtype, max_batch_tokens=max_batch_tokens)
    with gpu_memory_scope(device) as memory:
        encoder.encode(data[0].english[:64])  # warm-up: loads the model onto the device
        encoder.sentences_encoded = 0
        synchronize(device)
        with Timer() as timer:
            scores = {pairs.lang_script: score_pairs(pairs, encoder, [LAYER])[LAYER] for pairs in data}
            synchronize(device)
        peak = memory.peak_mib()
    tokens = sum(len(ids) for pairs in data for ids in encoder.tokenize(pairs.target + pairs.english))
    return {"timer": timer, "scores": scores, "peak_gpu_mib": peak, "batch_size": batch_size, "tokens": tokens,
            "max_batch_tokens": encoder.max_batch_tokens, "dtype": dtype, "encoded": encoder.sentences_encoded}


def accuracy_gap(a: dict, b: dict) -> float:
    return round(max(abs(a[lang][k] - b[lang][k]) for lang in a for k in a[lang]), 6)


def side_by_side(args, device: torch.device, work: Path) -> dict:
    data = load_task_data("sr-t", args.languages, args.pairs)
    texts = [s for p in data for s in p.target + p.english]
    sentences = len(texts)
    if args.setting == "xlmr-base":
        model_dir = build_xlmr_base(texts, work / "model", args.tokenizer_vocab)
        arch = {**XLMR_BASE, "tokenizer_vocab": args.tokenizer_vocab}
    else:
        model_dir = build_tiny_model(texts, work / "model", vocab_size=8000, **MODEL_ARCH)
        arch = {**MODEL_ARCH, "vocab_size": 8000}
    sides = {"official_style_fp32": time_official(model_dir, data, args.official_batch_size, device),
             "ours_fp32": time_ours(model_dir, data, args.batch_size, device, "float32", args.max_batch_tokens)}
    if device.type == "cuda":
        sides["ours_bf16"] = time_ours(model_dir, data, args.batch_size, device, "bfloat16", args.max_batch_tokens)
    rows = {}
    for name, side in sides.items():
        seconds = side["timer"].wall
        rows[name] = {"wall_s": round(seconds, 3), "process_cpu_s": round(side["timer"].cpu, 3),
                      "sentences_per_s": round(sentences / seconds, 1),
                      "peak_gpu_mib": side["peak_gpu_mib"], "dtype": side["dtype"], "batch_size": side["batch_size"],
                      "mean_acc@10": round(float(np.mean([s["acc@10"] for s in side["scores"].values()])), 4)}
        if "max_batch_tokens" in side:
            rows[name].update(max_batch_tokens=side["max_batch_tokens"], sentences_encoded=side["encoded"],
                              tokens_per_s=round(side["tokens"] / seconds, 1))
    official, ours = sides["official_style_fp32"], sides["ours_fp32"]
    result = {
        "task": "sr-t", "languages": len(data), "pairs_per_language": [len(p) for p in data],
        "sentences": sentences, "model": arch, "layer": LAYER, "sides": rows,
        "speedup_fp32_vs_official": round(official["timer"].wall / ours["timer"].wall, 2),
        "identical_accuracies_fp32": ours["scores"] == official["scores"],
        "max_accuracy_gap_fp32_vs_official": accuracy_gap(ours["scores"], official["scores"]),
    }
    if "ours_bf16" in sides:
        bf16 = sides["ours_bf16"]
        result["speedup_bf16_vs_our_fp32"] = round(ours["timer"].wall / bf16["timer"].wall, 2)
        result["max_accuracy_gap_bf16_vs_fp32"] = accuracy_gap(bf16["scores"], ours["scores"])
        result["targets"] = {"speedup_fp32_vs_official>=5": result["speedup_fp32_vs_official"] >= 5,
                             "bf16_vs_fp32>=1.5": result["speedup_bf16_vs_our_fp32"] >= 1.5,
                             "identical_fp32_accuracies": result["identical_accuracies_fp32"]}
    print(json.dumps(result, indent=1), flush=True)
    return result


def device_record(device: torch.device) -> dict:
    record = {"type": device.type, "torch": torch.__version__, "platform": platform.platform()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        record.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                      capability=f"{props.major}.{props.minor}", cuda=torch.version.cuda)
    else:
        record.update(torch_threads=torch.get_num_threads(), cpu_count=os.cpu_count())
    return record


def provenance(device: torch.device, command: list[str]) -> dict:
    """Where the figures come from (this script, this machine, this commit, now), so nobody reads a CPU run
    as GPU figures."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    note = (f"measured by this script on {gpu}" if gpu else
            "measured by this script on CPU only; these are not GPU figures (run with --device cuda on a GPU)")
    return {"figures_from": {
        "device": device.type, "gpu": gpu, "note": note,
        "command": " ".join(["python", "benchmarks/retrieval_speed.py", *command]),
        "measured_at_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit}}


def run_side_by_side(args) -> None:
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="langsamp-bench-") as tmp:
        result = side_by_side(args, device, Path(tmp))
    report = {"benchmark": "retrieval_speed", "mode": "side-by-side on one device", "device": device_record(device),
              **provenance(device, sys.argv[1:]),
              "data": f"real {SHARED} (Tatoeba v1)" if (SHARED / "tatoeba" / "v1").is_dir() else "generated",
              "weights": "random init (speed does not depend on the weights)",
              "tokenizer": "Unigram trained on the benchmark sentences (no XLM-R tokenizer download)",
              "timing": "wall clock between device synchronisations, after a warm-up; model load not timed",
              "result": result}
    write_json(args.output, report)
    print(f"wrote {args.output}")


# ---------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_argument(parser, help="cuda: the side-by-side GPU run (XLM-R-base size, fp32 and bf16)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="the --device cuda comparison, also on CPU (a smoke run of that code path)")
    parser.add_argument("--setting", choices=("xlmr-base", "small"), default=None,
                        help="side-by-side model size (default: xlmr-base on cuda, small on cpu)")
    parser.add_argument("--tokenizer-vocab", type=int, default=32_000,
                        help="xlmr-base: pieces of the Unigram tokenizer trained on the benchmark sentences")
    parser.add_argument("--max-batch-tokens", type=int, default=None,
                        help="ours: padded tokens per batch (the encoder's default: batch-size x 512 on "
                             "cuda, batch-size x 128 on cpu)")
    parser.add_argument("--languages", type=int, default=None,
                        help="languages per task for the timing runs (default 10; 30 side by side)")
    parser.add_argument("--pairs", type=int, default=None,
                        help="pairs per language for the timing runs (default 200; 1000 side by side)")
    parser.add_argument("--batch-size", type=int, default=32, help="ours (the SentenceEncoder default)")
    parser.add_argument("--official-batch-size", type=int, default=128, help="the official .sh value")
    parser.add_argument("--repeats", type=int, default=1, help="timings are the best of this many runs")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both sides (1: CPU time stays meaningful on a shared machine)")
    parser.add_argument("--memory-counts", default="5,10,20")
    parser.add_argument("--memory-pairs", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="3 languages x 40 pairs, memory at 2,4")
    parser.add_argument("--output", type=Path, default=None,
                        help="default benchmarks/results/retrieval_speed.json (cpu), retrieval_speed_cuda.json "
                             "(cuda), retrieval_speed_side_by_side_cpu.json (--side-by-side on cpu)")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    check_device(parser, args.device)
    torch.set_num_threads(args.threads)
    silence_transformers()  # e.g. the load report of an MLM checkpoint read as a bare encoder
    if args.memory_child:
        memory_child(args.model_dir, args.memory_child, args.memory_pairs, args.batch_size)
        return
    side = args.device == "cuda" or args.side_by_side
    if args.output is None:
        name = ("retrieval_speed_cuda.json" if args.device == "cuda" else
                "retrieval_speed_side_by_side_cpu.json" if side else "retrieval_speed.json")
        args.output = RESULTS / name
    if args.quick:
        args.languages, args.pairs, args.memory_counts, args.memory_pairs = 3, 40, "2,4", 30
    args.languages = args.languages or (30 if side else 10)
    args.pairs = args.pairs or (1000 if side else 200)
    if side:
        args.setting = args.setting or ("xlmr-base" if args.device == "cuda" else "small")
        run_side_by_side(args)
        return

    with tempfile.TemporaryDirectory(prefix="langsamp-bench-") as tmp:
        work = Path(tmp)
        data = {task: load_task_data(task, args.languages, args.pairs) for task in ("sr-t", "sr-b")}
        texts = [s for pairs in data.values() for p in pairs for s in p.target + p.english]
        model_dir = build_tiny_model(texts, work / "model", vocab_size=8000, **MODEL_ARCH)
        results = {task: compare(task, model_dir, pairs, args.batch_size, args.official_batch_size, work,
                                 same_batch_baseline=task == "sr-t", repeats=args.repeats)
                   for task, pairs in data.items()}
        memory = measure_memory(model_dir, [int(c) for c in args.memory_counts.split(",")], args.memory_pairs,
                                args.batch_size)
    report = {
        "benchmark": "retrieval_speed",
        "device": device_record(torch.device("cpu")),
        **provenance(torch.device("cpu"), sys.argv[1:]),
        "model": {**MODEL_ARCH, "layer": LAYER, "vocab_size": 8000, "note": "random init, locally trained tokenizer"},
        "data": "real ../shared/data" if SHARED.is_dir() else "generated",
        "machine": {"torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "torch": torch.__version__, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "repeats": args.repeats,
        "tasks": results,
        "memory_growth_by_languages": memory,
    }
    write_json(args.output, report)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
