#!/usr/bin/env python
"""Regenerate the per-command pages under docs/commands/ from real runs.

Every command shown in a page is run here, in order, in a fresh working folder beside the checkout (so that
``../shared/data`` resolves as it does from the checkout), and the page shows exactly what it printed and how
long it took. The README's examples are a subset of these commands (tests/test_readme.py checks that), so
they cannot drift from what the code prints.

    python scripts/make_docs.py                 # all pages (about 10 minutes on 2 idle cores)
    python scripts/make_docs.py --only donor    # one page; earlier steps it depends on run too
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "commands"
SHARED = "../shared/data"


@dataclass
class Step:
    command: str
    intro: str = ""
    needs_shared: bool = False
    expect_fail: bool = False   # a bad-input example: exit status 2 is what the page shows


@dataclass
class Page:
    name: str
    title: str
    intro: str
    steps: list[Step] = field(default_factory=list)


DEMO = "runs/pretrain-demo/final"

PAGES: list[Page] = [
    Page("pretrain", "`langsamp pretrain`", (
        "LangSAMP masked-LM pretraining. With no arguments it is the demo: a tiny model (8 layers x 64) "
        "trained from scratch on the bundled corpus. Real runs name a corpus folder (one file or folder per "
        "language-script, Glot500-c layout) and a model to continue (`--model xlm-roberta-base`, a local "
        "folder, or the official LangSAMP checkpoint with `--lang-map`)."), [
        Step("langsamp pretrain", "The demo: 400 steps on 16 language-scripts of bundled public-domain text."),
        Step("langsamp pretrain --corpus does-not-exist --output-dir runs/x",
             "Bad input stops before anything is created, with one line:", expect_fail=True),
        Step("langsamp pretrain --preset paper --dry-run",
             "The paper's run (docs/paper-pretraining.md), resolved and checked without training: every setting "
             "and where it came from, then the inputs. This machine has no hub access, so the model and "
             "tokenizer lines say what to do instead:", expect_fail=True),
    ]),
    Page("tokenizer-extend", "`langsamp tokenizer extend` and continuing with the extended tokenizer", (
        "Extend a SentencePiece Unigram tokenizer with pieces learned on a corpus, as Glot500 extended XLM-R's, "
        "then continue pretraining a model with it: its token table grows to the new vocabulary (rows matched "
        "by piece, new rows by `--init-new-tokens`). Here the demo model's 4,000-piece tokenizer gets up to "
        "2,000 more pieces from the bundled corpus."), [
        Step(f"langsamp tokenizer extend --base {DEMO} --add 2000 --output-dir runs/tokenizer-demo"),
        Step(f"langsamp pretrain --model {DEMO} --tokenizer runs/tokenizer-demo --init-new-tokens subword "
             "--max-steps 100 --output-dir runs/pretrain-extended",
             "Continue the demo model with it (100 steps here); the line after the corpus table says what "
             "happened to every row:"),
    ]),
    Page("eval-sr-t", "`langsamp eval sr-t` (Tatoeba retrieval)", (
        "Zero-shot sentence retrieval on Tatoeba: layer-8 mean-pooled vectors, cosine nearest neighbour, "
        "acc@1/5/10 with English sentences as queries, exactly as the official scripts compute it."), [
        Step(f"langsamp eval sr-t --model {DEMO} --data-dir {SHARED}/tatoeba/v1 --languages fra_Latn,rus_Cyrl,jpn_Jpan",
             needs_shared=True),
        Step(f"langsamp eval sr-t --model {DEMO} --data-dir {SHARED}/tatoeba/v1 --languages fra_Latn,rus_Cyrl,jpn_Jpan "
             "--layers all --output-dir results-layers",
             "Every layer from one forward pass: layer 8 is filed as a plain run would file it, layer k as "
             "`sr-t@layer<k>`; `report --by-layer` (see the report page) plots them.", needs_shared=True),
    ]),
    Page("eval-sr-b", "`langsamp eval sr-b` (Bible retrieval)", (
        "Sentence retrieval on Bible verses. Besides the official paired files (`--data-dir`), any whole Bible "
        "(verse-id TSV or CES XML) can be paired with an English Bible by verse id."), [
        Step(f"langsamp eval sr-b --model {DEMO} --bible {SHARED}/bible/sword/spa_Latn.RV1909.tsv "
             f"--english-bible {SHARED}/bible/sword/eng_Latn.KJV.tsv --pairs 500", needs_shared=True),
    ]),
    Page("eval-sr-pairs", "`langsamp eval sr-pairs` (every language pair)", (
        "Retrieval between every ordered pair of languages of a multi-parallel set (here 12 SIB-200 "
        "languages, dev split; leave out --languages for all 205): each language encoded once, one result unit per query language, the "
        "matrix as CSV and heatmap, per-language means beside the English row and column. `--scoring margin` "
        "ranks by the ratio margin instead of cosine; see docs/all-pairs.md."), [
        Step(f"langsamp eval sr-pairs --model {DEMO} --data-dir {SHARED}/sib200/annotated --split dev "
             "--languages eng,fra,spa,deu,rus,ukr,arb,pes,hin,mar,zho_Hans,jpn --scoring margin", needs_shared=True),
    ]),
    Page("eval-taxi1500", "`langsamp eval taxi1500`", (
        "Fine-tune on the English Taxi1500 split, test zero-shot on target Bibles joined on the official test "
        "verse ids. Small settings here (one seed, few epochs) so it finishes in a minute on a CPU."), [
        Step(f"langsamp eval taxi1500 --model {DEMO} --data-dir {SHARED}/taxi1500/eng_data "
             f"--bible {SHARED}/bible/sword/spa_Latn.RV1909.tsv --seeds 1 --epochs 3 --lr 1e-3 --max-train-samples 400", needs_shared=True),
    ]),
    Page("eval-sib200", "`langsamp eval sib200`", (
        "Topic classification (7 classes) on SIB-200: fine-tune on the source language, test every target."), [
        Step(f"langsamp eval sib200 --model {DEMO} --data-dir {SHARED}/sib200/annotated "
             "--languages eng,deu,rus,zho_Hans,arb,wol --seeds 1 --epochs 10 --lr 3e-4",
             needs_shared=True),
    ]),
    Page("eval-ner", "`langsamp eval ner`", (
        "Named-entity recognition (seqeval F1): WikiANN/XTREME folders, MasakhaNER or Universal NER files."), [
        Step(f"langsamp eval ner --model {DEMO} --data-dir {SHARED}/ner/uner "
             f"--train-file {SHARED}/ner/uner/UNER_English-EWT/prerelease_0c7ce0d/en_ewt-ud-train.iob2 "
             "--seeds 1 --epochs 2 --lr 1e-3 --max-train-samples 500 --max-eval-samples 200", needs_shared=True),
    ]),
    Page("eval-pos", "`langsamp eval pos`", (
        "Part-of-speech tagging (UPOS, seqeval F1) on Universal Dependencies treebanks."), [
        Step(f"langsamp eval pos --model {DEMO} --data-dir {SHARED}/ud --languages eng,spa,rus,zho,hin,wol "
             "--seeds 1 --epochs 2 --lr 1e-3 --max-train-samples 500 --max-eval-samples 200", needs_shared=True),
    ]),
    Page("report", "`langsamp report`", (
        "Models side by side, mean (std) over seeds, grouped like the paper's Table 1 (tail/head, Latn/non-Latn)."), [
        Step("langsamp pretrain --no-lang-emb --no-script-emb --output-dir runs/pretrain-vanilla",
             "A second model for comparison: the same demo pretraining without language and script embeddings."),
        Step(f"langsamp eval sr-t --model runs/pretrain-vanilla/final --data-dir {SHARED}/tatoeba/v1 "
             "--languages fra_Latn,rus_Cyrl,jpn_Jpan --output-dir results-vanilla", needs_shared=True),
        Step("langsamp report results results-vanilla --output-dir report",
             "Every task found under the folders, both models side by side:"),
        Step("langsamp report results-layers --by-layer --output-dir report-layers",
             "The metric against the layer, one line per language group (CSV, PNG and SVG):"),
        Step(f"langsamp report results --model-card {DEMO}",
             "Add the model's evaluation tables to the model card that `pretrain` wrote into `final/README.md`:"),
    ]),
    Page("similarity", "`langsamp similarity`", (
        "Language neutrality: centroid-subtracted cosine similarity of translations at layer 8, as a heatmap."), [
        Step(f"langsamp similarity --model {DEMO} --compare runs/pretrain-vanilla/final --data-dir {SHARED}/sib200/annotated --output-dir results/similarity",
             needs_shared=True),
    ]),
    Page("plot-embeddings", "`langsamp plot-embeddings`", (
        "PCA of the learned language and script embeddings (the paper's Figure 3)."), [
        Step(f"langsamp plot-embeddings --model {DEMO} --output-dir results/embeddings"),
    ]),
    Page("donor", "`langsamp donor`", (
        "Rank source (donor) languages for a target by the cosine similarity of their language embeddings, by "
        "URIEL typology, or both; a target the model has never seen falls back to its script and URIEL."), [
        Step(f"langsamp donor --target ukr_Cyrl --model {DEMO}"),
        Step(f"langsamp donor --target yue_Hani --model {DEMO} --top 3"),
    ]),
    Page("contamination", "`langsamp contamination`", (
        "Look for test-set items in a pretraining corpus (whole lines and 50-character overlaps after "
        "normalisation) and write a copy without them; here the bundled demo corpus against SR-T and SR-B. "
        "docs/contamination.md explains the matching and shows all six tasks."), [
        Step(f"langsamp contamination --against sr-t={SHARED}/tatoeba/v1 --against sr-b={SHARED}/bible/sword "
             "--write-clean runs/demo-corpus-clean", needs_shared=True),
    ]),
    Page("experiment", "`langsamp experiment`", (
        "The whole study in one command: pretrain the four variants (vanilla, +lang, +script, +both), evaluate "
        "them, and write a report. `--dry-run` lists the stages and the commands they run."), [
        Step("langsamp experiment cpu-demo --dry-run"),
    ]),
]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_step(step: Step, workdir: Path, env: dict[str, str]) -> tuple[str, float, int]:
    start = time.perf_counter()
    proc = subprocess.run(step.command, shell=True, cwd=workdir, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return ANSI.sub("", proc.stdout).rstrip(), seconds, proc.returncode


def render(page: Page, transcripts: list[tuple[Step, str, float, int]], machine: str) -> str:
    lines = [f"# {page.title}", "", page.intro, "",
             f"Generated by `scripts/make_docs.py` on {machine}; times are wall-clock on that machine, idle.", ""]
    for step, output, seconds, code in transcripts:
        if step.intro:
            lines += [step.intro, ""]
        output = "\n".join(line.rstrip() for line in output.splitlines())
        lines += ["```console", f"$ {step.command}", output, "```", ""]
        status = f", exit status {code}" if code else ""
        lines += [f"<sub>{seconds:.0f} s{status}</sub>", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", help="page name(s) to write (earlier steps still run)")
    parser.add_argument("--workdir", type=Path, default=REPO.parent / ".langsamp-docs-run")
    args = parser.parse_args()
    if not (REPO.parent / "shared" / "data" / "SOURCES.md").exists():
        print(f"error: {SHARED} is not beside the checkout; the pages show runs on that data", file=sys.stderr)
        return 2
    if shutil.which("langsamp") is None:
        print("error: `langsamp` is not on PATH; activate the project's virtual environment", file=sys.stderr)
        return 2
    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    env = {**os.environ, "COLUMNS": "110", "NO_COLOR": "1", "TERM": "dumb", "HF_HUB_OFFLINE": "1",
           "LANGSAMP_CACHE": str(args.workdir / ".cache")}
    machine = f"{os.cpu_count()} CPU cores ({platform.machine()}), no GPU"
    DOCS.mkdir(parents=True, exist_ok=True)
    for page in PAGES:
        transcripts = []
        for step in page.steps:
            output, seconds, code = run_step(step, args.workdir, env)
            print(f"[{seconds:6.1f} s, rc {code}] {step.command}", flush=True)
            if (code != 0) != step.expect_fail:
                print(output[-3000:], file=sys.stderr)
                print(f"error: `{step.command}` exited {code}", file=sys.stderr)
                return 1
            transcripts.append((step, output, seconds, code))
        if not args.only or page.name in args.only:
            (DOCS / f"{page.name}.md").write_text(render(page, transcripts, machine) + "\n", encoding="utf-8")
        if args.only and page.name == [p.name for p in PAGES if p.name in args.only][-1]:
            break  # later pages are not needed
    return 0


def all_commands() -> list[str]:
    """Every command the pages show, for the README consistency test."""
    return [step.command for page in PAGES for step in page.steps]


if __name__ == "__main__":
    raise SystemExit(main())
