"""sr-pairs speed: every ordered language pair, each language encoded once, vs the naive per-pair loop.

Ours: ``run_retrieval_task("sr-pairs", ...)`` with the embedding cache off (encoding is measured):
every language is encoded once, then each query language is scored against all targets in blocks.

Naive (what an English-centric, per-pair tool does for each pair): encode both sides of the pair
(no cache, no memo) and score that one pair. Its cost is the same for every pair, so it is timed on
``--naive-pairs`` pairs drawn with a fixed seed and extrapolated to all pairs; each timed pair's acc@1
and acc@10 must equal ours exactly (asserted).

Data: the first ``--languages`` language ids of ../shared/data/sib200 (or $LANGSAMP_SHARED_DATA) and the
first ``--sentences`` ids they share; without the data pack, generated sentences in the same layout.
Model: the tiny 8 x 64 XLM-R built locally (a bigger model makes encoding dearer and the ratio larger).

Each side runs in its own subprocess so its peak resident memory (ru_maxrss) is its own; on a GPU
(``--device cuda``) the peak allocated GPU memory is reported too. Timing uses one torch thread on CPU.

    python benchmarks/all_pairs_speed.py                       # 50 languages x 100 sentences on CPU
    python benchmarks/all_pairs_speed.py --device cuda         # -> results/all_pairs_speed_cuda.json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import RESULTS, SHARED, REPO, Timer, add_device_argument, check_device, silence_transformers, write_json

TARGET_RATIO = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", type=int, default=50)
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--naive-pairs", type=int, default=40, help="pairs the naive loop is timed on")
    parser.add_argument("--scoring", default="cosine", choices=("cosine", "margin", "csls"))
    parser.add_argument("--side", choices=("ours", "naive"), help=argparse.SUPPRESS)  # one side, in a subprocess
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    add_device_argument(parser)
    args = parser.parse_args()
    check_device(parser, args.device)
    silence_transformers()
    if args.side:
        print(json.dumps(run_side(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = prepare(work, args.languages, args.sentences)
        ours = subprocess_side(args, work, "ours")
        naive = subprocess_side(args, work, "naive")
    total_pairs = ours["pairs"]
    naive_total = naive["seconds_per_pair"] * total_pairs
    naive_cpu_total = naive["cpu_s"] / naive["pairs"] * total_pairs
    record = {
        "benchmark": "all_pairs_speed", "figures_from": figures_from(args.device),
        "question": f"sr-pairs over {args.languages} languages x {args.sentences} sentences ({total_pairs} ordered "
                    f"pairs, {args.scoring}) vs encoding both sides for every pair",
        "data": source, "device": args.device, "model": "tiny 8 x 64 XLM-R (built locally)",
        "pairs": total_pairs,
        "ours": {"wall_s": ours["wall_s"], "cpu_s": ours["cpu_s"],
                 "pairs_per_s": round(total_pairs / ours["wall_s"], 1),
                 "peak_rss_mib": ours["peak_rss_mib"], "peak_gpu_mib": ours.get("peak_gpu_mib"),
                 "sentences_encoded": ours["sentences_encoded"]},
        "naive": {"timed_pairs": naive["pairs"], "wall_s_timed": naive["wall_s"],
                  "pairs_per_s": round(1 / naive["seconds_per_pair"], 2),
                  "cpu_s_per_pair": round(naive["cpu_s"] / naive["pairs"], 3),
                  "wall_s_all_pairs_extrapolated": round(naive_total, 1), "peak_rss_mib": naive["peak_rss_mib"],
                  "peak_gpu_mib": naive.get("peak_gpu_mib")},
        "skipped_languages": ours["skipped"],
        "identical_numbers": naive["identical"],
        "ratio_wall": round(naive_total / ours["wall_s"], 1),
        "ratio_cpu": round(naive_cpu_total / ours["cpu_s"], 1),  # steadier where other jobs share the machine
        "target_ratio": TARGET_RATIO,
    }
    record["within_target"] = record["ratio_wall"] >= TARGET_RATIO and record["identical_numbers"]
    suffix = "" if args.device == "cpu" else f"_{args.device}"
    path = write_json(RESULTS / f"all_pairs_speed{suffix}.json", record)
    print(json.dumps(record, indent=2))
    print(f"ours {record['ours']['pairs_per_s']} pairs/s, naive {record['naive']['pairs_per_s']} pairs/s: "
          f"{record['ratio_wall']}x (target {TARGET_RATIO}x); identical numbers: {record['identical_numbers']}; "
          f"wrote {path}")
    if not record["identical_numbers"]:
        sys.exit("the naive loop and sr-pairs disagree")


def figures_from(device: str) -> dict:
    """Where the figures come from (script, device, time, commit), so a CPU run is never read as GPU figures."""
    import datetime

    import torch

    done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    command = " ".join(["python", "benchmarks/all_pairs_speed.py", *sys.argv[1:]])
    return {"device": device, "gpu": gpu, "command": command,
            "note": f"measured on {gpu}" if gpu else "measured on CPU only (2 shared cores); not GPU figures",
            "measured_at_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": done.stdout.strip() or None}


def prepare(work: Path, n_languages: int, n_sentences: int) -> str:
    """A SIB-200-layout folder with the languages' first sentences, and the tiny model; returns the data source."""
    import pandas as pd

    from langsamp_cli.tiny import build_tiny_model

    data = work / "sib"
    source = SHARED / "sib200" / "annotated"
    if source.is_dir():
        languages = sorted(p.name for p in source.iterdir() if (p / "dev.tsv").is_file())[:n_languages]
        texts = {}
        for lang in languages:
            frame = pd.concat([pd.read_csv(source / lang / f"{s}.tsv", sep="\t") for s in ("dev", "test")])
            texts[lang] = frame["text"].astype(str).tolist()[:n_sentences]
        where = f"{source} (first {n_languages} language ids, first {n_sentences} dev/test sentences)"
    else:
        rng = random.Random(0)
        words = [f"w{i}" for i in range(400)]
        languages = [f"{code}_Latn" for code in ("eng", "deu", "fra", "spa", "ita", "por", "nld", "swe", "dan",
                                                 "fin", "est", "lav", "lit", "pol", "ces", "slk", "slv", "hrv",
                                                 "ron", "hun", "tur", "ind", "zsm", "vie", "tgl", "swh", "yor",
                                                 "hau", "ibo", "zul", "xho", "sot", "tsn", "afr", "isl", "gle",
                                                 "cym", "eus", "cat", "glg", "ast", "oci", "ltz", "fao", "mlt",
                                                 "sqi", "bos", "uzn", "tuk", "azj")][:n_languages]
        texts = {lang: [" ".join(rng.choice(words) for _ in range(rng.randint(4, 20))) for _ in range(n_sentences)]
                 for lang in languages}
        where = f"generated sentences ({n_languages} languages x {n_sentences})"
    for lang, rows in texts.items():
        (data / lang).mkdir(parents=True)
        frame = pd.DataFrame({"index_id": range(len(rows)), "category": "x", "text": rows})
        frame.to_csv(data / lang / "dev.tsv", sep="\t", index=False)  # CSV-quoted, as the SIB-200 files are
    build_tiny_model([t for rows in texts.values() for t in rows], work / "model", vocab_size=2000)
    return where


