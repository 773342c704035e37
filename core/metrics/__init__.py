"""Pure metric functions: ids, tensors, log-probs or strings in, `MetricValue`s with protocol tags out.

No model runs here; `core.eval.scoring` produces the inputs. One module per family: `accuracy`
(teacher-forced token accuracy, greedy and SQuAD exact match), `locality` (pre/post agreement),
`fluency` (n-gram entropy), `perplexity` (PPL, WISE delta-accuracy), `convsent`, `sanitation`,
`aggregate` (protocol-checked means); the tags live in `protocols`.
"""

from core.metrics.accuracy import (
    greedy_token_acc,
    greedy_token_exact_match,
    squad_exact_match,
    squad_normalize,
    teacher_forced_token_acc,
)
from core.metrics.aggregate import ProtocolMismatchError, knowedit_nested_mean, mean_metric
from core.metrics.convsent import convsent_edit_success, kl_drawdown
from core.metrics.fluency import ngram_fluency, split_words, text_fluency
from core.metrics.locality import argmax_agreement, exact_output_match
from core.metrics.perplexity import DELTA, delta_accuracy, target_perplexity
from core.metrics.sanitation import DONT_KNOW, position_match, sanitation_locality, sanitation_success

__all__ = [
    "DELTA",
    "DONT_KNOW",
    "ProtocolMismatchError",
    "argmax_agreement",
    "convsent_edit_success",
    "delta_accuracy",
    "exact_output_match",
    "greedy_token_acc",
    "greedy_token_exact_match",
    "kl_drawdown",
    "knowedit_nested_mean",
    "mean_metric",
    "ngram_fluency",
    "position_match",
    "sanitation_locality",
    "sanitation_success",
    "split_words",
    "squad_exact_match",
    "squad_normalize",
    "target_perplexity",
    "teacher_forced_token_acc",
    "text_fluency",
]
