"""Typed settings: one dataclass field per setting gives its YAML key, its type check and its CLI flag.

A settings class (``RetrievalSettings``, ``TransferSettings``, ``PretrainConfig``, ...) declares each field
with :func:`setting`: the help text, the flag names and whether it is a flag at all. From that one
declaration this module derives

- the keys a YAML file may hold (anything else: one line naming the key and the closest known ones),
- the conversion and check of every value, from a flag or a YAML file (``5e-5`` written as text, a comma
  list for a list, a bare ``no`` read by YAML as false for a precision),
- the Typer parameters of the command, so a new setting is one new field.

Fields typed without ``| None`` are required: a YAML template or the dataclass default must set them.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

from langsamp_cli.errors import LangsampError

_META = "langsamp"


@dataclass(frozen=True)
class Meta:
    help: str
    flags: tuple[str, ...] = ()       # option names; () = --field-name (booleans: --x/--no-x)
    cli: bool = True                  # False: a YAML-only key
    run_only: bool = False            # steers one run (overwrite, shard, ...); never recorded as a setting
    path: bool = False                # a file or folder (the flag takes a path; the experiment checks it exists)
    optional_input: bool = False      # a flag only on the commands whose TaskSpec lists it in ``inputs``
    positive: bool = False            # numbers: > 0
    non_negative: bool = False        # numbers: >= 0
    maximum: int | None = None        # numbers: <= maximum (e.g. a seed numpy accepts)
    minimum: float | None = None      # numbers: >= minimum ("use at least", with ``why``)
    below: float | None = None        # numbers: < below (an open upper end, e.g. a share under 1)
    why: str = ""                     # the reason for ``minimum``, shown with the error
    hashed: bool = True               # False: recorded with a result but it does not change the number, so it
    #                                   stays out of the settings hash (device, batch size, output folder, ...)


def setting(help: str, *flags: str, default: Any = None, cli: bool = True, run_only: bool = False,
            path: bool = False, optional_input: bool = False, positive: bool = False,
            non_negative: bool = False, maximum: int | None = None, minimum: float | None = None,
            below: float | None = None, why: str = "", hashed: bool = True) -> Any:
    """A dataclass field with its metadata (see :class:`Meta`)."""
    meta = Meta(help, flags, cli, run_only, path, optional_input, positive, non_negative, maximum, minimum, below,
                why, hashed)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={_META: meta})
    return dataclasses.field(default=default, metadata={_META: meta})


def meta(field: dataclasses.Field) -> Meta:
    return field.metadata.get(_META) or Meta("")


def fields(cls: type) -> list[dataclasses.Field]:
    return list(dataclasses.fields(cls))


def field_names(cls: type, *, run_only: bool | None = None) -> list[str]:
    """Every field name; ``run_only=False`` only the recorded settings, ``True`` only the run options."""
    return [f.name for f in fields(cls) if run_only is None or meta(f).run_only == run_only]


def path_keys(*classes: type) -> set[str]:
    """Names of the fields that hold paths."""
    return {f.name for cls in classes for f in fields(cls) if meta(f).path}


# ---------------------------------------------------------------------------- keys
def check_known_keys(keys: Iterable[str], allowed: Iterable[str], source: str, what: str,
                     internal: Iterable[str] = ()) -> None:
    """The one unknown-key policy: the first unknown key is a one-line error with the closest known ones.

    ``internal`` keys are accepted but never suggested (the loader writes them itself).
    """
    shown = sorted(set(allowed) - set(internal))
    accepted = set(allowed) | set(internal)
    for key in keys:
        if key in accepted:
            continue
        close = difflib.get_close_matches(str(key), shown, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"known keys: {', '.join(shown)}"
        raise LangsampError(f"{source}: unknown key {key!r}{' ' + what if what else ''}; {hint}")


def normalise_keys(values: Mapping[Any, Any]) -> dict[str, Any]:
    """YAML keys may use dashes like the flags (``max-steps``) or underscores like the fields."""
    return {str(key).replace("-", "_"): value for key, value in values.items()}


# ---------------------------------------------------------------------------- values
def convert_all(cls: type, values: Mapping[str, Any], source: str = "", yaml_path: str | Path | None = None,
                required: bool = False, what: str = "", as_flags: bool = False) -> dict[str, Any]:
    """Every value converted to its field's type (unknown keys are the caller's check).

    ``as_flags``: the values came from the command line; errors name them as ``--flag-name``.
    """
    by_name = {f.name: f for f in fields(cls)}
    hints = typing.get_type_hints(cls)
    converted = {}
    for key, value in values.items():
        if key in by_name:
            name = "--" + key.replace("_", "-") if as_flags else key
            converted[key] = convert(name, value, hints[key], meta(by_name[key]), source, yaml_path)
        else:
            converted[key] = value
    if required:
        for key in by_name:
            if converted.get(key) is None and not _optional(hints[key]) and not meta(by_name[key]).run_only:
                raise LangsampError(f"{source}: missing required key '{key}'{' ' + what if what else ''}")
    return converted


def convert(key: str, value: Any, annotation: Any, info: Meta = Meta(""), source: str = "",
            yaml_path: str | Path | None = None) -> Any:
    """``value`` as ``annotation`` says; a wrong value is one line naming where, the key, the value and the type."""
    if value is None:
        return None  # missing required values are reported by convert_all(required=True)
    if isinstance(value, Path):
        value = str(value)
    def refuse(problem: str) -> LangsampError:
        where = _where(key, yaml_path) or (f"{source}: " if source else "")
        return LangsampError(f"{where}{key}: {value!r} {problem}; fix the value")

    result = _convert(value, _strip_optional(annotation))
    if result is _BAD:
        raise refuse(f"is not {describe(annotation)}")
    check_limits(key, result, info, _where(key, yaml_path) or (f"{source}: " if source else ""), shown=value)
    return result


def check_limits(key: str, value: Any, info: Meta, where: str = "", shown: Any = None) -> None:
    """The limits a field declares (positive, non_negative, maximum, minimum, below), checked on ``value`` (each
    number of a list); a value outside them is a one-line error naming ``key`` and ``shown`` (the value as given,
    before conversion; default ``value``)."""
    shown = value if shown is None else shown
    for number in (value if isinstance(value, (list, tuple)) else [value]):
        if not _is_number(number):
            continue
        problem = ("must be greater than 0" if info.positive and not number > 0
                   else "must be 0 or more" if info.non_negative and not number >= 0
                   else f"must be at most {info.maximum:,}" if info.maximum is not None and number > info.maximum
                   else f"must be below {info.below}" if info.below is not None and not number < info.below
                   else None)
        if problem:
            raise LangsampError(f"{where}{key}: {shown!r} {problem}; fix the value")
        if info.minimum is not None and number < info.minimum:
            why = f" ({info.why})" if info.why else ""
            raise LangsampError(f"{where}{key} {number}: use at least {info.minimum:,}{why}")


_BAD = object()


def _convert(value: Any, kind: Any) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        for option in args:
            result = _convert(value, option)
            if result is not _BAD:
                return result
        return _BAD
    if origin is Literal:
        value = "no" if value is False and "no" in args else value  # YAML 1.1 reads a bare `no` as false
        return value if value in args else _BAD
    if origin is list:
        items = [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items:
            return _BAD
        converted = [_convert(item, args[0]) for item in items]
        return _BAD if any(item is _BAD for item in converted) else converted
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            return _BAD
        converted = tuple(_convert(item, kind_) for item, kind_ in zip(value, args))
        return _BAD if any(item is _BAD for item in converted) else converted
    if kind is bool:
        return value if isinstance(value, bool) else _BAD
    if kind in (int, float):
        number = _number(value, whole=kind is int)
        return _BAD if number is None else number
    if kind is str:
        return str(value) if isinstance(value, (str, Path)) else _BAD
    if kind is Any:
        return value
    raise TypeError(f"unsupported setting type {kind!r}")


def _number(value: Any, whole: bool) -> int | float | None:
    """``value`` as a number (YAML 1.1 reads ``5e-5`` as text), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        return None
    if whole:
        return int(value) if float(value).is_integer() else None
    return float(value)


