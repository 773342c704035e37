"""Checked access to JSON data files for readers: each failure is a `DataError` naming file, record, field.

`load_records(path)` reads a top-level JSON array of objects into `Record`s; `load_object(path)` reads a
top-level object. `Record` methods fetch required or optional fields with type checks. `flatten_aliases`
and `first_answer` implement the answer normalisation shared by the readers (easyedit-notes §3.1):
a `ground_truth` may be a string, a list of aliases, or a list of lists of aliases; the answer used is
the first alias (EasyEdit's `while isinstance(an, list): an = an[0]`), and a blank answer counts as
absent (EasyEdit drops the probe).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.data.errors import DataError

_MISSING = object()


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def load_json(path: str | Path) -> Any:
    """Parse a JSON file; unreadable files and invalid JSON (with line and column) raise `DataError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read file: {e}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(path, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e


def load_object(path: str | Path) -> dict[str, Any]:
    """A file whose top level must be a JSON object."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise DataError(path, f"top level is a JSON {json_type(data)}, expected an object")
    return data


def wrap_records(path: str | Path, items: Any, *, part: str | None = None) -> list[Record]:
    """Wrap a JSON array of objects (the top level, or `part` of a top-level object) as `Record`s."""
    if not isinstance(items, list):
        where = "top level" if part is None else f"part {part!r}"
        raise DataError(path, f"{where} is a JSON {json_type(items)}, expected an array of records")
    out = []
    for i, item in enumerate(items):
        rec = Record(Path(path), i, {}, part)
        if not isinstance(item, dict):
            raise DataError(path, f"is a JSON {json_type(item)}, expected an object", record=rec.label)
        out.append(Record(Path(path), i, item, part))
    return out


def load_records(path: str | Path) -> list[Record]:
    """A file whose top level must be a JSON array of objects."""
    return wrap_records(path, load_json(path))


def flatten_aliases(value: Any, rec: Record, field: str) -> tuple[str, ...]:
    """str | list[str] | list[list[str]] (any depth) -> all aliases, depth first; other types raise."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        out: list[str] = []
        for i, v in enumerate(value):
            out.extend(flatten_aliases(v, rec, f"{field}[{i}]"))
        return tuple(out)
    raise rec.error(field, f"is a JSON {json_type(value)}, expected a string or a list of aliases")


def first_answer(aliases: tuple[str, ...]) -> str | None:
    """The first alias, or None when there is none or it is blank (EasyEdit then drops the probe)."""
    if not aliases or not aliases[0].strip():
        return None
    return aliases[0]


@dataclass(frozen=True)
class Record:
    """One JSON object of a data file, with its position for error messages and case ids."""

    path: Path
    index: int
    data: Mapping[str, Any]
    part: str | None = None

    @property
    def label(self) -> int | str:
        """How error messages name this record: its index, or `part[index]`."""
        return self.index if self.part is None else f"{self.part}[{self.index}]"

    @property
    def case_id(self) -> str:
        """Stable id from the file stem, the part (if any) and the record index."""
        mid = "" if self.part is None else f"{self.part}/"
        return f"{self.path.stem}/{mid}{self.index}"

    def error(self, field: str | None, problem: str) -> DataError:
        """A `DataError` for this record (raise it)."""
        return DataError(self.path, problem, record=self.label, field=field)

    def has(self, key: str, *, within: Mapping[str, Any] | None = None) -> bool:
        """Whether `key` is present (and not null)."""
        return (self.data if within is None else within).get(key) is not None

    def value(
        self, key: str, *, within: Mapping[str, Any] | None = None, at: str = "", default: Any = _MISSING
    ) -> Any:
        """The raw value of a field; a missing (or null) field raises unless a `default` is given."""
        m = self.data if within is None else within
        v = m.get(key)
        if v is None:
            if default is _MISSING:
                raise self.error(_join(at, key), "missing" if key not in m else "is null")
            return default
        return v

    def text(
        self, key: str, *, within: Mapping[str, Any] | None = None, at: str = "", allow_empty: bool = False
    ) -> str:
        """A required string field; blank strings raise unless `allow_empty`."""
        v = self.value(key, within=within, at=at)
        if not isinstance(v, str):
            raise self.error(_join(at, key), f"is a JSON {json_type(v)}, expected a string")
        if not allow_empty and not v.strip():
            raise self.error(_join(at, key), "empty string")
        return v

    def optional_text(self, key: str, *, within: Mapping[str, Any] | None = None, at: str = "") -> str | None:
        """An optional string field (blank allowed); None when absent."""
        if not self.has(key, within=within):
            return None
        return self.text(key, within=within, at=at, allow_empty=True)

    def texts(self, key: str, *, within: Mapping[str, Any] | None = None, at: str = "") -> tuple[str, ...]:
        """A required array of strings (a single string is taken as a one-element array)."""
        v = self.value(key, within=within, at=at)
        if isinstance(v, str):
            return (v,)
        if not isinstance(v, list):
            raise self.error(_join(at, key), f"is a JSON {json_type(v)}, expected an array of strings")
        for i, s in enumerate(v):
            if not isinstance(s, str):
                raise self.error(f"{_join(at, key)}[{i}]", f"is a JSON {json_type(s)}, expected a string")
        return tuple(v)

    def mapping(
        self, key: str, *, within: Mapping[str, Any] | None = None, at: str = ""
    ) -> Mapping[str, Any]:
        """A required JSON object field."""
        v = self.value(key, within=within, at=at)
        if not isinstance(v, dict):
            raise self.error(_join(at, key), f"is a JSON {json_type(v)}, expected an object")
        return v

    def objects(
        self, key: str, *, within: Mapping[str, Any] | None = None, at: str = ""
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """A required array of JSON objects, as (field path of the element, element) pairs."""
        v = self.value(key, within=within, at=at)
        field = _join(at, key)
        if not isinstance(v, list):
            raise self.error(field, f"is a JSON {json_type(v)}, expected an array of objects")
        out = []
        for i, o in enumerate(v):
            if not isinstance(o, dict):
                raise self.error(f"{field}[{i}]", f"is a JSON {json_type(o)}, expected an object")
            out.append((f"{field}[{i}]", o))
        return out

    def answer(
        self, key: str, *, within: Mapping[str, Any] | None = None, at: str = ""
    ) -> tuple[str | None, tuple[str, ...]]:
        """A required answer field normalised to (first alias or None when blank/empty, all aliases)."""
        aliases = flatten_aliases(self.value(key, within=within, at=at), self, _join(at, key))
        return first_answer(aliases), tuple(a for a in aliases if a.strip())

    def check_subject(self, subject: str, prompt: str, *, prompt_field: str = "prompt") -> None:
        """Raise unless `subject` is non-blank and occurs, case-sensitively, in `prompt` (ROME/MEMIT)."""
        if not subject.strip():
            raise self.error("subject", "empty string (require_subject_in_prompt=True)")
        if subject not in prompt:
            raise self.error("subject", f"{subject!r} not found in {prompt_field} {prompt!r}")


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key
