from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note

from data.fetch import cache_dir
from tests.helpers import TINY, assert_one_line_error, load_study, run_cli, write_mnist
from tests.search.conftest import copy_study

ROUNDS = ["--rounds", "3", "--workers", "2"]


def test_final_eval_writes_report_json_and_attaches_to_the_study(
    tiny_study: Path, tmp_path: Path
) -> None:
    cwd = copy_study(tiny_study, tmp_path)
    r = run_cli("search.final_eval", "--study", "tiny", *ROUNDS, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert "test acc %" in r.stdout and "selection" in r.stdout and "mlp" in r.stdout
    assert "interrupted" not in r.stderr  # the round processes end on their own

    result = json.loads((cwd / "studies" / "tiny" / "final_eval.json").read_text())
    selected = [row for row in result["rounds"] if row["variant"] == "selection"]
    assert len(selected) == 3
    assert len(set(result["round_seeds"])) == 3
    assert {row["seed"] for row in selected} == set(result["round_seeds"])
    for row in result["rounds"]:
        assert 0.0 <= row["train_accuracy"] <= 1.0 and 0.0 <= row["test_accuracy"] <= 1.0
        assert len(row["epochs"]) == 2  # the study's epoch budget
    assert len(result["variants"]) >= 3
    assert result["gain_over_default"]["n"] == 3 and "gain" in r.stdout
    page = (cwd / "studies" / "tiny" / "final_eval.html").read_text()
    assert "plotly" in page.lower() and "Test accuracy per variant" in page
    assert "Mean learning curves" in page

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{cwd}/studies/tiny.db")
    assert study.user_attrs["final_eval"]["selection"]["rounds"] == 3
    artifacts = list((cwd / "studies" / "artifacts").iterdir())
    assert len(artifacts) == 3  # the model file, the JSON and the HTML
    assert result["model"]["path"] == "studies/tiny/model.safetensors"
    assert "model: studies/tiny/model.safetensors" in r.stdout and "model.safetensors" in page


def test_the_default_configuration_runs_on_the_same_rounds(
    tiny_study: Path, tmp_path: Path
) -> None:
    cwd = copy_study(tiny_study, tmp_path)
    # trial 1 is the cnn baseline, so the default (siamese) configuration is another variant;
    # both are trained as 2 nets on the same rounds, and each is also scored as one net
    r = run_cli("search.final_eval", "--study", "tiny", "--trial", "1", "--no-ablation",
                "--rounds", "3", "--ensemble", "2", cwd=cwd)  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads((cwd / "studies" / "tiny" / "final_eval.json").read_text())
    default, one = result["default_variant"], "selection, one net"
    default_one = "default, one net"
    assert default == "default"
    assert set(result["variants"]) == {"selection", one, default, default_one}
    variants = result["variants"]
    assert variants[default]["family"] == "siamese"
    assert variants[default]["epochs"] == 2  # the study's budget
    assert variants[default]["ensemble"] == variants["selection"]["ensemble"] == 2  # alike
    assert variants[default_one] == dict(variants[default], ensemble=1)
    assert variants["selection"] == dict(variants[one], ensemble=2)
    test = {
        name: {r["seed"]: r["test_accuracy"] for r in result["rounds"] if r["variant"] == name}
        for name in ("selection", one, default, default_one)
    }
    seeds = result["round_seeds"]
    assert all(set(t) == set(seeds) for t in test.values())  # the same rounds for all four
    for variant, versus, key in (
        ("selection", default, "gain_over_default"),
        (one, default_one, "one_net_gain_over_default"),
        ("selection", one, "ensemble_gain"),
    ):
        diffs = [test[variant][s] - test[versus][s] for s in seeds]
        assert result[key]["mean"] == pytest.approx(sum(diffs) / 3) and result[key]["n"] == 3
    summary = result["summary"]  # one-net variants are compared with the one-net selection
    assert summary[one]["versus"] == "selection" and summary[default]["versus"] == "selection"
    assert summary[default_one]["versus"] == one
    one_net = result["one_net_gain_over_default"]["mean"]
    assert summary[default_one]["diff"]["mean"] == pytest.approx(-one_net)
    gain = result["gain_over_default"]
    headline = "gain of the selection over the default configuration, both as 2 nets"
    assert headline in r.stdout and "both as one net" in r.stdout and "as 2 nets" in r.stdout
    assert "2 nets instead of one add" in r.stdout
    page = (cwd / "studies" / "tiny" / "final_eval.html").read_text()
    assert headline in page and "both as one net" in page
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{cwd}/studies/tiny.db")
    stored = study.user_attrs["final_eval"]
    assert stored["gain_over_default"]["mean"] == gain["mean"] and stored["ensemble"] == 2
    assert stored["one_net_gain_over_default"]["mean"] == one_net
    assert stored["ensemble_gain"]["mean"] == result["ensemble_gain"]["mean"]
    assert headline in get_note(study) and "both as one net" in get_note(study)
    # the model file holds the 2-net ensemble of round 0 and scores its test pairs exactly so
    assert result["model"]["nets"] == 2 and result["model"]["seed"] == seeds[0]
    r = run_cli("search.predict", "--model", result["model"]["path"], "--dataset", "mnist5k",
                cwd=cwd)  # fmt: skip
    assert r.returncode == 0, r.stderr
    right = round(1000 * test["selection"][seeds[0]])
    assert f"({right} of 1000)" in r.stdout and "(2 nets)" in r.stdout


def test_same_seed_same_numbers_other_seed_other_draws(tiny_study: Path, tmp_path: Path) -> None:
    results = []
    for i, seed in enumerate(["5", "5", "6"]):
        (tmp_path / str(i)).mkdir()
        cwd = copy_study(tiny_study, tmp_path / str(i))
        r = run_cli("search.final_eval", "--study", "tiny", "--rounds", "2", "--no-ablation",
                    "--ensemble", "1", "--seed", seed, cwd=cwd)  # fmt: skip
        assert r.returncode == 0, r.stderr
        results.append(json.loads((cwd / "studies" / "tiny" / "final_eval.json").read_text()))
    a, b, c = results

    def numbers(result: dict) -> list[tuple[int, float, float]]:
        return sorted(
            (r["round"], r["test_accuracy"], r["train_accuracy"]) for r in result["rounds"]
        )

    assert numbers(a) == numbers(b)
    assert a["round_seeds"] == b["round_seeds"]
    assert set(a["round_seeds"]).isdisjoint(c["round_seeds"])
    alike = {"selection", "selection, one net", "default", "default, one net"}
    assert set(a["variants"]) <= alike  # no ablation


def test_work_of_one_process_trains_in_the_command_as_its_worker_would(
    tiny_study: Path, tmp_path: Path
) -> None:
    """One round of one variant trains in the command's own process (no worker to start),
    with the threads its one worker would have had: the same net as round 0 of two rounds,
    which go to two worker processes."""
    rows = {}
    for rounds in ("1", "2"):
        (tmp_path / rounds).mkdir()
        cwd = copy_study(tiny_study, tmp_path / rounds)
        r = run_cli("search.final_eval", "--study", "tiny", "--rounds", rounds, "--no-ablation",
                    "--ensemble", "1", "--pack", "off", "--seed", "5", cwd=cwd)  # fmt: skip
        assert r.returncode == 0, r.stderr
        result = json.loads((cwd / "studies" / "tiny" / "final_eval.json").read_text())
        assert {row["variant"] for row in result["rounds"]} == {"selection"}
        rows[rounds] = next(row for row in result["rounds"] if row["round"] == 0)
    here, worker = rows["1"], rows["2"]
    assert here["seed"] == worker["seed"] and here["torch_threads"] == worker["torch_threads"]
    for key in ("train_accuracy", "test_accuracy", "epochs"):
        assert here[key] == worker[key], key


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "nope", "--storage", "sqlite:///studies/tiny.db"], "no study 'nope'"),
        (["--study", "absent"], "no study 'absent' under studies/"),
        (["--study", "tiny", "--trial", "99"], "trial 99 does not exist"),
    ],
)
def test_bad_requests_end_in_one_line_and_write_nothing(
    tiny_study: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    cwd = copy_study(tiny_study, tmp_path)
    before = sorted(p.name for p in (cwd / "studies").iterdir())
    r = run_cli("search.final_eval", *args, cwd=cwd)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in (cwd / "studies").iterdir()) == before