def describe(annotation: Any) -> str:
    """What a value of ``annotation`` looks like, in words."""
    kind = _strip_optional(annotation)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(option) for option in args)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin is list:
        return f"a list of {_plural(describe(args[0]))} (or a comma list)"
    if origin is tuple:
        return f"{ {2: 'two', 3: 'three'}.get(len(args), len(args))} numbers like [0.9, 0.999]"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a text value"}.get(kind, str(kind))


def _plural(words: str) -> str:
    return {"a whole number": "whole numbers", "a number": "numbers", "a text value": "text values"}.get(words, words)


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else Union[tuple(args)]
    return annotation


def _optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType) and type(None) in typing.get_args(annotation)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _where(key: str, yaml_path: str | Path | None) -> str:
    """``file:line: `` of ``key`` in the YAML file (dashes or underscores), or '' without a file."""
    if yaml_path is None:
        return ""
    try:
        lines = Path(yaml_path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return f"{yaml_path}: "
    for number, line in enumerate(lines, 1):
        name = line.split(":", 1)[0].strip().strip("'\"").replace("-", "_")
        if ":" in line and name == key:
            return f"{yaml_path}:{number}: "
    return f"{yaml_path}: "


# ---------------------------------------------------------------------------- flags
def cli_fields(cls: type, inputs: Iterable[str] = ()) -> list[dataclasses.Field]:
    """The fields that are flags of a command; optional inputs only when listed in ``inputs``."""
    inputs = set(inputs)
    chosen = [f for f in fields(cls) if meta(f).cli and (not meta(f).optional_input or f.name in inputs)]
    # help order: what to run on (model, data), then the settings, then the options of this run only
    return sorted(chosen, key=lambda f: 0 if f.name in ("model", "data_dir") or meta(f).optional_input
                  else 2 if meta(f).run_only else 1)


def typer_parameters(cls: type, inputs: Iterable[str] = (), defaults: Mapping[str, Any] | None = None,
                     notes: Mapping[str, str] | None = None,
                     helps: Mapping[str, str] | None = None,
                     required: Iterable[str] = ()) -> list[inspect.Parameter]:
    """One keyword parameter per flag of ``cls`` (value None = not given), for :func:`make_command`.

    ``defaults`` (e.g. the task YAML) are shown in the help as "(default: ...)", ``notes`` verbatim in
    parentheses, ``helps`` replace a field's help text on this command; the values themselves are applied by the
    library, never by the command, so there is one home for each. ``required`` flags must be given (no YAML
    can set them on this command): click refuses the command without them.
    """
    import typer

    hints = typing.get_type_hints(cls)
    required = set(required)
    parameters = []
    for field in cli_fields(cls, inputs):
        info = meta(field)
        kind = _flag_type(hints[field.name], info)
        names = info.flags or _default_flags(field.name, kind)
        help_text = (helps or {}).get(field.name, info.help)
        if defaults and defaults.get(field.name) is not None and "default" not in help_text:
            help_text = f"{help_text} (default: {show_value(defaults[field.name], names[0])})"
        if notes and field.name in notes and "default" not in help_text:
            help_text = f"{help_text} ({notes[field.name]})"
        default_value = ... if field.name in required else False if kind is bool and "/" not in names[0] else None
        option = typer.Option(default_value, *names, help=help_text, **_metavar(hints[field.name]))
        annotation = Optional[kind] if default_value is None else kind
        parameters.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                            annotation=annotation))
    return parameters


