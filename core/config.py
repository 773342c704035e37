"""Strict YAML -> frozen dataclass loading for method hparams and run settings.

Unknown or missing keys are errors that name the file and the key; `Literal[...]` fields are
checked against their allowed values; `__post_init__` of the target class checks cross-field rules.
A file may start from another with `base: <path relative to the file>`: its own keys override the
base's (one level of keys; lists are replaced, not merged), so a variant states only what differs.
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


BASE_KEY = "base"


def read_yaml_with_base(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping in `path` laid over the mapping of its `base:` file (recursively); errors name files."""
    path = Path(path)
    if path.resolve() in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path.resolve()))
        raise ConfigError(f"{path}: `{BASE_KEY}` files form a cycle: {chain}")
    try:
        d = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read YAML: {e}") from e
    if not isinstance(d, dict) or BASE_KEY not in d:
        return d
    base = d.pop(BASE_KEY)
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: field {BASE_KEY!r} must be a relative file path, got {base!r}")
    parent = read_yaml_with_base(path.parent / base, (*_seen, path.resolve()))
    if not isinstance(parent, dict):
        raise ConfigError(f"{path.parent / base}: expected a mapping at top level (base of {path})")
    return {**parent, **d}


def load_hparams(path: str | Path, cls: type[T]) -> T:
    """Load a YAML file (with its `base:` chain) into the frozen dataclass `cls` (lists become tuples)."""
    path = Path(path)
    return hparams_from_dict(read_yaml_with_base(path), cls, source=str(path))
