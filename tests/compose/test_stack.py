"""docker-compose.yml brought up for real: images built from the project's Dockerfile, a
PostgreSQL container, init, scaled workers, faults, the dashboard and the final evaluation.

The stack runs a host-network variant of the file (harness/stack.py): the same services,
commands, health checks and depends_on; each test uses its own study in the one database.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from optuna.trial import TrialState

from harness.ports import free_port
from harness.stack import Preparation, Stack, Unavailable, sh
from search.storage import HEARTBEAT_REASON, study_folder
from search.storage.spec import parse_storage
from tests.helpers import load_study
from tests.search.workers import check_exact

pytestmark = pytest.mark.compose

SETTINGS = {"TRIALS": "8", "EPOCHS": "2", "FINALISTS": "0", "HEARTBEAT": "2", "SEED": "0"}
# The study the later tests read: trials long enough for the database restart to catch one;
# with a parameter budget (MAX_PARAMS), which the compose file passes to the study's creation.
SCALED = {**SETTINGS, "STUDY": "scaled", "EPOCHS": "6", "MAX_PARAMS": "100000"}


def wait_until(check: Callable[[], Any], timeout: float = 300, what: str = "") -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what or check}")


@pytest.fixture(scope="module")
def stack(prepared: Preparation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        took = prepared.ready()
    except Unavailable as e:
        pytest.skip(f"no Docker stack here: {e}")
    print(f"image builds (s): {json.dumps({k: round(v) for k, v in took.items()})}")
    work = tmp_path_factory.mktemp("compose")
    s = Stack(work, "digitpairstest", pg_port=free_port(), dashboard_port=free_port())
    s.down()  # whatever an interrupted run left, its volumes included
    try:
        s.compose("up", "-d", "postgres")
        yield s
    finally:
        s.down()


def states(stack: Stack, service: str) -> list[tuple[str, int]]:
    return [(c["State"]["Status"], c["State"]["ExitCode"]) for c in stack.containers(service)]


def all_exited(stack: Stack, service: str, n: int) -> bool:
    found = states(stack, service)
    return len(found) == n and all(status == "exited" for status, _ in found)


def up_workers(stack: Stack, env: dict[str, str], scale: int) -> None:
    stack.compose("up", "-d", "--scale", f"worker={scale}", "worker", env=env)


def test_init_then_three_workers_reach_exactly_the_total_through_a_database_restart(
    stack: Stack,
) -> None:
    env = SCALED
    start = time.time()
    up_workers(stack, env, scale=3)
    # PostgreSQL stopped and started again in the middle of the run: the workers ride it out.
    wait_until(lambda: running_in_training(stack, "scaled", 1), what="a trial training")
    stack.compose("stop", "postgres", env=env)
    time.sleep(5)
    stack.compose("start", "postgres", env=env)
    wait_until(lambda: all_exited(stack, "worker", 3), what="three workers to finish")
    print(f"up to done with 3 workers and a database restart: {time.time() - start:.0f} s")
    assert states(stack, "init") == [("exited", 0)]
    assert states(stack, "worker") == [("exited", 0)] * 3
    trials = check_exact(stack.url, "scaled", 8)
    sampled = [t.params["lr"] for t in trials if not t.user_attrs.get("queued_default")]
    assert len(set(sampled)) == len(sampled)  # workers started together proposed their own
    assert load_study(stack.url, "scaled").user_attrs["max_params"] == 100_000
    trained = [t for t in trials if t.intermediate_values]
    assert trained and all(t.user_attrs["n_params"] <= 100_000 for t in trained)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert all(t.constraints == {"params": t.user_attrs["n_params"] - 100_000} for t in finished)
    # The compose file's room for many workers, kept through the restart.
    with psycopg.connect(stack.url.replace("+psycopg", "")) as conn:
        assert conn.execute("SHOW max_connections").fetchone() == ("200",)
    stack.compose("rm", "-f", "-s", "worker", "init", env=env)


def running_in_training(stack: Stack, study: str, n: int) -> bool:
    """`n` trials RUNNING with at least one reported epoch (workers busy in the middle)."""
    try:
        trials = load_study(stack.url, study).get_trials(states=(TrialState.RUNNING,))
    except KeyError:  # not created yet
        return False
    return len([t for t in trials if t.intermediate_values]) >= n


def test_killed_worker_containers_trials_are_retried_to_the_exact_total(stack: Stack) -> None:
    env = {**SETTINGS, "STUDY": "killed", "EPOCHS": "10"}
    up_workers(stack, env, scale=3)
    wait_until(lambda: running_in_training(stack, "killed", 3), what="three trials training")
    victims = [c["Id"] for c in stack.containers("worker")]
    sh("docker", "kill", *victims)  # SIGKILL: no handler runs, their trials stay RUNNING
    assert states(stack, "worker") == [("exited", 137)] * 3
    assert load_study(stack.url, "killed").get_trials(states=(TrialState.RUNNING,))
    stack.compose("rm", "-f", "worker", env=env)
    up_workers(stack, env, scale=3)  # new workers find the silent trials by their heartbeat
    wait_until(lambda: all_exited(stack, "worker", 3), what="the workers to finish")
    assert states(stack, "worker") == [("exited", 0)] * 3
    trials = check_exact(stack.url, "killed", 8)
    stale = [t for t in trials if t.state == TrialState.FAIL]
    assert stale, [(t.number, t.state.name) for t in trials]
    rerun = {json.dumps(t.params, sort_keys=True) for t in trials if t.state != TrialState.FAIL}
    trained = [t for t in stale if t.intermediate_values]  # every parameter drawn
    assert trained and all(json.dumps(t.params, sort_keys=True) in rerun for t in trained)
    assert all(t.user_attrs["fail_reason"] == HEARTBEAT_REASON for t in trained)
    stack.compose("rm", "-f", "-s", "worker", "init", env=env)


def test_compose_stop_fails_and_requeues_the_current_trials(stack: Stack) -> None:
    env = {**SETTINGS, "STUDY": "stopped", "EPOCHS": "10"}
    up_workers(stack, env, scale=2)
    wait_until(lambda: running_in_training(stack, "stopped", 2), what="two trials training")
    stack.compose("stop", "worker", env=env)  # SIGTERM, as the file's stop_signal says
    assert states(stack, "worker") == [("exited", 130)] * 2  # stopped, as README says
    study = load_study(stack.url, "stopped")
    interrupted = study.get_trials(states=(TrialState.FAIL,))
    # Each worker was in a trial (one may have just ended one): failed, and queued again.
    assert 1 <= len(interrupted) <= 2 and not study.get_trials(states=(TrialState.RUNNING,))
    waiting = [
        json.dumps(t.params, sort_keys=True) for t in study.get_trials(states=(TrialState.WAITING,))
    ]
    assert all(json.dumps(t.params, sort_keys=True) in waiting for t in interrupted)
    stack.compose("rm", "-f", "worker", env=env)
    up_workers(stack, env, scale=2)  # the same command resumes
    wait_until(lambda: all_exited(stack, "worker", 2), what="the workers to finish")
    check_exact(stack.url, "stopped", 8)
    stack.compose("rm", "-f", "-s", "worker", "init", env=env)


def test_final_eval_in_a_container_writes_its_report_into_the_shared_volume(
    stack: Stack,
) -> None:
    env = SCALED
    stack.compose("run", "--rm", "--no-deps", "worker", "python", "-m", "search.final_eval",
                  "--study", "scaled", "--storage", stack.url, "--rounds", "2", "--no-ablation",
                  env=env)  # fmt: skip
    # a study in PostgreSQL publishes into a folder keyed to its server and database
    folder = study_folder("scaled", parse_storage(stack.url)).name
    assert folder.startswith("scaled@postgresql-")
    report = stack.volume("studies") / folder / "final_eval.json"
    result = json.loads(report.read_text())
    assert result["study"] == "scaled" and len(result["round_seeds"]) == 2
    assert result["max_params"] == 100_000 and result["model"]["parameters"] <= 100_000
    assert len(list((stack.volume("studies") / "artifacts").iterdir())) == 3
    # The worker image answers with the model the evaluation left in the volume.
    r = stack.compose("run", "--rm", "--no-deps", "worker", "python", "-m", "search.predict",
                      "--model", f"studies/{folder}/model.safetensors", "--dataset", "mnist5k",
                      env=env)  # fmt: skip
    assert f"comparison accuracy: {100 * result['model']['test_accuracy']:.2f} %" in r.stdout


def test_the_dashboard_container_shows_the_studies(stack: Stack) -> None:
    env = SCALED
    stack.compose("up", "-d", "dashboard", env=env)
    api = f"http://127.0.0.1:{stack.dashboard_port}/api/studies"

    def studies() -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(api, timeout=5) as r:
                return json.load(r)
        except OSError:
            return None

    found = wait_until(studies, timeout=120, what="the dashboard to answer")
    names = {s["study_name"]: s["study_id"] for s in found["study_summaries"]}
    assert {"scaled", "killed", "stopped"} <= set(names)
    with urllib.request.urlopen(f"{api}/{names['scaled']}?after=0", timeout=10) as r:
        detail = json.load(r)
    # every trial of the study: the 8 trained and any drawn over the budget, never trained
    assert len(detail["trials"]) == len(load_study(stack.url, "scaled").get_trials()) >= 8
    assert {a["filename"] for a in detail["artifacts"]} == {
        "model.safetensors",
        "final_eval.json",
        "final_eval.html",
    }
    assert "Final evaluation" in json.dumps(detail["note"])
    assert detail["objective_names"] == ["validation accuracy"]
    stack.compose("rm", "-f", "-s", "dashboard", env=env)
