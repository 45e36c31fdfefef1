"""`eval --layers all` vs one run at the deepest layer: what does keeping every layer cost?

Both sides run the real retrieval runner on the same sentences with the same encoder settings:

- single: ``SentenceEncoder(layer=D)`` + ``run_retrieval`` with one store (layer D = the model depth),
- all:    ``SentenceEncoder(layer=D)`` + ``run_retrieval`` over layers 0..D (D + 1 result sets:
          one forward pass per batch, every hidden state mean-pooled, faiss scoring per layer, unit files).

Model: a small XLM-R-shaped encoder built locally (random weights; tokenizer trained on the benchmark
text), 12 x 256 by default. Text: the bundled SR-T sample (``langsamp_cli/samples/sr-t``) plus
generated language pairs to reach a measurable size. The embedding cache is off (encoding is what is
measured); each side gets a warm-up, then the sides alternate for ``--repeats`` rounds and the
fastest round of each counts. Timing is process CPU time (other jobs on a shared machine barely move
it) with torch on ``--threads`` threads; wall time is reported too. The deepest layer's accuracies
must be identical on both sides (asserted). Target: ``all`` within 1.3x of ``single``.

    python benchmarks/layers_speed.py            # -> benchmarks/results/layers_speed.json
    python benchmarks/layers_speed.py --quick    # smaller (smoke run)
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import tempfile
from pathlib import Path

import torch

from _common import REPO, RESULTS, Timer, silence_transformers, write_json  # first: it puts this checkout on sys.path
from langsamp_cli.data.parallel import ParallelPairs  # noqa: E402
from langsamp_cli.encode import SentenceEncoder  # noqa: E402
from langsamp_cli.results import ResultStore, layer_task_name  # noqa: E402
from langsamp_cli.data.tatoeba import discover_tatoeba  # noqa: E402
from langsamp_cli.tasks.retrieval import (  # noqa: E402
    RetrievalPlan,
    RetrievalUnit,
    plan_from_pair_files,
    run_retrieval,
)
from langsamp_cli.tiny import build_tiny_model  # noqa: E402

SAMPLE_DIR = REPO / "langsamp_cli" / "samples" / "sr-t"
TARGET_RATIO = 1.3


class _Quiet:
    """A console stand-in: the runners' per-language lines are not part of the measurement."""

    def print(self, *args, **kwargs) -> None:
        pass


def benchmark_pairs(n_generated: int, n_pairs: int) -> list[ParallelPairs]:
    """The bundled SR-T sample languages plus ``n_generated`` generated ones (``n_pairs`` pairs each)."""
    plan = plan_from_pair_files(*discover_tatoeba(SAMPLE_DIR), None, str(SAMPLE_DIR))
    pairs = [plan.units[name].load() for name in sorted(plan.units)]
    rng = random.Random(0)
    words = [f"w{i}" for i in range(2000)]
    for lang in range(n_generated):
        english = [" ".join(rng.choices(words, k=rng.randint(4, 40))) for _ in range(n_pairs)]
        target = [" ".join(reversed(s.split())) + f" x{lang}" for s in english]
        pairs.append(ParallelPairs(f"l{lang:02d}_Latn", target, english))
    return pairs


def plan_of(pairs: list[ParallelPairs]) -> RetrievalPlan:
    return RetrievalPlan({p.lang_script: RetrievalUnit(p.lang_script, (lambda p=p: p)) for p in pairs})


def make_encoder(model_dir: Path, depth: int, batch_size: int) -> SentenceEncoder:
    encoder = SentenceEncoder(str(model_dir), layer=depth, batch_size=batch_size, max_length=128,
                              use_cache=False, device="cpu")
    encoder.encode(["warm up the model"])  # loads the weights outside the timed part
    return encoder


def run_single(model_dir: Path, depth: int, pairs: list[ParallelPairs], out: Path,
               batch_size: int) -> tuple[dict, dict]:
    encoder = make_encoder(model_dir, depth, batch_size)
    store = ResultStore(out, "bench", str(model_dir), None, {"layer": depth}, "acc@10", overwrite=True)
    names = [p.lang_script for p in pairs]
    with Timer() as timer:
        run_retrieval(plan_of(pairs), encoder, {depth: store}, names, console=_Quiet())
    return timer.as_dict(), {u: _unit_metrics(store, u) for u in names}


