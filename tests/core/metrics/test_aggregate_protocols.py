"""Protocol-checked means, KnowEdit's nested mean, and the protocol-tag table."""

from __future__ import annotations

import pytest

from core.metrics import ProtocolMismatchError, knowedit_nested_mean, mean_metric
from core.metrics import protocols as P
from core.types import MetricValue


def acc(v: float, timing: str = "single_edit_restore") -> MetricValue:
    return MetricValue("port", v, P.TEACHER_FORCED_TOKEN_ACC, timing)


def test_mean_metric():
    mv = mean_metric([acc(1.0), acc(0.0), acc(0.5)], name="portability")
    assert (mv.name, mv.value, mv.protocol, mv.timing) == (
        "portability",
        0.5,
        P.TEACHER_FORCED_TOKEN_ACC,
        "single_edit_restore",
    )


def test_mean_metric_refuses_mixed_protocols_and_timings():
    other = MetricValue("port", 1.0, P.GREEDY_TOKEN_EM, "single_edit_restore")
    with pytest.raises(ProtocolMismatchError):
        mean_metric([acc(1.0), other])
    with pytest.raises(ProtocolMismatchError):
        mean_metric([acc(1.0), acc(0.0, "after_all_T")])
    assert mean_metric([acc(1.0), acc(0.0, "after_all_T")], check_timing=False).timing == "mixed"
    with pytest.raises(ValueError):
        mean_metric([])


def test_knowedit_nested_mean():
    cases = [
        {"Subject_Aliasing": [acc(1.0), acc(0.0)], "Logical_Generalization": [acc(1.0)]},  # (.5 + 1)/2 = .75
        {"Subject_Aliasing": [acc(0.0)]},  # 0
        {},  # skipped, as the reference skips cases without the key family
    ]
    mv = knowedit_nested_mean(cases, name="portability")
    assert mv.value == pytest.approx(0.375)  # a flat mean of the four values would give 0.5
    assert (mv.name, mv.protocol) == ("portability", P.TEACHER_FORCED_TOKEN_ACC)
    with pytest.raises(ValueError):
        knowedit_nested_mean([{}, {"k": []}])
    with pytest.raises(ProtocolMismatchError):
        knowedit_nested_mean([{"a": [acc(1.0)]}, {"a": [MetricValue("port", 1.0, P.GREEDY_TOKEN_EM)]}])


def test_protocol_tags_are_unique_and_defined():
    tags = [v for k, v in vars(P).items() if k.isupper() and isinstance(v, str)]
    assert len(tags) == len(set(tags)) == len(P.DEFINITIONS)
    assert set(tags) == set(P.DEFINITIONS)
    assert all(P.DEFINITIONS[t] for t in tags)