def subprocess_side(args: argparse.Namespace, work: Path, side: str) -> dict:
    command = [sys.executable, __file__, "--side", side, "--work", str(work), "--device", args.device,
               "--scoring", args.scoring, "--naive-pairs", str(args.naive_pairs), "--sentences", str(args.sentences)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{side} side failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_side(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(1)
    if args.side == "ours":
        out = ours(args)
    else:
        out = naive(args)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.device == "cuda":
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _flags(args: argparse.Namespace) -> dict:
    return {"model": str(args.work / "model"), "data_dir": str(args.work / "sib"), "pairs": args.sentences,
            "scoring": args.scoring, "device": args.device, "output_dir": str(args.work / f"out-{args.side}")}


def ours(args: argparse.Namespace) -> dict:
    from langsamp_cli.tasks.retrieval_run import run_retrieval_task

    with Timer() as timer:
        result = run_retrieval_task("sr-pairs", _flags(args), no_cache=True, progress=False)
    (args.work / "ours_rows.json").write_text(json.dumps(_rows(args.work / "out-ours")), encoding="utf-8")
    n = len(result.scores)
    return {"pairs": n * (n - 1), "sentences_encoded": result.sentences_encoded, "skipped": result.skipped,
            **timer.as_dict()}


def _rows(out: Path) -> dict[str, dict[str, list[float]]]:
    units = (json.loads(p.read_text(encoding="utf-8")) for p in out.glob("*/*/seedna/units/*.json"))
    return {u["lang_script"]: u["extra"]["row"] for u in units if u["status"] == "done"}


def naive(args: argparse.Namespace) -> dict:
    """Encode both sides of each timed pair from scratch and score that pair alone."""
    import torch

    from langsamp_cli.data.multiparallel import available_languages, first_shared, load_multiparallel
    from langsamp_cli.encode import SentenceEncoder
    from langsamp_cli.tasks.scoring import block_accuracy, normalise, scoring_from

    expected = json.loads((args.work / "ours_rows.json").read_text(encoding="utf-8"))
    data_dir = args.work / "sib"
    sample = first_shared(load_multiparallel(data_dir, available_languages(data_dir)), args.sentences)
    languages = list(sample.texts)
    pairs = [(a, b) for a in languages for b in languages if a != b]
    chosen = random.Random(0).sample(pairs, min(args.naive_pairs, len(pairs)))
    scoring = scoring_from({"scoring": args.scoring})
    encoder = SentenceEncoder(str(args.work / "model"), use_cache=False, device=args.device)
    encoder.encode(sample.texts[languages[0]][:8])  # model load and warm-up outside the timing
    identical = True
    with Timer() as timer:
        for query, target in chosen:
            q = torch.from_numpy(normalise(encoder.encode(sample.texts[query]))).to(encoder.device)
            t = torch.from_numpy(normalise(encoder.encode(sample.texts[target]))).to(encoder.device)
            got = block_accuracy(q, t.unsqueeze(0), scoring, [1, 10])[0].tolist()
            identical &= got == expected[query][target]
    return {"pairs": len(chosen), "seconds_per_pair": timer.wall / len(chosen), "identical": bool(identical),
            **timer.as_dict()}


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
