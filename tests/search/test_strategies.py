from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.samplers._tpe import _truncnorm

from search.space import suggest_config
from search.strategies import make_pruner, make_sampler, warmup_epochs


def optuna_log_ndtr(a: np.ndarray) -> np.ndarray:
    """Optuna's own element-by-element log of the normal CDF, which make_sampler replaces."""
    return np.frompyfunc(_truncnorm._log_ndtr_single, 1, 1)(a).astype(float)


def searched_params(sampler: optuna.samplers.BaseSampler) -> list[dict[str, object]]:
    """The project's search space on a toy objective that favours one region of it."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(40):
        trial = study.ask()
        config = suggest_config(trial, epochs=1)
        study.tell(trial, -abs(np.log10(config.lr) + 2.5) - config.dropout + config.alpha)
    return [t.params for t in study.trials]


def test_tpe_with_the_vectorised_log_cdf_samples_what_optunas_own_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fast = searched_params(make_sampler("tpe", seed=5, parallel=False))
    own_sampler = make_sampler("tpe", seed=5, parallel=False)
    monkeypatch.setattr(_truncnorm, "_log_ndtr", optuna_log_ndtr)
    own = searched_params(own_sampler)
    # The two functions differ by at most 6e-8 relative, so draws may differ in the last bits.
    assert len(fast) == len(own) == 40
    for a, b in zip(fast, own, strict=True):
        assert a.keys() == b.keys()
        for name, value in a.items():
            if isinstance(value, float):
                assert value == pytest.approx(b[name], rel=1e-9)
            else:
                assert value == b[name]


def test_the_vectorised_log_cdf_matches_optunas_where_tpe_evaluates_it() -> None:
    make_sampler("tpe", seed=0, parallel=False)
    x = np.concatenate([np.linspace(-40.0, 40.0, 8001), [-np.inf, np.inf]])
    np.testing.assert_allclose(_truncnorm._log_ndtr(x), optuna_log_ndtr(x), rtol=1e-7, atol=1e-300)


@pytest.mark.parametrize(
    ("name", "optunas_class"),
    [("percentile", optuna.pruners.PercentilePruner), ("median", optuna.pruners.MedianPruner)],
)
def test_the_pruner_decides_as_optunas(name: str, optunas_class: type) -> None:
    """Every decision, epoch by epoch, across start-up, warm-up and after, is Optuna's."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = make_pruner(name, epochs=20)
    settings = {"n_startup_trials": 5, "n_warmup_steps": warmup_epochs(20)}
    optunas = optunas_class(25.0, **settings) if name == "percentile" else optunas_class(**settings)
    rng = np.random.default_rng(0)
    study = optuna.create_study(direction="maximize")
    decisions = []
    for _ in range(12):
        trial = study.ask()
        curve = np.cumsum(rng.uniform(0.0, 0.1, size=8))
        for step, value in enumerate(curve, start=1):
            trial.report(float(value), step)
            frozen = study._storage.get_trial(trial._trial_id)
            decisions.append(ours.prune(study, frozen))
            assert decisions[-1] == optunas.prune(study, frozen)
        study.tell(trial, float(curve[-1]))
    assert any(decisions) and not all(decisions)  # both kinds of decision were compared
