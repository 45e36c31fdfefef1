"""Zero-shot crosslingual transfer, shared by Taxi1500, SIB-200, NER and POS.

Protocol: fine-tune on the source language's train split (English by default), keep the weights
with the best source dev score, then score every target language's test split, once per seed.

Units are (seed, language): each writes its own result file through :class:`ResultStore`, a rerun
skips units finished by the same model (content fingerprint) with the same settings (others are
recomputed), and when every selected language of a seed is done the seed's fine-tuning is skipped
too. ``--shard i/N`` takes a slice of the languages.

The fine-tuned model of a seed is kept in ``<seed dir>/model`` (written atomically, with
``finetune.json`` holding the training key and outcome) so a resumed run, another shard, or new
target languages reuse it instead of training again. The key covers the base model, the source
files, the label set and every training setting; a different key retrains (and replaces it).
``keep_model: false`` removes it once the seed's units are all written.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rich.console import Console

from langsamp_cli.baselines import floor
from langsamp_cli.errors import LangsampError
from langsamp_cli.finetune import Runtime, TrainOutcome, TrainSettings, finetune, set_seed
from langsamp_cli.io_utils import atomic_dir, atomic_write_json
from langsamp_cli.tasks.task_settings import TaggingSettings, TransferSettings, recorded_settings

SAMPLE_SEED = 0  # the --max-eval-samples / --max-train-samples draw (the same for every fine-tuning seed)
# The task settings TrainSettings takes (the seed comes from the run, not the YAML).
TRAIN_KEYS = tuple(f.name for f in fields(TrainSettings) if f.name != "seed")
# Not a unit's settings: where target Bibles come from (each unit records its own files) and the seed list
# (each seed is recorded on its own).
_NOT_RECORDED = ("bible", "bible_dir", "seeds")


@dataclass
class TransferData:
    """The source splits (read lazily) and one loader per target language."""

    task: str
    source_lang: str
    train: Callable[[], Any]
    dev: Callable[[], Any]
    source_files: list[str]
    targets: dict[str, Callable[[], Any]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # language -> why it cannot be scored

    def names(self) -> list[str]:
        return sorted(set(self.targets) | set(self.problems))


@dataclass
class TransferSummary:
    scored: list[tuple[int, str]] = field(default_factory=list)
    skipped: dict[tuple[int, str], str] = field(default_factory=dict)
    already_done: list[tuple[int, str]] = field(default_factory=list)
    trained_seeds: list[int] = field(default_factory=list)
    reused_seeds: list[int] = field(default_factory=list)
    results: list[Path] = field(default_factory=list)


def parse_seeds(value: str | int | list | None, default: int = 1) -> list[int]:
    """``"1,2,3"``, ``"1-5"``, ``3`` or a YAML list -> sorted unique seeds."""
    if value is None:
        return [default]
    if isinstance(value, int):
        return [value]
    parts = value if isinstance(value, list) else str(value).replace(" ", "").split(",")
    seeds: set[int] = set()
    for part in map(str, parts):
        low, dash, high = part.partition("-")
        try:
            seeds.update(range(int(low), int(high) + 1) if dash else [int(part)])
        except ValueError:
            raise LangsampError(f"--seeds {value!r}: use integers like 1,2,3 or a range 1-5") from None
    if not seeds:
        raise LangsampError(f"--seeds {value!r}: no seed given")
    return sorted(seeds)


def take_sample(data, n: int | None, seed: int = SAMPLE_SEED):
    """``n`` rows of ``data`` drawn with ``random.Random(seed)``, stratified by label when it has labels.

    Files are often sorted by label (SIB-200 test sets start with a run of one category), so the
    first ``n`` rows would score one or two classes. Each label gets its share of ``n`` (largest
    remainders round up); rows keep their file order. The draw is recorded in the data's notes
    (``sample``: seed, n, of, per_class), which end up in the unit's record. All fine-tuning seeds
    use the same sample.
    """
    if n is None or int(n) >= len(data):
        return data
    n = int(n)
    if n < 1:
        raise LangsampError(f"--max-eval-samples/--max-train-samples {n}: use a positive number of rows")
    labels = getattr(data, "labels", None)
    keep = stratified_indices(labels, n, seed) if labels is not None else \
        sorted(random.Random(seed).sample(range(len(data)), n))
    record = {"seed": seed, "n": n, "of": len(data), "method": "stratified" if labels is not None else "random"}
    if labels is not None:
        record["per_class"] = dict(sorted(Counter(labels[i] for i in keep).items()))
    return _subset(data, keep, {"sample": record})


def stratified_indices(labels: list[str], n: int, seed: int) -> list[int]:
    """Sorted indices of ``n`` rows, each label's count proportional to its share (largest remainder)."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    names = sorted(by_label)
    exact = {name: n * len(by_label[name]) / len(labels) for name in names}
    quota = {name: int(exact[name]) for name in names}
    by_remainder = sorted(names, key=lambda name: (-(exact[name] - quota[name]), name))
    for name in by_remainder[: n - sum(quota.values())]:
        quota[name] += 1
    rng = random.Random(seed)
    return sorted(i for name in names for i in rng.sample(by_label[name], quota[name]))


