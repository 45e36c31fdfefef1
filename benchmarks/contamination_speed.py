"""`langsamp contamination` scan rate (MB/s on one core) and peak memory at two corpus sizes.

The corpus is generated from the bundled demo corpus (16 languages, repeated to the requested size, so its
Spanish holds real SR-B verses and the scan finds and confirms matches all along), checked against the test
sets of all six tasks from ../shared/data when present (else the bundled SR-T sample). Each size runs in a
fresh process with one thread: CPU seconds, wall seconds and peak resident memory (ru_maxrss). The fixed cost
(reading and hashing the test sets) is measured on a one-line corpus and subtracted to get the scan rate.
Memory must be flat: the larger corpus may not need more than a few MB more than the smaller one.

    python benchmarks/contamination_speed.py --size-mb 200 --size-mb 400     # what was run for the docs
    python benchmarks/contamination_speed.py                                 # 1000 and 2000 MB (the target)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, RESULTS, SHARED, write_json  # first: it puts this checkout on sys.path

TARGET_MB_S = 50.0
TASK_DATA = {"sr-t": "tatoeba/v1", "sr-b": "bible/sword", "taxi1500": "taxi1500/eng_data",
             "sib200": "sib200/annotated", "ner": "ner/uner", "pos": "ud"}


def against() -> list[str]:
    if all((SHARED / path).is_dir() for path in TASK_DATA.values()):
        return [f"{task}={SHARED / path}" for task, path in TASK_DATA.items()]
    return [f"sr-t={REPO / 'langsamp_cli/samples/sr-t'}"]


def generate(folder: Path, size_mb: float) -> int:
    """Demo-corpus languages repeated to about ``size_mb`` in total; returns the bytes written."""
    sources = sorted((REPO / "langsamp_cli/demo_corpus/texts").glob("*.txt"))
    per_language = int(size_mb * 1e6 / len(sources))
    total = 0
    for source in sources:
        text = source.read_bytes()
        if not text.endswith(b"\n"):
            text += b"\n"
        with open(folder / source.name, "wb") as out:
            written = 0
            while written < per_language:
                out.write(text)
                written += len(text)
        total += written
    return total


def measure(corpus: Path, output: Path) -> dict:
    """One scan in this (fresh) process."""
    from langsamp_cli.contamination.scan import ContaminationSettings, check_contamination

    settings = ContaminationSettings(corpus=str(corpus), output_dir=str(output), progress=False)
    cpu, wall = time.process_time(), time.perf_counter()
    report = check_contamination(settings, against())
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "bytes": report.bytes_scanned, "matched_lines": sum(s.matched_lines for s in report.languages.values()),
            "test_items": sum(r.items for r in report.rows)}


def run_child(corpus: Path, output: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, __file__, "--child", str(corpus), str(output)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, action="append", help="Corpus size(s) in MB (two: memory check).")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), Path(args.child[1]))))
        return
    sizes = args.size_mb or [1000.0, 2000.0]
    runs = []
    with tempfile.TemporaryDirectory(prefix="contamination-bench-") as tmp:
        tiny = Path(tmp) / "tiny"
        tiny.mkdir()
        for source in (REPO / "langsamp_cli/demo_corpus/texts").glob("*.txt"):
            (tiny / source.name).write_text("x\n", encoding="utf-8")
        setup = run_child(tiny, Path(tmp) / "out")
        print(f"setup (test sets read and hashed): {setup['cpu_s']:.1f} s CPU, peak {setup['peak_rss_mb']:.0f} MB, "
              f"{setup['test_items']:,} test items", flush=True)
        for size in sizes:
            corpus = Path(tmp) / f"corpus{size:g}"
            corpus.mkdir()
            generate(corpus, size)
            run = run_child(corpus, Path(tmp) / "out")
            run["size_mb"] = run["bytes"] / 1e6
            run["scan_mb_s_per_core"] = run["size_mb"] / max(run["cpu_s"] - setup["cpu_s"], 1e-9)
            runs.append(run)
            print(f"{run['size_mb']:,.0f} MB: {run['cpu_s']:.1f} s CPU ({run['wall_s']:.1f} s wall), scan "
                  f"{run['scan_mb_s_per_core']:.1f} MB/s per core, peak {run['peak_rss_mb']:.0f} MB, "
                  f"{run['matched_lines']:,} matching lines", flush=True)
            for path in corpus.iterdir():
                path.unlink()
    growth = runs[-1]["peak_rss_mb"] - runs[0]["peak_rss_mb"] if len(runs) > 1 else None
    record = {"against": against(), "setup": setup, "runs": runs, "target_mb_s_per_core": TARGET_MB_S,
              "meets_rate_target": all(r["scan_mb_s_per_core"] >= TARGET_MB_S for r in runs),
              "peak_rss_growth_mb": growth, "cpu_count": os.cpu_count()}
    if growth is not None:
        print(f"peak memory {runs[0]['size_mb']:,.0f} MB -> {runs[-1]['size_mb']:,.0f} MB corpus: {growth:+.0f} MB")
    print(f"wrote {write_json(RESULTS / 'contamination_speed.json', record)}")


if __name__ == "__main__":
    main()