def run_all(model_dir: Path, depth: int, pairs: list[ParallelPairs], out: Path,
            batch_size: int) -> tuple[dict, dict]:
    encoder = make_encoder(model_dir, depth, batch_size)
    stores = {k: ResultStore(out, layer_task_name("bench", k), str(model_dir), None, {"layer": k}, "acc@10",
                             overwrite=True) for k in range(depth + 1)}
    names = [p.lang_script for p in pairs]
    with Timer() as timer:
        run_retrieval(plan_of(pairs), encoder, stores, names, console=_Quiet())
    return timer.as_dict(), {u: _unit_metrics(stores[depth], u) for u in names}


def _unit_metrics(store: ResultStore, unit: str) -> dict:
    return json.loads(store.unit_path(unit).read_text(encoding="utf-8"))["metrics"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 generated languages x 100 pairs, 2 rounds")
    parser.add_argument("--languages", type=int, default=4, help="generated languages besides the bundled sample")
    parser.add_argument("--pairs", type=int, default=300, help="pairs per generated language")
    parser.add_argument("--layers", type=int, default=12, help="depth of the benchmark model")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output", type=Path, default=RESULTS / "layers_speed.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.languages, args.pairs, args.repeats = 2, 100, 2
    torch.set_num_threads(args.threads)
    silence_transformers()
    pairs = benchmark_pairs(args.languages, args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        texts = [s for p in pairs for s in (*p.english, *p.target)]
        model_dir = build_tiny_model(texts, work / "model", vocab_size=4000, num_hidden_layers=args.layers,
                                     hidden_size=args.hidden, num_attention_heads=max(args.hidden // 64, 1),
                                     intermediate_size=4 * args.hidden)
        rounds = {"single": [], "all": []}
        scores = {}
        for round_index in range(args.repeats):
            for side, runner in (("single", run_single), ("all", run_all)):
                timing, scores[side] = runner(model_dir, args.layers, pairs, work / f"{side}{round_index}",
                                              args.batch_size)
                rounds[side].append(timing)
    if scores["single"] != scores["all"]:
        raise SystemExit(f"deepest-layer scores differ: {scores['single']} vs {scores['all']}")
    best = {side: min(r, key=lambda t: t["cpu_s"]) for side, r in rounds.items()}
    ratio_cpu = best["all"]["cpu_s"] / best["single"]["cpu_s"]
    ratio_wall = min(t["wall_s"] for t in rounds["all"]) / min(t["wall_s"] for t in rounds["single"])
    record = {
        "benchmark": "layers_speed",
        "question": f"eval --layers all (layers 0..{args.layers}, {args.layers + 1} result sets) vs one run at "
                    f"layer {args.layers}",
        "ratio_cpu": round(ratio_cpu, 3),
        "ratio_wall": round(ratio_wall, 3),
        "target_ratio": TARGET_RATIO,
        "within_target": ratio_cpu <= TARGET_RATIO,
        "best": best,
        "rounds": rounds,
        "deepest_layer_scores_identical": True,
        "setting": {"model": f"{args.layers} x {args.hidden} XLM-R shape, random weights",
                    "languages": [p.lang_script for p in pairs], "sentences": sum(2 * len(p) for p in pairs),
                    "bundled_sample": str(SAMPLE_DIR.relative_to(REPO)), "batch_size": args.batch_size,
                    "max_length": 128, "threads": args.threads, "repeats": args.repeats, "device": "cpu",
                    "quick": args.quick},
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "machine": platform.machine(), "time": datetime.datetime.now(datetime.timezone.utc)
                        .strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    write_json(args.output, record)
    print(f"single layer {args.layers}: {best['single']['cpu_s']:.2f} s CPU; all {args.layers + 1} layers: "
          f"{best['all']['cpu_s']:.2f} s CPU; ratio {ratio_cpu:.3f} (wall {ratio_wall:.3f}); target <= "
          f"{TARGET_RATIO}: {'met' if ratio_cpu <= TARGET_RATIO else 'NOT met'}; wrote {args.output}")
    return record


if __name__ == "__main__":
    main()
