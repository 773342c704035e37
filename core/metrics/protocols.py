"""Protocol tags: the name of every scoring rule a `MetricValue` can carry, each defined once.

Answers easyedit-notes §10.2 ("define each metric once, with explicit names"): a metric value is
always stored with the tag of the rule that produced it, and `core.metrics.aggregate` refuses to
average values whose tags differ. Paper equations are cited in the modules that implement them.
"""

from __future__ import annotations

TEACHER_FORCED_TOKEN_ACC = "teacher_forced_token_acc"
"""Mean over answer tokens of 1[argmax_t == label_t], teacher-forced (EasyEdit rewrite/rephrase/port.)."""

GREEDY_TOKEN_EM = "greedy_token_em"
"""1 iff the first len(target) greedily generated token ids equal the target ids (KnowEdit Eq. 10)."""

GREEDY_TOKEN_ACC = "greedy_token_acc"
"""Fraction of target positions where the greedy generation has the target token (EasyEdit's GRACE path)."""

SQUAD_STRING_EM = "squad_string_em"
"""1 iff SQuAD-normalised generated text equals the normalised reference (EasyEdit LLM-eval fallback)."""

LOC_ARGMAX_AGREEMENT = "loc_argmax_agreement"
"""Fraction of teacher-forced answer positions where pre- and post-edit argmax ids agree (EasyEdit)."""

LOC_EXACT_OUTPUT_MATCH = "loc_exact_output_match"
"""1 iff the whole post-edit output equals the whole pre-edit output (WISE Eq. 9 locality)."""

NGRAM_ENTROPY = "ngram_entropy_h2_h3"
"""(H2 + 2*H3)/3 of the word bi/tri-gram frequency distribution, in bits, averaged over texts (unscaled)."""

TARGET_PPL = "target_ppl"
"""exp(mean NLL of the target tokens given the prompt), optionally clipped (WISE hallucination Rel.)."""

OOD_DELTA_ACC = "ood_delta_acc"
"""Fraction of scored continuation positions with NLL < delta, delta = -log 0.8 (WISE Eq. 10)."""

CONVSENT_ES = "convsent_es"
"""z_sent * z_topic from token log-probs of pos/neg answers, pre and post edit (KnowEdit Eq. 12)."""

CONVSENT_KL_DRAWDOWN = "convsent_kl_drawdown"
"""Token-pooled mean KL(p_pre || p_post) on another topic's answers, pre captured before the edit (Eq. 13)."""

SANITATION_SUBSTRING_SUCCESS = "sanitation_substring_success"
"""Fraction of generations containing target_new, case-insensitive (KnowEdit Sanitation edit success)."""

SANITATION_POSITION_MATCH = "sanitation_position_match"
"""Mean over items of #{i: post_i == pre_i} / len(pre tokens), generated tokens (KnowEdit Sanitation loc.)."""

DEFINITIONS: dict[str, str] = {
    TEACHER_FORCED_TOKEN_ACC: "mean_t 1[argmax_t == label_t] over teacher-forced answer tokens",
    GREEDY_TOKEN_EM: "1[greedy ids[:len(target)] == target ids]",
    GREEDY_TOKEN_ACC: "mean_t 1[greedy id_t == target id_t] over target positions",
    SQUAD_STRING_EM: "1[normalize(generated) == normalize(reference)], SQuAD normalisation",
    LOC_ARGMAX_AGREEMENT: "mean_t 1[argmax_pre_t == argmax_post_t] over teacher-forced answer tokens",
    LOC_EXACT_OUTPUT_MATCH: "1[post output == pre output] for the whole output",
    NGRAM_ENTROPY: "mean over texts of (H2 + 2*H3)/3, H_n = -sum f log2 f over word n-grams; tables use x100",
    TARGET_PPL: "exp(-mean_t log p(target_t | prefix)), min(., clip) when clip is set",
    OOD_DELTA_ACC: "mean_t 1[-log p_t < -log 0.8] over the given continuation positions",
    CONVSENT_ES: "sigmoid(mean lp_post(pos) - mean lp_post(neg))"
    " * min(1, exp(mean lp_post(pos) - mean lp_pre(pos)))",
    CONVSENT_KL_DRAWDOWN: "sum_t KL(p_pre,t || p_post,t) / #tokens over other-topic answer tokens",
    SANITATION_SUBSTRING_SUCCESS: "mean_i 1[target_new.lower() in generation_i.lower()]",
    SANITATION_POSITION_MATCH: "mean_i #{j < min(len): post_ij == pre_ij} / len(pre_i)",
}
