"""Fixtures for the MEND hypernetwork tests: tiny models, a small net config, training triples."""

from __future__ import annotations

import dataclasses

from core.hypernet.config import MENDNetConfig, MENDTrainConfig
from tests.core.editors.conftest import arch, make_request, tiny  # noqa: F401 (fixtures shared with the editor tests)

NET = MENDNetConfig(layers=(0, 1), inner_modules=None, rank=16, n_hidden=1, combine=True, norm=True, shared=True,
                    edit_lr=1.0)  # fmt: skip

TRAIN = MENDTrainConfig(
    **{**NET.net_dict(), "edit_lr": 1e-3}, lr=1e-3, lr_lr=1e-3, c_edit=0.1, c_loc=1.0, edit_loss_on="rephrase", batch_size=1,
    accumulate=1, loc_source="dataset", grad_clip=100.0, max_steps=8, val_every=4, val_size=3, early_stop_key="loss_total",
    patience=100, seed=0,
)  # fmt: skip


def train_config(**changes) -> MENDTrainConfig:
    return dataclasses.replace(TRAIN, **changes)


def requests(lo: int, hi: int):
    return [make_request(i) for i in range(lo, hi)]

