from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from search.study.strategies import (
    AT_RANDOM,
    Explore,
    make_pruner,
    make_sampler,
    mark_drawn_at_random,
    random_share,
    spares_draws,
    warmup_epochs,
)
from tests.helpers import load_study, run_cli


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
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(direction="maximize", storage=storage)
    study_id = storage.get_study_id_from_name(study.study_name)
    decisions = []
    for _ in range(12):
        trial = study.ask()
        curve = np.cumsum(rng.uniform(0.0, 0.1, size=8))
        for step, value in enumerate(curve, start=1):
            trial.report(float(value), step)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            frozen = storage.get_trial(trial_id)
            decisions.append(ours.prune(study, frozen))
            assert decisions[-1] == optunas.prune(study, frozen)
        study.tell(trial, float(curve[-1]))
    assert any(decisions) and not all(decisions)  # both kinds of decision were compared


def test_the_pruner_reads_the_completed_trials_once_per_trial() -> None:
    """Trials that complete while a trial runs count for the next trial, not for it: the
    completed trials are read at a trial's first epoch past the warm-up."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = make_pruner("percentile", epochs=20)
    optunas = optuna.pruners.PercentilePruner(
        25.0, n_startup_trials=5, n_warmup_steps=warmup_epochs(20)
    )
    study = optuna.create_study(direction="maximize")
    first_check = warmup_epochs(20)

    def completed(value: float) -> None:
        trial = study.ask()
        for step in range(1, 21):
            trial.report(value, step)
        study.tell(trial, value)

    def report(trial: optuna.Trial, value: float, step: int) -> optuna.trial.FrozenTrial:
        trial.report(value, step)
        return study.get_trials(deepcopy=False)[trial.number]

    for _ in range(5):
        completed(0.5)
    running = study.ask()
    for step in range(1, first_check + 1):
        frozen = report(running, 0.6, step)
    assert not ours.prune(study, frozen) and not optunas.prune(study, frozen)
    for _ in range(10):  # better trials complete meanwhile
        completed(0.9)
    frozen = report(running, 0.6, first_check + 1)
    assert optunas.prune(study, frozen)  # Optuna reads them at once
    assert not ours.prune(study, frozen)  # the running trial keeps its view
    new = study.ask()
    for step in range(1, first_check + 1):
        frozen = report(new, 0.6, step)
    assert ours.prune(study, frozen)  # the next trial sees them


@pytest.mark.parametrize("name", ["percentile", "median"])
def test_a_spared_draw_at_random_trains_in_full(name: str) -> None:
    """With spare_drawn_at_random, a trial drawn at random is kept at every epoch where the
    same trial not drawn at random is pruned; without it, both are pruned."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for _ in range(6):
        done = study.ask()
        for step in range(1, 21):
            done.report(0.9, step)
        study.tell(done, 0.9)
    drawn, plain = study.ask(), study.ask()
    drawn.set_user_attr(AT_RANDOM, True)
    sparing = make_pruner(name, epochs=20, spare_drawn_at_random=True)
    usual = make_pruner(name, epochs=20)
    for step in range(warmup_epochs(20) + 1, 21):
        drawn.report(0.5, step)
        plain.report(0.5, step)
        frozen_drawn, frozen_plain = (
            study.get_trials(deepcopy=False)[t.number] for t in (drawn, plain)
        )
        assert frozen_drawn.user_attrs[AT_RANDOM]
        assert not sparing.prune(study, frozen_drawn)
        assert sparing.prune(study, frozen_plain)
        assert usual.prune(study, frozen_drawn)


def test_only_the_percentile_and_median_pruners_spare_draws() -> None:
    with pytest.raises(ValueError, match="--spare-random-draws needs"):
        make_pruner("hyperband", epochs=20, spare_drawn_at_random=True)


def test_a_share_drawn_at_random_is_the_model_samplers_alone() -> None:
    assert random_share(None, cold_start=True, sampler="tpe") == 0.2
    assert random_share(None, cold_start=False, sampler="gp") == 0.0
    assert random_share(0.3, cold_start=False, sampler="tpe") == 0.3
    assert random_share(None, cold_start=True, sampler="qmc") == 0.0  # no model to draw beside
    assert random_share(None, cold_start=True, sampler="random") == 0.0


def test_draws_at_random_are_spared_by_default_where_the_pruner_can() -> None:
    assert spares_draws(None, share=0.2, pruner="percentile")
    assert spares_draws(None, share=0.2, pruner="median")
    assert not spares_draws(None, share=0.0, pruner="percentile")  # nothing drawn at random
    assert not spares_draws(None, share=0.2, pruner="hyperband")
    assert not spares_draws(False, share=0.2, pruner="percentile")
    assert spares_draws(True, share=0.0, pruner="percentile")


def lopsided(trial: optuna.Trial) -> float:
    """A space where one choice is far ahead from the first draws: a model settles on it."""
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    x = trial.suggest_float("x", 0.0, 1.0)
    return {"a": 1.0, "b": 0.5, "c": 0.0}[kind] + 0.1 * x