def test_a_study_without_completed_trials(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    url = f"sqlite:///{tmp_path}/studies/empty.db"
    study = optuna.create_study(study_name="empty", storage=url, direction="maximize")
    study.set_user_attr("epochs", 2)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    r = run_cli("search.final_eval", "--study", "empty", cwd=tmp_path)
    assert r.returncode == 2 and "no completed trial" in r.stderr
    assert not (tmp_path / "studies" / "empty").exists()


def test_a_study_from_another_program(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    url = f"sqlite:///{tmp_path}/studies/other.db"
    study = optuna.create_study(study_name="other", storage=url, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    study.set_user_attr("epochs", 2)
    r = run_cli("search.final_eval", "--study", "other", cwd=tmp_path)
    assert r.returncode == 2 and "does not fit this search space" in r.stderr
    assert "Traceback" not in r.stderr


def test_an_mnist_study_and_its_final_evaluation_use_the_cache(tmp_path: Path) -> None:
    """No --data-dir: both commands find the files in the cache folder ($DIGIT_PAIRS_DATA here,
    set by the conftest), and the study stores no folder of its own."""
    write_mnist(cache_dir(), gz=True, n_train=400, n_test=2000)
    r = run_cli("search.run", "--trials", "2", "--dataset", "mnist", "--study", "full", *TINY,
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "fetching" not in r.stdout
    study = load_study(str(tmp_path / "studies" / "full.journal"), "full")
    assert study.user_attrs["dataset"] == "mnist"
    assert study.user_attrs["data_dir"] is None
    r = run_cli("search.final_eval", "--study", "full", "--rounds", "1", "--no-ablation",
                "--ensemble", "1", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "studies" / "full" / "final_eval.json").read_text())
    assert {row["variant"] for row in result["rounds"]} >= {"selection"}


def test_a_test_pool_too_small_for_a_round_names_the_fix(tmp_path: Path) -> None:
    small = tmp_path / "small"
    write_mnist(small, gz=False, n_train=400, n_test=400)
    r = run_cli("search.run", "--trials", "2", "--dataset", "mnist", "--data-dir", str(small),
                "--study", "few", *TINY, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_cli("search.final_eval", "--study", "few", "--rounds", "1", cwd=tmp_path)
    assert_one_line_error(r, "the mnist test pool has 400", "--data-dir", "complete MNIST test")
    assert "rounds" not in r.stdout


def test_a_bad_pack_switch_is_refused_in_one_line(tmp_path: Path) -> None:
    r = run_cli("search.final_eval", "--pack", "maybe", cwd=tmp_path)
    assert r.returncode == 2
    assert "--pack" in r.stderr and "Traceback" not in r.stderr


def test_an_unfinished_study_is_not_evaluated_without_a_chosen_trial(
    tiny_study: Path, tmp_path: Path
) -> None:
    # A trial running in the study (a search in progress, or stopped and not resumed): its
    # best so far is not the search's selection. --trial still evaluates a chosen trial.
    cwd = copy_study(tiny_study, tmp_path)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{cwd}/studies/tiny.db")
    study.ask()
    r = run_cli("search.final_eval", "--study", "tiny", "--rounds", "1", cwd=cwd)
    assert_one_line_error(r, "study 'tiny' is not finished (1 trial(s) running, 0 race")
    assert "--trial N" in r.stderr and not (cwd / "studies" / "tiny" / "final_eval.json").exists()
    r = run_cli("search.final_eval", "--study", "tiny", "--trial", "0", "--rounds", "1",
                "--no-ablation", "--ensemble", "1", cwd=cwd)  # fmt: skip
    assert r.returncode == 0, r.stderr
