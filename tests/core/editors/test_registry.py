"""resolve_hparams: one rule for which registered methods can run with which hparams file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.editors.ft import FTHyperParams
from core.editors.registry import MethodUnavailableError, UnknownMethodError, get_method, resolve_hparams

HPARAMS = Path(__file__).parent / "hparams"
TEMPLATE = str(HPARAMS / "{method}" / "{model}.yaml")


def test_resolve_keeps_order_and_says_why_others_are_skipped(caplog):
    with caplog.at_level(logging.WARNING):
        hps, skipped = resolve_hparams(["ROME", "NoSuchMethod", "FT-L"], TEMPLATE, "tiny-gpt2")
    assert list(hps) == ["ROME", "FT-L"] and isinstance(hps["FT-L"], FTHyperParams)
    assert list(skipped) == ["NoSuchMethod"] and "not registered" in skipped["NoSuchMethod"]
    assert "NoSuchMethod" in caplog.text
    hps, skipped = resolve_hparams(["FT-L"], TEMPLATE, "no-model")
    assert not hps and "no hparams file" in skipped["FT-L"] and "no-model.yaml" in skipped["FT-L"]


def test_resolve_strict_raises_naming_the_method_and_file(tmp_path):
    with pytest.raises(MethodUnavailableError, match="'NoSuchMethod': not registered"):
        resolve_hparams(["FT-L", "NoSuchMethod"], TEMPLATE, "tiny-gpt2", strict=True)
    (tmp_path / "MEND").mkdir()
    text = (HPARAMS / "MEND" / "tiny-gpt2.yaml").read_text().replace("archive: null", f"archive: {tmp_path / 'e.pt'}")
    (tmp_path / "MEND" / "m.yaml").write_text(text)
    template = str(tmp_path / "{method}" / "{model}.yaml")
    with pytest.raises(MethodUnavailableError, match=r"e\.pt does not exist \(from .*m\.yaml"):
        resolve_hparams(["MEND"], template, "m", strict=True)
    (tmp_path / "e.pt").write_bytes(b"")
    assert list(resolve_hparams(["MEND"], template, "m", strict=True)[0]) == ["MEND"]


def test_get_method_unknown_lists_the_known():
    with pytest.raises(UnknownMethodError, match="known methods"):
        get_method("ft-l")
