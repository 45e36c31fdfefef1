"""The one exception type the CLI turns into a one-line message (never a traceback)."""


class LangsampError(Exception):
    """A user-facing error: the message names the file/line/value and what to do."""