def _flag_type(annotation: Any, info: Meta) -> Any:
    """What the flag parses: paths as Path, lists as one comma-separated text (repeatable paths as a list)."""
    kind = _strip_optional(annotation)
    origin = typing.get_origin(kind)
    if info.path:
        return list[Path] if origin is list else Path
    if kind in (bool, int, float, str):
        return kind
    return str  # lists, unions and choices: text, converted and checked by convert()


def flag_names(field: dataclasses.Field, annotation: Any) -> tuple[str, ...]:
    """The option names of a setting's flag (``--x/--no-x`` for a boolean without its own names)."""
    return meta(field).flags or _default_flags(field.name, _flag_type(annotation, meta(field)))


def _default_flags(name: str, kind: Any) -> tuple[str, ...]:
    dashed = name.replace("_", "-")
    return (f"--{dashed}/--no-{dashed}",) if kind is bool else (f"--{dashed}",)


def _metavar(annotation: Any) -> dict[str, str]:
    kind = _strip_optional(annotation)
    if typing.get_origin(kind) is Literal:
        return {"metavar": "|".join(map(str, typing.get_args(kind)))}
    return {}


def show_value(value: Any, flag: str | None = None) -> str:
    """A setting's value as the help text shows it (lists as comma lists, 150,000; booleans as the flag in effect,
    ``--include-special-tokens``, when ``flag`` is a two-name switch such as ``--x/--no-x``, else on/off)."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if value is None:
        return "none"
    if isinstance(value, bool):
        if flag and "/" in flag:
            on, off = flag.split("/", 1)
            return on if value else off
        return "on" if value else "off"
    return f"{value:,}" if isinstance(value, int) and value >= 10_000 else str(value)


def from_flags(cls: type, values: Mapping[str, Any]) -> Any:
    """A ``cls`` instance from a command's flag values (None = not given: the field's default applies)."""
    given = {key: value for key, value in values.items() if value is not None}
    return cls(**convert_all(cls, given, as_flags=True))


def make_command(name: str, doc: str, parameters: list[inspect.Parameter],
                 body: Callable[[dict[str, Any]], None]) -> Callable[..., None]:
    """A function Typer can register: its signature is ``parameters``; it calls ``body`` with the values."""

    def command(**values: Any) -> None:
        body(values)

    command.__name__ = command.__qualname__ = name.replace("-", "_")
    command.__doc__ = doc
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command
