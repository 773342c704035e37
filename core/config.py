"""Strict YAML -> frozen dataclass loading for method hparams and run settings.

Unknown or missing keys are errors that name the file and the key; `Literal[...]` fields are
checked against their allowed values; `__post_init__` of the target class checks cross-field rules.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file does not match its dataclass."""


def _check_literal(path: str, name: str, tp: Any, value: Any) -> None:
    if typing.get_origin(tp) is typing.Literal and value not in typing.get_args(tp):
        raise ConfigError(f"{path}: field {name!r} = {value!r} is not one of {typing.get_args(tp)}")


def hparams_from_dict(d: dict[str, Any], cls: type[T], source: str = "<dict>") -> T:
    """Build `cls` from `d`; unknown, missing or out-of-range keys raise ConfigError naming `source`."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: expected a mapping at top level, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} for {cls.__name__}")
    required = {
        n for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(d))
    if missing:
        raise ConfigError(f"{source}: missing key(s) {missing} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    for name, value in d.items():
        _check_literal(source, name, hints.get(name), value)
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: {e}") from e


def load_hparams(path: str | Path, cls: type[T]) -> T:
    """Load a YAML file into the frozen dataclass `cls` (lists become tuples)."""
    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read YAML: {e}") from e
    return hparams_from_dict(d, cls, source=str(path))