def _subset(data, keep: list[int], note: dict):
    if hasattr(data, "subset"):
        return data.subset(keep, note)
    from dataclasses import replace

    def pick(values):
        return [values[i] for i in keep] if values else values

    return replace(data, tokens=pick(data.tokens), tags=pick(data.tags), lines=pick(data.lines),
                   tag_lines=pick(data.tag_lines), sentence_sources=pick(data.sentence_sources),
                   notes={**data.notes, **note})


def train_settings(settings: TransferSettings, seed: int) -> TrainSettings:
    return TrainSettings(seed=seed, **{k: getattr(settings, k) for k in TRAIN_KEYS})


def _reading_of(settings: TransferSettings) -> dict[str, Any]:
    """The settings that change how a tagging task reads its data (part of a fine-tuned model's key)."""
    if not isinstance(settings, TaggingSettings):
        return {}
    values = {"entity_types": settings.entity_types, "ud_preparation": settings.ud_preparation}
    return {k: v for k, v in values.items() if v is not None}


def transfer_record(settings: TransferSettings, seed: int, source_lang: str) -> dict[str, Any]:
    """The settings a transfer unit records (and hashes)."""
    # batch size and precision are run-only for retrieval but change a fine-tuned model's numbers
    finetune_settings = {**{k: getattr(settings, k) for k in TRAIN_KEYS}, "mixed_precision": settings.mixed_precision}
    recorded = {k: v for k, v in recorded_settings(settings).items() if k not in _NOT_RECORDED}
    return {**recorded, "seed": seed, "source_lang": source_lang, "finetune": finetune_settings}


