"""Models: loading (`load_model`), architecture adapters as data (`ArchSpec`), world LMs and tiny test models.

* `arch`: module-name templates, Conv1D flag and tokenizer policy per `config.model_type`; the
  (d_out, d_in) weight-view convention every editor uses.
* `loading`: `load_model(name_or_path, dtype, device)` -> (model in eval mode, tokenizer with policy).
* `inputs`: padded batches whose position ids ignore padding.
* `tokenizer`: byte-level BPE trained in code; `configs`: fresh configs of each architecture.
* `training`, `pretrain_config`, `pretrain`: world-LM pretraining (CLI `python -m core.models.pretrain`).
* `recall`: batched greedy recall per probe kind; `tiny`: 2-layer models of every architecture for tests.
"""

from core.models.arch import ARCHS, ArchSpec, UnsupportedArchitectureError, get_arch, get_module, weight_view
from core.models.inputs import encode_batch
from core.models.loading import load_model
from core.models.recall import recall_by_kind

__all__ = [
    "ARCHS",
    "ArchSpec",
    "UnsupportedArchitectureError",
    "encode_batch",
    "get_arch",
    "get_module",
    "load_model",
    "recall_by_kind",
    "weight_view",
]
