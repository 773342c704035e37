"""MEND's gradient-decomposition editor (Mitchell et al. 2022), shared by MEND and InstructEdit.

- `config`: `MENDNetConfig` (editor shape) and `MENDTrainConfig` (meta-training), strict frozen dataclasses;
- `nets`: the gradient-transform MLP with running normalisation and per-layer scale/shift (MEND §3.1);
- `mend`: edited-weight resolution from arch specs, hook-based factor capture, `MENDEditor`;
- `checkpoint`: editor-only checkpoints with a base-model fingerprint, atomic writes;
- `examples`: meta-training triples (edit, equivalence, locality) from edit requests;
- `trainer`: meta-training on plain sequences of triples (MEND Eq. 4); `train`: its command line.

`trainer` and `train` import `core.editors` (which imports this package), so they are not imported here.
"""

from core.hypernet.checkpoint import CheckpointMismatchError, load_editor, save_editor
from core.hypernet.config import MENDNetConfig, MENDTrainConfig
from core.hypernet.mend import EditedWeight, MENDEditor, build_editor, capture_factors, resolve_edited_weights

__all__ = [
    "CheckpointMismatchError",
    "EditedWeight",
    "MENDEditor",
    "MENDNetConfig",
    "MENDTrainConfig",
    "build_editor",
    "capture_factors",
    "load_editor",
    "resolve_edited_weights",
    "save_editor",
]