def searched(sampler: optuna.samplers.BaseSampler, trials: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    searched_on(study, trials)
    return study


def searched_on(study: optuna.Study, trials: int) -> list[optuna.trial.FrozenTrial]:
    """`trials` more trials of `study`, as the objective runs them."""
    out = []
    for _ in range(trials):
        trial = study.ask()
        mark_drawn_at_random(trial)  # as the objective does
        out.append(study.tell(trial, lopsided(trial)))
    return out


def test_a_random_share_keeps_trying_what_the_model_wrote_off() -> None:
    plain = searched(make_sampler("tpe", seed=3, parallel=False), 100).trials
    assert not any(t.user_attrs for t in plain)
    assert [t.params["kind"] for t in plain[10:]].count("a") >= 0.6 * 90  # TPE leans on "a"
    sampler = make_sampler("tpe", seed=3, parallel=False, trials=100, random_share=0.3)
    trials = searched(sampler, 100).trials
    at_random = [t for t in trials if t.user_attrs.get(AT_RANDOM)]
    by_model = [t for t in trials[30:] if not t.user_attrs.get(AT_RANDOM)]
    # the start-up is 0.3 x 100 = 30 trials, then about 0.3 of the other 70 at random
    assert 10 <= len(at_random) <= 35
    random_kinds = [t.params["kind"] for t in at_random]
    assert {"b", "c"} <= set(random_kinds)  # drawn at random: every kind
    share_a = random_kinds.count("a") / len(random_kinds)
    assert share_a < 0.6 <= [t.params["kind"] for t in by_model].count("a") / len(by_model)
    # new draws, not the start-up's again (x is continuous: a repeat is a replayed stream)
    xs = [t.params["x"] for t in trials]
    assert len(set(xs)) == len(xs)


def test_a_draw_of_the_structure_takes_the_training_settings_from_the_model() -> None:
    # "kind" is the structure, x a training setting the model learns to set high
    sampler = make_sampler(
        "tpe", seed=3, parallel=False, trials=100, random_share=0.3, structure={"kind"}
    )
    assert isinstance(sampler, Explore)
    assert isinstance(sampler.model, optuna.samplers.TPESampler)
    assert sampler.model._n_startup_trials == 10  # wholly at random: only Optuna's first 10
    trials = searched(sampler, 100).trials
    # the first 0.3 x 100 = 30 are drawn at random, then about 0.3 of the other 70
    assert all(t.user_attrs.get(AT_RANDOM) for t in trials[:30])
    later = [t for t in trials[30:] if t.user_attrs.get(AT_RANDOM)]
    assert 10 <= len(later) <= 35
    assert {"b", "c"} <= {t.params["kind"] for t in later}  # the structure: at random
    whole = make_sampler("tpe", seed=3, parallel=False, trials=100, random_share=0.3)
    whole_later = [t for t in searched(whole, 100).trials[30:] if t.user_attrs.get(AT_RANDOM)]

    def mean_x(ts: list[optuna.trial.FrozenTrial]) -> float:
        return float(np.mean([t.params["x"] for t in ts]))

    # x from the model, which learnt that a high x is better; drawn whole, x is uniform
    assert mean_x(later) > 0.7 and mean_x(later) - mean_x(whole_later) > 0.15


def test_a_queued_trial_is_not_said_to_be_drawn_at_random() -> None:
    # a race re-runs finalists as queued trials: their parameters were never drawn
    sampler = make_sampler("tpe", seed=0, parallel=False, trials=20, random_share=0.9)
    study = searched(sampler, 20)
    for _ in range(10):
        study.enqueue_trial(study.trials[0].params)
    queued = searched_on(study, 10)
    assert not any(t.user_attrs.get(AT_RANDOM) for t in queued)
    assert sum(bool(t.user_attrs.get(AT_RANDOM)) for t in searched_on(study, 10)) >= 5


def test_the_start_up_is_sized_to_the_trials() -> None:
    sampler = make_sampler("tpe", seed=0, parallel=False, trials=200, random_share=0.2)
    assert isinstance(sampler, Explore) and sampler.model._n_startup_trials == 40
    plain = make_sampler("tpe", seed=0, parallel=False, trials=200)
    assert isinstance(plain, optuna.samplers.TPESampler) and plain._n_startup_trials == 10


def cold_search(cwd: Path, *flags: str) -> tuple[str, list[optuna.trial.FrozenTrial]]:
    """A small cold search by the real CLI in `cwd`: its output and its trials drawn at random."""
    cwd.mkdir()
    r = run_cli("search.run", "--trials", "16", "--workers", "1", "--study", "spare",
                "--cold-start", *flags, "--epochs", "4", "--train-pairs", "100",
                "--val-pairs", "50", "--finalists", "0", cwd=cwd)  # fmt: skip
    assert r.returncode == 0, r.stderr
    trials = load_study(f"sqlite:///{cwd}/studies/spare.db", "spare").get_trials()
    drawn = [t for t in trials if t.user_attrs.get(AT_RANDOM)]
    assert len(drawn) >= 10  # the first 10 at least
    return r.stdout, drawn


def test_a_cold_search_spares_its_draws_at_random(tmp_path: Path) -> None:
    """The real CLI, cold, every option at its default: every trial drawn at random trains in
    full. With --no-spare-random-draws the same search prunes some of them."""
    said, drawn = cold_search(tmp_path / "default")
    assert "20% of the search drawn at random (the structure), never pruned" in said
    assert all(t.state == TrialState.COMPLETE and len(t.intermediate_values) == 4 for t in drawn)
    said, drawn = cold_search(tmp_path / "off", "--no-spare-random-draws")
    assert "never pruned" not in said
    assert any(t.state == TrialState.PRUNED for t in drawn)
