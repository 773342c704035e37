"""The data contract between readers, editors, metrics and protocols.

`EditRequest` is what every reader returns and every editor consumes; `MetricValue` is one number
with the protocol that produced it; `EditRecord` is one evaluated case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Probe:
    """A prompt and the answer expected (portability) or used as teacher-forcing context (locality)."""

    prompt: str
    answer: str


@dataclass(frozen=True, kw_only=True)
class EditRequest:
    """One edit: make the model answer `target_new` to `prompt`.

    `ground_truth` is the pre-edit answer when the dataset has one (None for insertions).
    `locality` and `portability` map the dataset's own key names (e.g. "Relation_Specificity",
    "Subject_Aliasing") to probes. `extras` keeps layout-specific fields (e.g. "ood_rephrase",
    "metric_kwargs", "loc_prompt") that only some protocols read.
    """

    case_id: str
    prompt: str
    subject: str
    target_new: str
    ground_truth: str | None = None
    rephrases: tuple[str, ...] = ()
    locality: Mapping[str, tuple[Probe, ...]] = field(default_factory=dict)
    portability: Mapping[str, tuple[Probe, ...]] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricValue:
    """A metric value and the protocol tag that says how it was computed.

    `protocol` names the scoring rule (e.g. "teacher_forced_token_acc"); `timing` names when the
    model was evaluated (e.g. "single_edit_restore", "after_own_edit", "after_all_T").
    """

    name: str
    value: float
    protocol: str
    timing: str = "unspecified"


@dataclass(frozen=True, kw_only=True)
class EditRecord:
    """One evaluated case: the request id, the method, and its pre- and post-edit metrics."""

    case_id: str
    method: str
    pre: tuple[MetricValue, ...] = ()
    post: tuple[MetricValue, ...] = ()
    extras: Mapping[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        """Flat dict (JSON-ready): "case_id", "method", "<stage>/<name>" values and "tag/<stage>/<name>" tags.

        A tag reads "<protocol>@<timing>"; stage is "pre" or "post".
        """
        row: dict[str, Any] = {"case_id": self.case_id, "method": self.method}
        for stage, values in (("pre", self.pre), ("post", self.post)):
            for m in values:
                row[f"{stage}/{m.name}"] = m.value
                row[f"tag/{stage}/{m.name}"] = f"{m.protocol}@{m.timing}"
        row.update({f"extra/{k}": v for k, v in self.extras.items()})
        return row
