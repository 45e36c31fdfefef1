"""Output in a log file: plain progress lines at an interval, no 80-column wrapping, readable --help pages."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress

from langsamp_cli.progress import PlainProgress, make_progress

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _plain(interval: float = 10.0) -> tuple[PlainProgress, io.StringIO, FakeClock]:
    buffer, clock = io.StringIO(), FakeClock()
    console = Console(file=buffer, width=80)
    progress = PlainProgress(console, unit="step", fields={"loss": "loss {}", "tps": "{} tok/s"},
                             interval_s=interval, clock=clock)
    return progress, buffer, clock


def test_not_a_terminal_gets_plain_lines_a_terminal_gets_a_bar():
    assert isinstance(make_progress(Console(file=io.StringIO())), PlainProgress)
    assert isinstance(make_progress(Console(file=io.StringIO(), force_terminal=True)), Progress)
    disabled = make_progress(Console(file=io.StringIO()), enabled=False)
    assert isinstance(disabled, Progress) and disabled.disable


def test_plain_progress_prints_first_step_then_once_per_interval_then_the_end():
    progress, buffer, clock = _plain(interval=10.0)
    with progress:
        task = progress.add_task("pretraining", total=400, completed=0, loss="-", tps="-")
        for step in range(1, 101):  # one step per second
            clock.now += 1.0
            progress.update(task, loss=f"{8 - step / 100:.3f}", tps="2,048")
            progress.update(task, completed=step)
    lines = buffer.getvalue().splitlines()
    # step 1 at once, then steps 11, 21, ..., 91 (10 s apart), then the last state (step 100) on exit
    assert [int(re.search(r"step (\d+)/", line)[1]) for line in lines] == [1, 11, 21, 31, 41, 51, 61, 71, 81, 91, 100]
    assert lines[-1] == ("pretraining: step 100/400 (25%), loss 7.000, 2,048 tok/s, elapsed 0:01:40, eta 0:05:00")


def test_eta_counts_only_the_steps_of_this_run_when_resumed():
    progress, buffer, clock = _plain(interval=0.0)
    task = progress.add_task("pretraining", total=300, completed=200)
    clock.now += 50.0
    progress.update(task, completed=250)  # 50 steps in 50 s, 50 to go
    assert buffer.getvalue().strip().endswith("elapsed 0:00:50, eta 0:00:50")


def test_nothing_printed_before_the_first_step():
    progress, buffer, _ = _plain()
    with progress:
        progress.add_task("pretraining", total=10)
    assert buffer.getvalue() == ""


def test_pretrainer_uses_the_plain_progress_when_not_on_a_terminal():
    from langsamp_cli.pretrain.trainer import make_progress as trainer_progress

    progress = trainer_progress(Console(file=io.StringIO()), enabled=True)
    assert isinstance(progress, PlainProgress)
    task = progress.add_task("pretraining", total=4, loss="-", tps="-")
    progress.update(task, loss="6.500", tps="1,000")
    progress.update(task, completed=1)
    assert "pretraining: step 1/4 (25%), loss 6.500, 1,000 tok/s" in progress.console.file.getvalue()


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**environment, **env})


def test_log_output_is_not_wrapped_at_80_columns():
    long_line = "lr 0.001 " + "runs/" + "x" * 150 + "/final"
    code = ("import os; from langsamp_cli.progress import widen_for_logs; from rich.console import Console\n"
            f"with widen_for_logs(): Console().print({long_line!r}); Console(stderr=True).print({long_line!r})\n"
            "assert 'COLUMNS' not in os.environ  # restored for in-process callers")
    done = _run(["-c", code])
    assert done.stdout.splitlines() == [long_line]
    assert done.stderr.splitlines() == [long_line]
    assert _run(["-c", code], COLUMNS="60").stdout.count("\n") > 1  # an explicit COLUMNS is respected


def test_help_pages_are_readable_at_80_columns():
    pages = {
        "eval sr-t": _run(["-m", "langsamp_cli", "eval", "sr-t", "--help"], COLUMNS="80").stdout,
        "eval taxi1500": _run(["-m", "langsamp_cli", "eval", "taxi1500", "--help"], COLUMNS="80").stdout,
        "report": _run(["-m", "langsamp_cli", "report", "--help"], COLUMNS="80").stdout,
        "top": _run(["-m", "langsamp_cli", "--help"], COLUMNS="80").stdout,
        "eval": _run(["-m", "langsamp_cli", "eval", "--help"], COLUMNS="80").stdout,
    }
    for name in ("top", "eval"):  # command lists show whole first sentences, not click's 45-character cut
        commands = pages[name].split("Commands:")[1]
        assert "sr-t" in commands or "pretrain" in commands
        assert not re.search(r"\.\.\.$", commands, flags=re.M), commands
    for name, page in pages.items():
        assert "Options:" in page, name
        assert not re.search(r"<(str|int|float|bool|path|list\[[A-Za-z]+\])>", page), name
        assert "…" not in page and "╭" not in page, name
        assert max(map(len, page.splitlines())) <= 80, name
    assert "--data-dir DIR" in pages["eval sr-t"] and "--pairs N" in pages["eval sr-t"]
    assert "--bible" not in pages["eval sr-t"]  # sr-t has no Bible flags, so its help must not mention them
    assert "report [OPTIONS] RESULT_DIR...\n" in pages["report"]
    # the layout the reader (data/taxi1500.py) accepts
    assert "eng_{train,dev,test}.tsv" in pages["eval taxi1500"] and "<lang>_test.tsv" in pages["eval taxi1500"]


def test_dry_run_commands_stay_on_one_line_in_a_log():
    """`experiment --dry-run` lists commands to copy: in a log (no terminal) each must be whole on its row."""
    done = _run(["-m", "langsamp_cli", "experiment", "cpu-demo", "--dry-run"])
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in (done.stdout + done.stderr).splitlines() if "pretrain:both" in line]
    assert len(rows) == 1
    assert re.search(r"langsamp_cli pretrain --preset demo .* --output-dir \S+/pretrain/both .*--no-progress", rows[0])


def _sample_step(model: Path, tmp_path: Path, monkeypatch) -> tuple[list[str], list[str]]:
    import shlex

    from langsamp_cli.commands import pretrain

    monkeypatch.setattr(pretrain, "SHARED_TATOEBA", tmp_path / "no-such-data")
    lines = pretrain.next_steps(model, ["eng_Latn", "fra_Latn", "zho_Hani"])
    return lines, shlex.split(lines[0], comments=True)


def test_pretrain_next_steps_name_real_data_or_say_where_to_get_it(tmp_path, monkeypatch):
    from langsamp_cli.commands import pretrain

    model = tmp_path / "run" / "final"
    lines, sample = _sample_step(model, tmp_path, monkeypatch)
    assert "DATA/" not in "\n".join(lines)
    assert lines[1].startswith("# real Tatoeba")  # no data beside us: say where to get it, as a comment
    assert sample[:5] == ["langsamp", "eval", "sr-t", "--model", str(model)]
    assert Path(sample[6]).is_dir() and sample[-2:] == ["--languages", "fra_Latn,zho_Hani"]
    (tmp_path / "tatoeba").mkdir()
    monkeypatch.setattr(pretrain, "SHARED_TATOEBA", tmp_path / "tatoeba")
    assert pretrain.next_steps(model, [])[1] == (f"langsamp eval sr-t --model {model} --data-dir "
                                                 f"{tmp_path / 'tatoeba'} --languages fra_Latn,rus_Cyrl,jpn_Jpan")


@pytest.mark.slow
def test_pretrain_next_step_on_the_bundled_sample_runs_as_printed(tiny_model_dir, tmp_path, monkeypatch):
    _, sample = _sample_step(tiny_model_dir, tmp_path, monkeypatch)
    done = _run(["-m", "langsamp_cli", *sample[1:], "--output-dir", str(tmp_path / "results"), "--no-cache"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"fra_Latn: n=40 acc@1=", done.stdout + done.stderr)
