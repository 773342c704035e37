"""`DataError`: the one exception the readers raise for a bad data file, naming file, record and field.

Message shape: `<file>: record <i>: field '<field>': <problem>` (record and field are left out when
the problem is at file level, e.g. invalid JSON or a top level of the wrong type). Records nested in
a named part of a file (Sanitation's "K_F") are written `record K_F[3]`.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A data file that cannot be read into `EditRequest`s; carries `path`, `record` and `field`."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        record: int | str | None = None,
        field: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.problem = problem
        self.record = record
        self.field = field
        parts = [str(path)]
        if record is not None:
            parts.append(f"record {record}")
        if field is not None:
            parts.append(f"field {field!r}")
        parts.append(problem)
        super().__init__(": ".join(parts))
