"""The final evaluation: the variants, the rounds and their process pool, the typed result, its
text and HTML renderings, and publishing it with the model file."""

from search.evaluation.evaluate import DEFAULT_ENSEMBLE, EvalRequest, evaluate
from search.evaluation.publish import publish
from search.evaluation.rounds import TEST_PAIRS, round_seed
from search.evaluation.text import text_report

__all__ = [
    "DEFAULT_ENSEMBLE",
    "TEST_PAIRS",
    "EvalRequest",
    "evaluate",
    "publish",
    "round_seed",
    "text_report",
]
