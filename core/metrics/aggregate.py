"""Aggregation of `MetricValue`s: a protocol-checked mean and KnowEdit's nested mean.

- `mean_metric` refuses to average values with different protocol tags or timings (EasyEdit only
  warns on mixed protocols, easyedit-notes §1/§10.2).
- `knowedit_nested_mean` reproduces the KnowEdit summary (easyedit-notes §2.3, §3.1): mean over the
  probes within a key (e.g. "Subject_Aliasing"), then over the keys of a case, then over cases. Cases
  with no keys are skipped, as the reference script skips cases without portability/locality.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from core.types import MetricValue


class ProtocolMismatchError(ValueError):
    """Values computed by different protocols (or at different timings) were to be averaged."""


def mean_metric(
    values: Iterable[MetricValue], *, name: str | None = None, check_timing: bool = True
) -> MetricValue:
    """Arithmetic mean of `values`, which must share one protocol tag (and one timing unless told otherwise).

    The result keeps the shared protocol and timing; its name is `name` or the first value's name.
    With `check_timing=False` and mixed timings the result's timing is "mixed".
    """
    vals = list(values)
    if not vals:
        raise ValueError("no values to average")
    protocols = {v.protocol for v in vals}
    if len(protocols) > 1:
        raise ProtocolMismatchError(f"refusing to average different protocols: {sorted(protocols)}")
    timings = {v.timing for v in vals}
    if check_timing and len(timings) > 1:
        raise ProtocolMismatchError(f"refusing to average different timings: {sorted(timings)}")
    timing = vals[0].timing if len(timings) == 1 else "mixed"
    mean = sum(v.value for v in vals) / len(vals)
    return MetricValue(name or vals[0].name, mean, vals[0].protocol, timing)


def knowedit_nested_mean(
    cases: Sequence[Mapping[str, Sequence[MetricValue]]], *, name: str | None = None
) -> MetricValue:
    """Mean over cases of (mean over keys of (mean over probes)); all values share one protocol and timing."""
    per_case = []
    for case in cases:
        per_key = [mean_metric(probes) for probes in case.values() if probes]
        if per_key:
            per_case.append(mean_metric(per_key))
    if not per_case:
        raise ValueError("no case has any probe")
    return mean_metric(per_case, name=name)
