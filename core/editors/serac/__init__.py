"""SERAC (Mitchell et al. 2022, "Memory-Based Model Editing at Scale"): edit memory, scope classifier and
counterfactual model, routed around an unchanged base model.

- `editor`: `SERACHyperParams` and `apply_serac` (the registry's edit function);
- `router`: the forward hooks that route in-scope rows to the counterfactual model;
- `archive`: the trained archive (save / load / tokenizer fingerprint); `tiny`: the in-code test archive;
- `classifier`, `cf_model`, `data`, `train`: the two trained parts and their training recipe;
  `pipeline`: file-level training (`train_serac`, the registry's `Method.train`; CLI
  `python -m core.editors.serac_train`). The edit memory itself is `core.memory.edit_memory`.
"""

from core.editors.serac.editor import SERACHyperParams, apply_serac
from core.editors.serac.pipeline import train_serac

__all__ = ["SERACHyperParams", "apply_serac", "train_serac"]
