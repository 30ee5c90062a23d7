"""--max-params: configurations over the budget are never trained, raced or selected; the
default is shrunk to the budget (the shrunk default); the final evaluation stays within it and shows
accuracy against size."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from models import Config, parameter_count
from search.evaluation.ablation import DEFAULT, SELECTION, variants
from search.study import default_in_budget, queued_defaults, race_of, smallest_params
from search.study.budget import shrunk
from search.study.racing import OVER_BUDGET_DRAWS, RACE_OF
from search.study.tradeoff import Point, front, smallest_near_best
from tests.helpers import assert_one_line_error, load_study, run_cli

BUDGET = 40_000
SEARCH = ["--trials", "12", "--workers", "1", "--epochs", "2", "--train-pairs", "100",
          "--val-pairs", "50", "--finalists", "2", "--race-seeds", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def budget_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    cwd = tmp_path_factory.mktemp("budget")
    r = run_cli("search.run", *SEARCH, "--study", "small", "--max-params", str(BUDGET), cwd=cwd)
    assert r.returncode == 0, r.stderr
    return cwd, r.stdout


def small_study(cwd: Path) -> optuna.Study:
    return load_study(f"sqlite:///{cwd}/studies/small.db", "small")


def test_over_the_budget_is_recorded_with_its_constraint_and_never_trained(
    budget_study: tuple[Path, str],
) -> None:
    cwd, out = budget_study
    study = small_study(cwd)
    assert study.user_attrs["max_params"] == BUDGET
    search = [t for t in study.get_trials() if RACE_OF not in t.user_attrs]
    over = [t for t in search if t.user_attrs["n_params"] > BUDGET]
    assert over, "seed 0's first random draws include nets over 40,000 parameters"
    # --trials counts the configurations trained: the ones over the budget come on top
    assert len(search) - len(over) == 12 and len(search) == 12 + len(over)
    for t in search:
        n = t.user_attrs["n_params"]
        assert t.constraints == {"params": n - BUDGET}  # what TPE reads
        assert t.user_attrs["over_budget"] == n - BUDGET  # what the dashboard shows
    for t in over:
        assert t.state == TrialState.PRUNED
        assert not t.intermediate_values and "seconds_per_epoch" not in t.user_attrs
    assert f"parameter budget          {BUDGET:,} ({len(over)} over it, never trained)" in out


def test_baselines_and_the_race_stay_within_the_budget(budget_study: tuple[Path, str]) -> None:
    cwd, out = budget_study
    study = small_study(cwd)
    trials = study.get_trials()
    baselines = [t for t in trials if t.user_attrs.get("queued_default")]
    assert len(baselines) == 3
    assert all(t.user_attrs["n_params"] <= BUDGET for t in baselines)
    race = race_of(study)
    assert race is not None and race.complete and race.selection is not None
    raced = [trials[s.trial] for s in race.standings]
    assert all(t.state == TrialState.COMPLETE and t.user_attrs["n_params"] <= BUDGET for t in raced)
    fitted = default_in_budget(BUDGET)
    assert fitted is not None and fitted.config != Config()  # the default is 94,186
    (default,) = [s for s in race.standings if s.is_default]
    assert trials[default.trial].params == fitted.recorded
    assert f"the default is {fitted.why}" in out


def test_final_eval_stays_within_the_budget_and_shows_the_front(
    budget_study: tuple[Path, str],
) -> None:
    cwd, _ = budget_study
    r = run_cli("search.final_eval", "--study", "small", "--rounds", "2", cwd=cwd)
    assert r.returncode == 0, r.stderr
    result = json.loads((cwd / "studies/small/final_eval.json").read_text())
    assert result["max_params"] == BUDGET
    assert result["config"]["ensemble"] == 1  # the model kept is within the budget
    assert result["model"]["parameters"] <= BUDGET and result["model"]["nets"] == 1
    fitted = default_in_budget(BUDGET)
    assert fitted is not None
    # the shrunk default is trained alike, unless it is the selection (then the gain is 0)
    default_variant = result["variants"].get(DEFAULT, result["variants"][SELECTION])
    assert default_variant == fitted.config.to_dict() | {"epochs": 2}
    selection = result["model"]["parameters"]
    for name, config in result["variants"].items():
        if name not in (SELECTION, DEFAULT):  # the ablation, at the selection's size
            assert parameter_count(Config(**config)) <= selection, name
    study = small_study(cwd)
    complete = [
        t
        for t in study.get_trials()
        if t.state == TrialState.COMPLETE and RACE_OF not in t.user_attrs
    ]
    tradeoff = result["tradeoff"]
    assert sorted(p["trial"] for p in tradeoff["points"]) == sorted(t.number for t in complete)
    assert all(p["feasible"] and p["params"] <= BUDGET for p in tradeoff["points"])
    expected = front([Point(**p) for p in tradeoff["points"]])
    assert tradeoff["front"] == [p.trial for p in expected] and expected
    page = (cwd / "studies/small/final_eval.html").read_text()
    assert "Accuracy against size" in page
    for p in expected:
        assert f"<tr><td>#{p.trial}</td><td>{p.params:,}</td>" in page
    assert f"parameter budget {BUDGET:,}" in r.stdout and fitted.name in r.stdout


def test_a_trial_or_an_ensemble_over_the_budget_is_refused(budget_study: tuple[Path, str]) -> None:
    cwd, _ = budget_study
    study = small_study(cwd)
    over = next(t for t in study.get_trials() if t.user_attrs["n_params"] > BUDGET)
    r = run_cli("search.final_eval", "--study", "small", "--trial", str(over.number), cwd=cwd)
    assert_one_line_error(r, f"trial {over.number} has", f"over the budget of {BUDGET:,}")
    r = run_cli("search.final_eval", "--study", "small", "--ensemble", "10", cwd=cwd)
    assert_one_line_error(r, "--ensemble 10 makes a model of 10 x", "net(s) fit")


def test_the_budget_is_the_studys(budget_study: tuple[Path, str]) -> None:
    cwd, _ = budget_study
    r = run_cli("search.run", "--study", "small", "--trials", "12", "--max-params", "50000",
                cwd=cwd)  # fmt: skip
    assert_one_line_error(r, f"was created with --max-params {BUDGET}, not 50000")
    # "none" is a budget too (no budget): a change of the study's, refused alike
    r = run_cli("search.run", "--study", "small", "--trials", "12", "--max-params", "none",
                cwd=cwd)  # fmt: skip
    assert_one_line_error(r, f"was created with --max-params {BUDGET}, not none")
    r = run_cli("search.run", "--study", "small", "--trials", "12", "--workers", "1", cwd=cwd)
    assert r.returncode == 0 and "parameter budget" in r.stdout, r.stderr


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("0", "expected a positive integer, got 0"),
        ("-5", "expected a positive integer, got -5"),
        ("many", "expected a positive integer, got 'many'"),
        ("100", f"no configuration of the search space fits 100 parameters (the smallest has "
                f"{smallest_params():,})"),
    ],
)  # fmt: skip
def test_bad_budgets_end_in_argparses_one_line_before_any_work(
    value: str, needle: str, tmp_path: Path
) -> None:
    r = run_cli("search.run", "--max-params", value, cwd=tmp_path)
    assert_one_line_error(r, "argument --max-params", needle)
    assert not (tmp_path / "studies").exists()


def test_shrinking_fits_the_budget_or_says_it_cannot() -> None:
    for budget in (smallest_params(), 10_000, 70_000, 200_000):
        for config in queued_defaults(budget):
            assert parameter_count(config) <= budget
    fitted = shrunk(Config(), 70_000)
    assert fitted is not None and parameter_count(fitted) <= 70_000
    assert fitted.nb_filters < Config.nb_filters and fitted.hidden_units < Config.hidden_units
    assert shrunk(Config(conv_layers=3, kernel_size=5), smallest_params()) is None
    assert shrunk(Config(), 10**6) == Config()  # what fits is left alone


def test_the_ablation_is_judged_at_the_selections_size() -> None:
    selection = Config(nb_filters=16, hidden_units=64)
    size = parameter_count(selection)
    out = variants(selection, ablation=True, default=shrunk(Config(), 50_000), size=size)
    assert out["siamese ws=off aux=on"].weight_sharing is False
    assert all(parameter_count(c) <= size for name, c in out.items() if name != DEFAULT)
    unbounded = variants(selection, ablation=True)
    assert parameter_count(unbounded["siamese ws=off aux=on"]) > size  # two branches


def test_the_front_and_the_smallest_near_the_best() -> None:
    found = [Point(0, 0.95, 5_000, True), Point(1, 0.97, 20_000, True),
             Point(2, 0.96, 30_000, True), Point(3, 0.971, 60_000, True),
             Point(4, 0.94, 5_000, True)]  # fmt: skip
    assert [p.trial for p in front(found)] == [0, 1, 3]
    near = smallest_near_best(found)
    assert near is not None and near.trial == 1  # within 0.2 point of 0.971, and smallest


def test_a_budget_nothing_fits_in_practice_ends_in_failure_with_its_reason(
    tmp_path: Path,
) -> None:
    # The smallest net's budget from a cold start: the sampler's draws are all over it, so no
    # trial completes and there is nothing to race: exit 1, saying why, not "done".
    r = run_cli("search.run", "--trials", "3", "--workers", "1", "--cold-start",
                "--max-params", str(smallest_params()), "--epochs", "1", "--train-pairs", "100",
                "--val-pairs", "50", cwd=tmp_path)  # fmt: skip
    study = load_study(f"sqlite:///{tmp_path}/studies/digit-pairs.db", "digit-pairs")
    if any(t.state == TrialState.COMPLETE for t in study.trials):
        pytest.skip("a draw fitted the smallest budget")
    assert r.returncode == 1, r.stderr
    assert "no search trial completed, so there is nothing to select or race" in r.stderr
    # The draws over the budget do not count toward --trials until there are
    # OVER_BUDGET_DRAWS per trial asked for; then they do, and the search ends.
    assert len(study.trials) == 3 + OVER_BUDGET_DRAWS * 3
    assert "33 of them over the budget" in r.stderr and "raise --max-params" in r.stderr
