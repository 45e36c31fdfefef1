"""One logger for the library, ``logging.getLogger("langsamp")``, and the CLI's handler for it.

Library modules take ``log = get_logger()`` (the ``langsamp`` logger) and call ``log.warning(...)`` /
``log.info(...)``. Like ``transformers``' logger, it prints by default, also when the library is used
without the CLI: :class:`LineHandler` writes each record as one plain line on stderr (no level column,
no time, no Rich markup or emoji read into the text, no hard wraps, so the line can be grepped in a
log). The CLI sets the level once per command (:func:`setup_logging`: ``--quiet`` / ``--verbose``).
Code that wants the records elsewhere replaces the handler or sets ``propagate`` back on.
"""

from __future__ import annotations

import logging

from rich.console import Console
from rich.text import Text

LOGGER_NAME = "langsamp"
LEVELS = {"quiet": logging.WARNING, "normal": logging.INFO, "verbose": logging.DEBUG}


class LineHandler(logging.Handler):
    """Rich console output, one line per record; warnings and errors get a coloured prefix only."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            text = Text(" ".join(message.splitlines()))
            Console(stderr=True, emoji=False, highlight=False).print(text, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging must never take the run down
            self.handleError(record)


def get_logger() -> logging.Logger:
    """The ``langsamp`` logger, given its default line handler (INFO) the first time."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        logger.addHandler(LineHandler())
        logger.setLevel(LEVELS["normal"])
        logger.propagate = False
    return logger


def setup_logging(verbosity: str = "normal") -> logging.Logger:
    """Route the ``langsamp`` logger to one :class:`LineHandler` at ``verbosity`` (quiet | normal | verbose)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if isinstance(h, LineHandler)]:
        logger.removeHandler(handler)
    logger.addHandler(LineHandler())
    logger.setLevel(LEVELS[verbosity])
    logger.propagate = False
    return logger