# ---------------------------------------------------------------------------- the runner
class TransferRunner:
    """Runs the (seed, language) units of one task for one model."""

    def __init__(self, task, data: TransferData, settings: TransferSettings, console: Console | None = None,
                 progress: bool = False):
        self.task = task
        self.data = data
        self.settings = settings
        self.console = console or Console(stderr=True)
        self.progress = progress
        self._runtime: Runtime | None = None
        self._tokenizer = None
        self._fingerprint: str | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime(self.settings.device, self.settings.mixed_precision, self.settings.grad_accum)
        return self._runtime

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            from langsamp_cli.model_source import require_tokenizer

            require_tokenizer(self.settings.model)
            with _loading(self.settings.model):
                self._tokenizer = AutoTokenizer.from_pretrained(self.settings.model)
        return self._tokenizer

    @property
    def model_fingerprint(self) -> str:
        """Content hash of the model (results are reused only for the same one)."""
        if self._fingerprint is None:
            self._fingerprint = _model_stamp(self.settings.model)
        return self._fingerprint

    def run(self, seeds: list[int], languages: list[str], overwrite: bool = False) -> TransferSummary:
        from langsamp_cli.model import quiet_transformers

        summary = TransferSummary()
        with quiet_transformers():  # our own progress and messages only; transformers' settings come back after
            for seed in seeds:
                self._run_seed(seed, languages, overwrite, summary)
        return summary

    def _run_seed(self, seed: int, languages: list[str], overwrite: bool, summary: TransferSummary) -> None:
        from langsamp_cli.results import ResultStore

        record = transfer_record(self.settings, seed, self.data.source_lang)
        store = ResultStore(Path(self.settings.output_dir), self.task.name, self.settings.model, seed, record,
                            self.task.headline, overwrite=overwrite, fingerprint=self.model_fingerprint)
        todo = [lang for lang in languages if not store.is_done(lang)]
        summary.already_done += [(seed, lang) for lang in languages if lang not in todo]
        if not todo:
            self.console.print(f"seed {seed}: all {len(languages)} languages already done; fine-tuning skipped",
                               highlight=False)
        else:
            model, training = self._model_for_seed(seed, _seed_dir(store), overwrite, summary)
            for lang in todo:
                self._score_unit(store, seed, lang, model, training, summary)
            if not self.settings.keep_model:
                shutil.rmtree(_seed_dir(store) / "model", ignore_errors=True)
        summary.results.append(store.finalize())

    def _score_unit(self, store, seed: int, lang: str, model, training: dict, summary: TransferSummary) -> None:
        try:
            if lang in self.data.problems:
                raise LangsampError(self.data.problems[lang])
            target = self.data.targets[lang]()
            target = take_sample(target, self.settings.max_eval_samples)
            metrics, extra = self.task.evaluate(model, self.tokenizer, target, self.runtime, self.progress)
        except LangsampError as err:
            store.skip(lang, str(err))
            summary.skipped[(seed, lang)] = str(err)
            self.console.print(f"[yellow]skipped[/] seed {seed} {lang}: {err}", highlight=False, soft_wrap=True)
            return
        n, baselines = extra.pop("n"), extra.pop("baselines", None)
        store.write(lang, n=n, metrics=metrics, extra={**extra, "seed": seed, "training": training},
                    baselines=baselines)
        summary.scored.append((seed, lang))
        floors = floor(baselines)
        scores = " ".join(f"{k}={v:.4f}" + (f" (baseline {floors[k]:.4f})" if k in floors else "")
                          for k, v in metrics.items())
        coverage = extra.get("bible_join")
        covered = f" (covers {coverage['covered']}/{coverage['test_verses']} test verses)" if coverage else ""
        self.console.print(f"seed {seed} {lang}: n={n} {scores}{covered}", highlight=False)
        for warning in _unit_warnings(extra):
            self.console.print(f"[yellow]warning[/] seed {seed} {lang}: {warning}", highlight=False, soft_wrap=True)

    # -------------------------------------------------------------- fine-tuning (or reuse)
    def _model_for_seed(self, seed: int, seed_dir: Path, overwrite: bool, summary: TransferSummary):
        train = take_sample(self.data.train(), self.settings.max_train_samples)
        dev = take_sample(self.data.dev(), self.settings.max_eval_samples)
        self.task.fit_labels(train, self.settings.labels)
        key = self._training_key(seed, train, dev)
        cached = seed_dir / "model"
        reused = None if overwrite else _load_cached(cached, key)
        if reused is not None:
            summary.reused_seeds.append(seed)
            self.console.print(f"seed {seed}: reusing the fine-tuned model in {cached}", highlight=False)
            return self._load_model(cached), reused
        model, outcome = self._train(seed, train, dev)
        training = {**self._training_record(train, dev), **outcome.record()}
        if self.settings.keep_model:
            _save_model(model, self.tokenizer, cached, key, training)
        summary.trained_seeds.append(seed)
        return model, training

    def _train(self, seed: int, train, dev) -> tuple[Any, TrainOutcome]:
        set_seed(seed)
        with _loading(self.settings.model):
            model = self.task.build_model(self.settings.model)
        settings = train_settings(self.settings, seed)
        loader = self.task.train_loader(train, self.tokenizer, settings.batch_size, seed)
        self.console.print(
            f"seed {seed}: fine-tuning on {self.data.source_lang} ({len(train)} train, {len(dev)} dev) on "
            f"{self.runtime.describe()}, {settings.epochs} epochs, lr {settings.lr}, "
            f"batch {settings.batch_size} x {settings.grad_accum}",
            highlight=False,
        )
        dev_score = self.task.dev_score(self.tokenizer, dev, self.runtime)
        model = model.to(self.runtime.device)
        return finetune(model, loader, dev_score, settings, self.runtime, self.progress, self.console,
                        label=f"seed {seed}")

    def _load_model(self, path: Path):
        with _loading(str(path)):
            model = self.task.build_model(str(path))
        return model.to(self.runtime.device).eval()

    def _training_record(self, train, dev) -> dict:
        return {"source_lang": self.data.source_lang, "train_n": len(train), "dev_n": len(dev),
                "train_source": train.source, "dev_source": dev.source, "labels": self.task.labels,
                **{f"{name}_sample": part.notes["sample"] for name, part in (("train", train), ("dev", dev))
                   if part.notes.get("sample")}}

    def _training_key(self, seed: int, train, dev) -> str:
        files = [_file_stamp(p) for p in self.data.source_files]
        key = {
            "model": _model_stamp(self.settings.model), "task": self.task.name, "seed": seed,
            "source_lang": self.data.source_lang, "files": files, "train_n": len(train), "dev_n": len(dev),
            "labels": self.task.labels, "max_length": self.task.max_length,
            "samples": [train.notes.get("sample"), dev.notes.get("sample")],
            "train": {k: getattr(self.settings, k) for k in TRAIN_KEYS},
            "mixed_precision": self.runtime.mixed_precision,
            **_reading_of(self.settings),
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _unit_warnings(extra: dict) -> list[str]:
    """What a scored unit left out or could not predict (also in its record), as lines to print."""
    warnings = []
    if extra.get("unknown_label_rows"):
        labels = ", ".join(f"{k} x{v}" for k, v in extra.get("unknown_labels", {}).items())
        warnings.append(f"{extra['unknown_label_rows']} row(s) with labels outside the model's label set left out "
                        f"({labels}); recorded as unknown_label_rows")
    if extra.get("unknown_tags"):
        tags = ", ".join(f"{k} x{v}" for k, v in extra["unknown_tags"].items())
        warnings.append(f"gold tags the model cannot predict ({tags}) count as errors; recorded as unknown_tags")
    return warnings


@contextmanager
def _loading(model: str) -> Iterator[None]:
    """A model that cannot be loaded is a user error (wrong path or name), not a traceback."""
    try:
        yield
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LangsampError(f"--model {model}: cannot load it ({first_line}); pass a checkpoint dir or a model name") from err


def _seed_dir(store) -> Path:
    """The folder of one (task, model, seed) in the result layout (``.../seed{s}``)."""
    for name in ("seed_dir", "run_dir", "root"):
        value = getattr(store, name, None)
        if value is not None:
            return Path(value)
    return Path(store.units_dir).parent


def _load_cached(path: Path, key: str) -> dict | None:
    meta = path / "finetune.json"
    if not meta.is_file():
        return None
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return record.get("training") if record.get("key") == key else None


def _save_model(model, tokenizer, path: Path, key: str, training: dict) -> None:
    """The fine-tuned model with its tokenizer, so the folder loads (and can be evaluated) on its own."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        atomic_write_json(tmp / "finetune.json", {"key": key, "training": training})


def _file_stamp(path: str) -> dict:
    p = Path(path)
    stat = p.stat() if p.exists() else None
    return {"path": str(p.resolve()), "size": stat.st_size if stat else None, "mtime": stat.st_mtime if stat else None}


def _model_stamp(model: str) -> str:
    """A content fingerprint for local checkpoints when model.py offers one; the name otherwise."""
    try:
        from langsamp_cli.model import model_fingerprint

        return model_fingerprint(model)
    except (ImportError, LangsampError, OSError):
        return model


# ---------------------------------------------------------------------------- plans (files -> units)
def plan_from_files(
    task: str,
    files: dict[str, dict[str, Path]],
    reader: Callable[[Path], Any],
    source_lang: str,
    where: str,
    train_file: str | Path | None = None,
    dev_file: str | Path | None = None,
) -> TransferData:
    """Source splits + one test loader per language from ``{lang: {split: path}}``.

    ``train_file``/``dev_file`` replace the source language's own splits (e.g. UNER English, whose
    released train file is not available). Restrict to requested languages with
    :func:`restrict_languages` afterwards.
    """
    if not files and not (train_file and dev_file):
        raise LangsampError(f"{where}: no {task} data files found; check --data-dir and the file names")
    source = _resolve_source(files, source_lang)
    train_path = _source_split(files, source, "train", train_file, where, task)
    dev_path = _source_split(files, source, "dev", dev_file, where, task)
    data = TransferData(task, source, train=lambda: reader(train_path), dev=lambda: reader(dev_path),
                        source_files=[str(train_path), str(dev_path)])
    for lang, splits in files.items():
        if "test" in splits:
            data.targets[lang] = lambda path=splits["test"]: reader(path)
        else:
            folder = next(iter(splits.values())).parent
            data.problems[lang] = f"{folder}: no test split for {lang} (found {', '.join(sorted(splits))})"
    return data


def _resolve_source(files: dict[str, dict[str, Path]], source_lang: str) -> str:
    from langsamp_cli.data.parallel import match_requested
    from langsamp_cli.languages import parse_lang_script

    wanted = parse_lang_script(source_lang).id
    return match_requested([wanted], files)[wanted] or wanted


def _source_split(files: dict[str, dict[str, Path]], source: str, split: str, override, where: str,
                  task: str) -> Path:
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise LangsampError(f"--{split}-file {path}: file not found")
        return path
    path = files.get(source, {}).get(split)
    if path is None:
        having = sorted(lang for lang, splits in files.items() if split in splits)
        listed = ", ".join(having) if having else "none"
        raise LangsampError(
            f"{where}: no {split} split for source language {source} in {task}; languages with one: {listed}. "
            f"Pick one with --source-lang or give --{split}-file PATH"
        )
    return path


def restrict_languages(data: TransferData, requested: list[str] | None, where: str,
                       any_script: Collection[str] = ()) -> TransferData:
    """Keep the requested languages (aliases allowed); requested ones with no data become problems.

    ``any_script``: requested ids that were given without a script (see ``match_requested``).
    """
    if requested is None:
        return data
    from langsamp_cli.data.parallel import restrict_requested

    data.targets, data.problems = restrict_requested(data.targets, data.problems, requested, any_script,
                                                     lambda wanted: f"{where}: no {data.task} test data for {wanted}")
    return data


def add_bible_targets(data: TransferData, bibles: dict[str, Path], official_test: Path, replace: bool = False,
                      console: Console | None = None) -> TransferData:
    """Taxi1500 target sets joined from whole Bibles on the official test verse ids (labels from there).

    A language that already has a test file keeps it unless ``replace`` (a Bible named with
    ``--bible``); either way the choice is printed.
    """
    from langsamp_cli.data.bible import read_bible
    from langsamp_cli.data.taxi1500 import join_bible, read_taxi1500_tsv

    console = console or Console(stderr=True)
    for lang, path in bibles.items():
        if lang in data.targets:
            if not replace:
                console.print(f"[yellow]not used[/] {path.name}: {lang} has its own test file", highlight=False)
                continue
            console.print(f"{lang}: using the Bible {path.name} instead of its test file", highlight=False)
        data.problems.pop(lang, None)
        data.targets[lang] = lambda path=path: join_bible(read_taxi1500_tsv(official_test), read_bible(path), str(path))
    return data
