"""The final evaluation: the variants, the rounds and their process pool, the typed result, its
text and HTML renderings, and publishing it with the model file."""

from search.evaluation.ablation import (
    DEFAULT,
    DEFAULT_ONE_NET,
    ONE_NET,
    SELECTED,
    first_nets,
    variants,
)
from search.evaluation.evaluate import DEFAULT_ENSEMBLE, EvalRequest, Evaluation, evaluate
from search.evaluation.publish import publish
from search.evaluation.result import (
    EvalResult,
    ModelFile,
    ensemble_gain,
    gain_over_default,
    one_net_gain,
    summarize_variants,
)
from search.evaluation.rounds import TEST_PAIRS, Job, evaluate_rounds, jobs_for, round_seed
from search.evaluation.stats import Summary, paired, summarize
from search.evaluation.text import tables

__all__ = [
    "DEFAULT",
    "DEFAULT_ENSEMBLE",
    "DEFAULT_ONE_NET",
    "ONE_NET",
    "SELECTED",
    "TEST_PAIRS",
    "EvalRequest",
    "EvalResult",
    "Evaluation",
    "Job",
    "ModelFile",
    "Summary",
    "ensemble_gain",
    "evaluate",
    "evaluate_rounds",
    "first_nets",
    "gain_over_default",
    "jobs_for",
    "one_net_gain",
    "paired",
    "publish",
    "round_seed",
    "summarize",
    "summarize_variants",
    "tables",
    "variants",
]
