"""Progress and console output that work on a terminal and in a log file alike.

- On a terminal: a rich progress bar.
- Not on a terminal (a cluster job, ``nohup``, CI, ``2> log``): a bar would show nothing until the end,
  so :class:`PlainProgress` prints one plain line per task at a steady interval instead
  (``$LANGSAMP_PROGRESS_INTERVAL`` seconds, default 30), e.g.
  ``pretraining: step 120/400 (30%), loss 7.123, 1,234 tok/s, elapsed 0:01:02, eta 0:02:24``.
- :func:`widen_for_logs`: Rich hard-wraps at 80 columns when no stream is a terminal, splitting numbers,
  paths and copyable commands; the CLI runs every command inside it so such output is only wrapped by the viewer.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

DEFAULT_INTERVAL_S = 30.0
LOG_COLUMNS = 4096  # wide enough that no line a command prints is wrapped; tables still size to their content


@contextmanager
def widen_for_logs() -> Iterator[None]:
    """While a command runs: Rich lays out for a very wide screen when neither stdout nor stderr is a terminal
    (unless COLUMNS is set). Consoles read COLUMNS when created; it is removed again afterwards, so a caller
    running commands in-process (tests) keeps its own environment."""
    widen = "COLUMNS" not in os.environ and not _isatty(sys.stdout) and not _isatty(sys.stderr)
    if widen:
        os.environ["COLUMNS"] = str(LOG_COLUMNS)
    try:
        yield
    finally:
        if widen:
            os.environ.pop("COLUMNS", None)


def print_table(table, console: Console | None = None) -> None:
    """The one way a rich ``Table`` is printed: boxed on a terminal, plain aligned lines otherwise.

    In a log file (or a pipe) box characters and the padding of every row to the widest cell make lines
    hundreds of characters wide; plain lines keep each row as long as its own text, with no trailing spaces.
    """
    console = console or Console()
    if console.is_terminal:
        console.print(table)
        return
    for line in plain_table_lines(table):
        console.print(line, highlight=False, markup=False, soft_wrap=True, emoji=False)


def plain_table_lines(table) -> list[str]:
    """Title, header and rows of a rich ``Table`` as text lines (columns two spaces apart, markup removed)."""
    from rich.text import Text

    def plain(value) -> str:
        if value is None:
            return ""
        text = value if isinstance(value, Text) else Text.from_markup(str(value)) if isinstance(value, str) else None
        return " ".join((text.plain if text is not None else str(value)).split())

    columns = table.columns
    header = [plain(column.header) for column in columns]
    cells = [[plain(cell) for cell in column.cells] for column in columns]
    rows = [list(row) for row in zip(*cells)] if cells else []
    widths = [max([len(header[i])] + [len(row[i]) for row in rows]) for i in range(len(columns))]

    def line(values: list[str]) -> str:
        parts = [value.rjust(width) if column.justify == "right" else value.ljust(width)
                 for value, width, column in zip(values, widths, columns)]
        return "  ".join(parts).rstrip()

    lines = [plain(table.title)] if table.title else []
    if table.show_header:
        lines.append(line(header))
    for index, row in enumerate(rows):
        lines.append(line(row))
        if index < len(rows) - 1 and index < len(table.rows) and table.rows[index].end_section:
            lines.append("")
    if table.caption:
        lines.append(plain(table.caption))
    return lines


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_interval() -> float:
    value = os.environ.get("LANGSAMP_PROGRESS_INTERVAL", "")
    try:
        return max(0.0, float(value)) if value.strip() else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S


def make_progress(console: Console, enabled: bool = True, unit: str = "step",
                  fields: dict[str, str] | None = None, transient: bool = False):
    """A rich bar on a terminal, plain lines otherwise; nothing when not ``enabled``.

    ``fields``: extra per-task values shown after the count, name -> format with ``{}`` (e.g.
    ``{"loss": "loss {}", "tps": "{} tok/s"}``); pass them to ``add_task``/``update`` as keyword arguments.
    """
    fields = fields or {}
    if enabled and not console.is_terminal:
        return PlainProgress(console, unit=unit, fields=fields, interval_s=progress_interval())
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns += [TextColumn(fmt.replace("{}", "{task.fields[%s]}" % name)) for name, fmt in fields.items()]
    columns += [TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    return Progress(*columns, console=console, disable=not enabled, transient=transient)


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    fields: dict
    started: float = field(default_factory=time.monotonic)
    start_completed: float = 0.0
    printed_at: float | None = None
    printed_completed: float | None = None
    first_at: float | None = None         # when the first move of this run was seen
    first_completed: float | None = None  # and where it got to


class PlainProgress:
    """The part of ``rich.progress.Progress`` the project uses, as one plain line per interval (for logs)."""

    def __init__(self, console: Console, unit: str = "step", fields: dict[str, str] | None = None,
                 interval_s: float = DEFAULT_INTERVAL_S, clock=time.monotonic) -> None:
        self.console, self.unit, self.fields, self.interval_s, self.clock = console, unit, fields or {}, interval_s, clock
        self.tasks: dict[int, _Task] = {}

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        """The last state of every task that moved since its last line."""
        for task in self.tasks.values():
            if task.completed not in (task.start_completed, task.printed_completed):
                self._print(task)

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields) -> int:
        task_id = len(self.tasks)
        now = self.clock()
        self.tasks[task_id] = _Task(description, total, completed, dict(fields), started=now,
                                    start_completed=completed)
        return task_id

    def update(self, task_id: int, *, total: float | None = None, completed: float | None = None,
               advance: float | None = None, description: str | None = None, **fields) -> None:
        task = self.tasks[task_id]
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        if task.first_at is None and task.completed != task.start_completed:
            task.first_at, task.first_completed = self.clock(), task.completed
        if description is not None:
            task.description = description
        task.fields.update(fields)
        if completed is not None or advance is not None:  # a line per move, not per field refresh
            self._maybe_print(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _maybe_print(self, task: _Task) -> None:
        if task.completed == task.start_completed or task.completed == task.printed_completed:
            return
        now = self.clock()
        # the first step is shown at once (the run is alive), then one line per interval
        if task.printed_at is None or now - task.printed_at >= self.interval_s:
            self._print(task, now)

    def line(self, task: _Task, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        done = task.completed
        count = f"{self.unit} {done:g}" + (f"/{task.total:g} ({done / task.total:.0%})" if task.total else "")
        parts = [f"{task.description}: {count}"]
        parts += [fmt.format(task.fields[name]) for name, fmt in self.fields.items() if name in task.fields]
        elapsed = now - task.started
        parts.append(f"elapsed {_clock(elapsed)}")
        eta = self._eta(task, now)
        if eta is not None:
            parts.append(f"eta {_clock(eta)}")
        return ", ".join(parts)

    @staticmethod
    def _eta(task: _Task, now: float) -> float | None:
        """Seconds left at the pace since the first move, which leaves start-up (loading, the first slow step)
        out; None while a single step is all there is to go by (its time says little about the rest)."""
        if not task.total or task.first_at is None:
            return None
        left = task.total - task.completed
        since_first = task.completed - task.first_completed
        if since_first > 0 and now > task.first_at:
            return left * (now - task.first_at) / since_first
        moved = task.completed - task.start_completed
        if moved > 1 and now > task.started:  # the first update already covered several steps
            return left * (now - task.started) / moved
        return None

    def _print(self, task: _Task, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self.console.print(self.line(task, now), highlight=False, markup=False, soft_wrap=True)
        task.printed_at, task.printed_completed = now, task.completed


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=int(max(0.0, seconds))))
