"""A final evaluation's publication killed midway, and the packed evaluation against the one
by one, through the real command."""

from __future__ import annotations

import json
import os
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
from search.evaluation.publish import publication_lock, recover
from search.storage import StorageSpec, study_folder
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
    # Not --seccomp-bpf: strace 6.1 does not inject a signal at a call it stops through seccomp
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


# What a killed final evaluation leaves, and what a neighbour may put in its place. `recover`
# runs as the next search.final_eval runs it, on a real SQLite study, in the study's folder.
FILES = ["model.safetensors", "final_eval.json", "final_eval.html"]


@pytest.fixture
def study_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> optuna.Study:
    """An empty study in studies/s.db, with the working folder where studies/ is (as the
    commands run)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies" / "s").mkdir(parents=True)
    return optuna.create_study(study_name="s", storage="sqlite:///studies/s.db",
                               direction="maximize")  # fmt: skip


def committed(folder: Path, name: str = ".publishing-4242-abc", **manifest: object) -> Path:
    """A committed staging folder as a publication killed after its commit point leaves it."""
    staging = folder / name
    staging.mkdir()
    for f in FILES:
        (staging / f).write_text(f"new {f}")
    whole = {"files": FILES, "user_attr": {"seed": 7}, "note": "## the note", "attached": []}
    (staging / "manifest.json").write_text(json.dumps(whole | manifest))
    return staging


def untouched(study: optuna.Study) -> None:
    study = optuna.load_study(study_name="s", storage="sqlite:///studies/s.db")
    assert "final_eval" not in study.user_attrs
    assert not get_all_artifact_meta(study)
    assert not [p for p in Path("studies/s").iterdir() if not p.name.startswith(".")]


def test_a_committed_staging_is_finished_whatever_its_pid(study_here: optuna.Study) -> None:
    # pid 1 is alive in every container; liveness is the publication lock's flock, not a pid.
    staging = committed(Path("studies/s"), name=".publishing-1-xyz")
    said = recover(study_here, Path("studies/s"))
    assert said == ["finished publishing an interrupted final evaluation (.publishing-1-xyz)"]
    assert not staging.exists()
    assert sorted(p.name for p in Path("studies/s").iterdir()) == sorted(
        [*FILES, ".publication.lock"]
    )
    study = optuna.load_study(study_name="s", storage="sqlite:///studies/s.db")
    assert study.user_attrs["final_eval"] == {"seed": 7}
    assert sorted(a.filename for a in get_all_artifact_meta(study)) == sorted(FILES)


def test_a_live_publishers_staging_is_left_to_it(study_here: optuna.Study) -> None:
    staging = committed(Path("studies/s"))
    with publication_lock(Path("studies/s"), wait=False) as mine:
        assert mine
        said = recover(study_here, Path("studies/s"))
    assert said == ["a final evaluation is publishing in studies/s now: its staging is left to it"]
    assert (staging / "manifest.json").exists()
    untouched(study_here)


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("not json", "its manifest is not JSON"),
        ("a string for a list", "its manifest's files is not a list"),
        ("a path up", "names files other than"),
        ("an absolute path", "names files other than"),
        ("another file", "names files other than"),
        ("a linked file", "model.safetensors in studies/s/.publishing-4242-abc is not a regular"),
        ("a linked manifest", "its manifest is a symbolic link"),
        ("a linked folder", "a symbolic link named as a staging folder"),
    ],
)
def test_a_staging_that_is_not_ours_is_set_aside_and_steers_nothing(
    case: str, why: str, study_here: optuna.Study, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("the neighbour's")
    (outside / "manifest.json").write_text(json.dumps({"files": ["secret"]}))
    folder = Path("studies/s")
    if case == "not json":
        (committed(folder) / "manifest.json").write_text("{half a manif")
    elif case == "a string for a list":
        committed(folder, files="model.safetensors")
    elif case == "a path up":
        committed(folder, files=["../../outside/secret"])
    elif case == "an absolute path":
        committed(folder, files=[str(outside / "secret")])
    elif case == "another file":  # with a forged attribute and note: none of it is applied
        committed(folder, files=[*FILES, "notes.txt"], user_attr={"forged": True})
    elif case == "a linked file":
        (committed(folder) / "model.safetensors").unlink()
        (folder / ".publishing-4242-abc" / "model.safetensors").symlink_to(outside / "secret")
    elif case == "a linked manifest":
        (committed(folder) / "manifest.json").unlink()
        (folder / ".publishing-4242-abc" / "manifest.json").symlink_to(outside / "manifest.json")
    else:
        (folder / ".publishing-4242-abc").symlink_to(outside)
    said = recover(study_here, folder)
    assert len(said) == 1 and why in said[0] and "moved aside to" in said[0], said
    untouched(study_here)
    assert sorted(p.name for p in outside.iterdir()) == ["manifest.json", "secret"]
    assert (outside / "secret").read_text() == "the neighbour's"
    assert recover(study_here, folder) == []  # set aside once: it never blocks a later run


def test_studies_of_one_name_in_two_storages_never_share_a_folder(
    study_here: optuna.Study, tmp_path: Path
) -> None:
    own = study_folder("s", StorageSpec("sqlite", "sqlite:///studies/s.db"))
    assert own == Path("studies/s")
    assert study_folder("s", StorageSpec("sqlite", f"sqlite:///{tmp_path}/studies/s.db")) == own
    others = {
        study_folder("s", StorageSpec("journal", "studies/s.journal")),  # beside studies/s.db
        study_folder("s", StorageSpec("sqlite", "sqlite:///elsewhere/s.db")),
        study_folder("s", StorageSpec("postgresql", "postgresql+psycopg://u:pw@db:5432/a")),
        study_folder("s", StorageSpec("postgresql", "postgresql+psycopg://u:pw@db:5432/b")),
    }
    assert len(others) == 4 and own not in others
    assert all(f.parent == Path("studies") and f.name.startswith("s@") for f in others)
    assert not any("pw" in f.name for f in others)
    # A study named as the artifact store never publishes into it.
    artifacts = study_folder("artifacts", StorageSpec("sqlite", "sqlite:///studies/artifacts.db"))
    assert artifacts != Path("studies/artifacts") and artifacts.name.startswith("artifacts@")
    # One storage's interrupted publication is not the other's to finish.
    committed(own)
    other = next(iter(others))
    other.mkdir()
    assert recover(study_here, other) == []
    assert (own / ".publishing-4242-abc").exists()


def stop_at_commit(cwd: Path, args: list[str], signum: str) -> subprocess.CompletedProcess[str]:
    """search.final_eval sent `signum` at its publication's commit (the manifest's rename)."""
    r = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null",
                        "-e", "trace=rename",
                        "-e", f"inject=rename:signal={signum}:when=3",
                        sys.executable, "-m", "search.final_eval", *args],
                       cwd=cwd, capture_output=True, text=True, timeout=300)  # fmt: skip
    return r


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP"])
def test_a_stop_while_publishing_finishes_it_then_ends_in_one_line(
    signum: str, tiny_study: Path, tmp_path: Path
) -> None:
    args = ["--study", "tiny", "--trial", "0", "--rounds", "1", "--no-ablation", "--ensemble",
            "1", "--workers", "1"]  # fmt: skip
    cwd = copy_study(tiny_study, tmp_path)
    r = stop_at_commit(cwd, args, signum)
    assert r.returncode == 130, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "search.final_eval: interrupted; it was published first"
    )
    assert "\nsaved studies/tiny/model.safetensors" in r.stdout
    out = cwd / "studies" / "tiny"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(FILES)
    assert not list(out.glob(".publishing-*"))
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{cwd}/studies/tiny.db")
    assert study.user_attrs["final_eval"]["trial"] == 0
    assert len(get_all_artifact_meta(study)) == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_while_publishing_is_one_line_and_leaves_no_staging(
    tiny_study: Path, tmp_path: Path
) -> None:
    cwd = copy_study(tiny_study, tmp_path)
    out = cwd / "studies" / "tiny"
    out.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(out)], check=True)
    try:
        r = run_cli("search.final_eval", "--study", "tiny", "--trial", "0", "--rounds", "1",
                    "--no-ablation", "--ensemble", "1", "--workers", "1", cwd=cwd)  # fmt: skip
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr
        [line] = [line for line in r.stderr.splitlines() if "error" in line]  # and progress bars
        assert line == r.stderr.strip().splitlines()[-1]
        assert line.startswith("search.final_eval: error: the disk is full"), line
        assert "nothing was published" in line
        assert [p.name for p in out.iterdir()] in ([], [".publication.lock"])
        study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{cwd}/studies/tiny.db")
        assert "final_eval" not in study.user_attrs and not get_all_artifact_meta(study)
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)
