"""Knowledge location: ROME's causal tracing and KnowEdit's RSim layer overlap (KnowEdit §5).

`trace_fact` / `severed_trace` trace one fact (`causal_trace`), `average_indirect_effect` averages traces
over ROME's token classes (`token_classes`), `rsim` measures how much the located layers of related
facts overlap (`rsim`). The batched patching engine is `patching` (private hooks, no shared state).
"""

from core.locate.causal_trace import (
    TraceResult,
    default_window,
    encode_trace_input,
    severed_trace,
    subject_embedding_std,
    trace_fact,
)
from core.locate.rsim import jaccard, layer_scores, mean_rsim_curve, rsim, rsim_curve, top_k_layers
from core.locate.token_classes import (
    TOKEN_CLASSES,
    AverageTrace,
    average_indirect_effect,
    token_class_positions,
)

__all__ = [
    "TOKEN_CLASSES",
    "AverageTrace",
    "TraceResult",
    "average_indirect_effect",
    "default_window",
    "encode_trace_input",
    "jaccard",
    "layer_scores",
    "mean_rsim_curve",
    "rsim",
    "rsim_curve",
    "severed_trace",
    "subject_embedding_std",
    "token_class_positions",
    "top_k_layers",
    "trace_fact",
]
