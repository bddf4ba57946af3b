"""Command-line options generated from the library's settings dataclasses, so that a setting's name, default and
help live in one place: its field, `name: type = field(default=..., metadata={"help": ...})`.

A field becomes `--field-name` (or the option strings in metadata["flags"]), parsed by its annotation: bool ->
`--flag/--no-flag`; `X | None` -> X; `list[X]`, `tuple[X, ...]` -> one or more X; other unions (`bool | str`) ->
str. A field without a default is a required option; one without help is no option at all. The other metadata
keys are argparse's own (choices, metavar, nargs, const, type); `free_text` marks a str that must be UTF-8 text.

transformers' HfArgumentParser does much the same, but takes no unions but Optional (TrainConfig.resume is
`bool | str`), spells every option twice (`--learning_rate`, `--learning-rate`) and costs 1.6 s to import.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

OWN_KEYS = ("help", "flags", "free_text")  # metadata read here; the rest goes to argparse as is


def add_settings(parser, settings, defaults: dict | None = None, skip=()) -> None:
    """An option for every field of the dataclass `settings` that has help, but those in `skip`; `defaults` replaces
    the dataclass's defaults where a command's differ (instruct's learning rate, for one)."""
    from . import text

    hints = typing.get_type_hints(settings)
    for field in dataclasses.fields(settings):
        if field.name in skip or "help" not in field.metadata:
            continue
        default = (defaults or {}).get(field.name, default_of(field))
        kwargs = parsed_as(hints[field.name])
        if field.metadata.get("free_text"):
            kwargs["type"] = text
        kwargs.update({key: value for key, value in field.metadata.items() if key not in OWN_KEYS})
        if default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        flags = field.metadata.get("flags", [f"--{field.name.replace('_', '-')}"])
        if "action" not in kwargs:
            kwargs.setdefault("metavar", flags[0].lstrip("-").replace("-", "_").upper())  # --lr LR, not LEARNING_RATE
        parser.add_argument(*flags, dest=field.name, help=help_of(field, default, kwargs), **kwargs)


def settings_values(args: argparse.Namespace, settings) -> dict:
    """The parsed options that are fields of the dataclass `settings`, by field name."""
    names = {field.name for field in dataclasses.fields(settings)}
    return {name: value for name, value in vars(args).items() if name in names}


def default_of(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def parsed_as(hint) -> dict:
    """argparse keywords for a field annotated `hint`."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)] if union else [hint]
    sequence = next((kind for kind in kinds if typing.get_origin(kind) in (list, tuple) or kind in (list, tuple)), None)
    if sequence is not None:
        return {"nargs": "+", "type": next(iter(typing.get_args(sequence)), str)}
    if kinds == [bool]:
        return {"action": argparse.BooleanOptionalAction}
    return {"type": next((kind for kind in kinds if kind in (int, float, str)), str)}


def help_of(field: dataclasses.Field, default, kwargs: dict) -> str:
    """The field's help, with its default when it has one worth saying (BooleanOptionalAction adds its own)."""
    text = field.metadata["help"].replace("%", "%%")
    unsaid = (None, False, dataclasses.MISSING)
    shown = all(default is not value for value in unsaid) and kwargs.get("action") is not argparse.BooleanOptionalAction
    if shown and "default" not in text:
        value = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        text += f" (default: {value.replace('%', '%%')})"
    return text
