"""A final evaluation's publication killed midway, and the packed evaluation against the one
by one, through the real command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta

from data import load_source
from models import load_model
from tests.helpers import run_cli
from tests.search.conftest import copy_study


def test_packed_and_one_by_one_final_evaluations_train_the_same_nets(
    tiny_study: Path, tmp_path: Path
) -> None:
    # The same variants, rounds and seeds, trained as packs of a variant's rounds or one net
    # at a time: every round's figures agree to float tolerance, and both model files load.
    rows, models = {}, {}
    for arm in ("on", "off"):
        (tmp_path / arm).mkdir()
        cwd = copy_study(tiny_study, tmp_path / arm)
        r = run_cli("search.final_eval", "--study", "tiny", "--trial", "2", "--rounds", "2",
                    "--ensemble", "2", "--workers", "1", "--pack", arm, cwd=cwd)  # fmt: skip
        assert r.returncode == 0, r.stderr
        result = json.loads((cwd / "studies" / "tiny" / "final_eval.json").read_text())
        rows[arm] = {(row["variant"], row["round"]): row for row in result["rounds"]}
        models[arm] = load_model(cwd / "studies" / "tiny" / "model.safetensors")
    assert rows["on"].keys() == rows["off"].keys() and len(rows["on"]) >= 2 * 4
    for key, packed in rows["on"].items():
        alone = rows["off"][key]
        assert packed["seed"] == alone["seed"]
        assert abs(packed["test_accuracy"] - alone["test_accuracy"]) <= 0.006, key
        for a, b in zip(packed["epochs"], alone["epochs"], strict=True):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=2e-3), key
    pairs = load_source("mnist5k").test_images[:40].view(-1, 2, 14, 14)
    p_on, p_off = (models[arm].predict(pairs).p_le for arm in ("on", "off"))
    assert len(models["on"].model.members) == 2
    assert (p_on - p_off).abs().max() < 1e-2


def renames(cwd: Path, args: list[str], inject: int | None = None) -> tuple[int, list[str]]:
    """Run search.final_eval under strace, listing its rename calls (the new names); with
    `inject`, kill it with SIGKILL at the entry of rename number `inject` (1-based)."""
    log = cwd / "strace.log"
    trace = ["strace", "-f", "-qq", "-o", str(log), "-e", "trace=rename"]
    if inject is not None:
        trace += ["-e", f"inject=rename:signal=SIGKILL:when={inject}"]
    r = subprocess.run([*trace, sys.executable, "-m", "search.final_eval", *args], cwd=cwd,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    names = re.findall(r'rename\("[^"]*", "([^"]*)"\)', log.read_text())
    return r.returncode, names


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_publication_killed_midway_is_finished_or_undone_by_the_next_run(
    tiny_study: Path, tmp_path: Path
) -> None:
    args = ["--study", "tiny", "--trial", "0", "--rounds", "1", "--no-ablation", "--ensemble",
            "1", "--workers", "1"]  # fmt: skip
    (tmp_path / "probe").mkdir()
    probe = copy_study(tiny_study, tmp_path / "probe")
    code, names = renames(probe, args)
    assert code == 0
    commit = next(i for i, n in enumerate(names, 1) if n.endswith("/manifest.json"))
    out = Path("studies") / "tiny"
    for kill_at, finished in ((commit, False), (commit + 2, True)):
        (tmp_path / str(kill_at)).mkdir()
        cwd = copy_study(tiny_study, tmp_path / str(kill_at))
        code, _ = renames(cwd, args, inject=kill_at)
        assert code != 0
        assert list((cwd / out).glob(".publishing-*")), "the kill left its staging"
        r = run_cli("search.final_eval", *args, cwd=cwd)
        assert r.returncode == 0, r.stderr
        said = "finished publishing an interrupted" if finished else "stopped before it published"
        assert said in r.stdout
        assert not list((cwd / out).glob(".publishing-*"))
        study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{cwd}/studies/tiny.db")
        result = json.loads((cwd / out / "final_eval.json").read_text())
        assert study.user_attrs["final_eval"]["seed"] == result["seed"]
        # each publication's three files, the recovered one's and the new run's (a kill between
        # an upload and its record attaches that file twice); none of a publication undone
        attached = [a.filename for a in get_all_artifact_meta(study)]
        assert set(attached) == {"model.safetensors", "final_eval.json", "final_eval.html"}
        assert 6 <= len(attached) <= 7 if finished else len(attached) == 3, attached
