"""Where a final evaluation's result goes: studies/STUDY/ and the study itself."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna_dashboard import save_note

from models import save_model
from search.errors import UsageError
from search.evaluation.html import html_page
from search.evaluation.result import EvalResult
from search.evaluation.rounds import KeptModel
from search.evaluation.text import note
from search.paths import ARTIFACT_DIR, STUDIES_DIR


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def check_publishable(study: str) -> None:
    """Before any training: the folders the results go to can be written, or made where they
    are missing (a file is created and removed in each, or in the nearest folder that exists),
    so that a long evaluation never ends unable to publish. Nothing is left behind."""
    for folder in (STUDIES_DIR / study, ARTIFACT_DIR):
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        try:
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".writable-"):
                pass
        except OSError as e:
            raise UsageError(
                f"cannot write the results to {folder}: {e.strerror}; make it writable (or run "
                "where studies/ is) and run again"
            ) from None


def write_model(result: EvalResult, kept: KeptModel, path: Path) -> None:
    """The selection's round-0 nets as the model file, described by what rebuilds them and
    where they came from."""
    info = {
        "study": result.study,
        "trial": result.trial,
        "selection": result.selection,
        "validation_accuracy": result.validation_accuracy,
        "dataset": result.dataset,
        "train_pairs": result.train_pairs,
        "test_pairs": result.test_pairs,
        "evaluation_seed": result.seed,
        "round": kept.round,
        "round_seed": kept.seed,
        "test_accuracy": kept.test_accuracy,
        "versions": result.versions,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    save_model(
        path,
        kept.states,
        config=result.config,
        mean=kept.mean,
        std=kept.std,
        info=info,
    )


MANIFEST = "manifest.json"
STAGING = ".publishing-"
MIMETYPES = {".safetensors": "application/octet-stream", ".json": "application/json",
             ".html": "text/html"}  # fmt: skip


def publish(study: optuna.Study, result: EvalResult, kept: KeptModel) -> tuple[Path, Path]:
    """The model file, the JSON and the HTML under studies/<study>/, with the summary as the
    study's `final_eval` user attribute and as its note, and the files attached to the study
    as artifacts; returns the JSON's and the HTML's paths.

    Everything is staged first in a folder beside the files; writing its manifest is the
    commit point. A run killed before it changed nothing a reader sees, and the next final
    evaluation removes its staging; one killed after it is finished by the next (recover)."""
    out = STUDIES_DIR / result.study
    out.mkdir(parents=True, exist_ok=True)
    model_path = Path(result.model.path)
    json_path, html_path = out / "final_eval.json", out / "final_eval.html"
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING}{os.getpid()}-", dir=out))
    write_model(result, kept, staging / model_path.name)
    write_atomically(staging / json_path.name, json.dumps(result.to_json(), indent=1))
    write_atomically(staging / html_path.name, html_page(result))
    manifest = {
        "files": [model_path.name, json_path.name, html_path.name],
        "user_attr": summary_attr(result),
        "note": note(result, html_path=html_path, json_path=json_path),
        "attached": [],
    }
    write_atomically(staging / MANIFEST, json.dumps(manifest))  # the commit point
    complete(study, staging)
    return json_path, html_path


def complete(study: optuna.Study, staging: Path) -> None:
    """Carry a committed staging folder through: its files into place, the study's attribute
    and note, the files attached (each recorded in the manifest once attached, so a resumed
    run attaches the rest; a kill between an upload and its record attaches that file twice);
    then the folder goes."""
    out = staging.parent
    manifest = json.loads((staging / MANIFEST).read_text())
    for name in manifest["files"]:
        if (staging / name).exists():
            (staging / name).replace(out / name)
    study.set_user_attr("final_eval", manifest["user_attr"])
    save_note(study, manifest["note"])
    ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(ARTIFACT_DIR))
    for name in manifest["files"]:
        if name in manifest["attached"]:
            continue
        upload_artifact(
            artifact_store=store,
            file_path=str(out / name),
            study_or_trial=study,
            mimetype=MIMETYPES[Path(name).suffix],
        )
        manifest["attached"].append(name)
        write_atomically(staging / MANIFEST, json.dumps(manifest))
    shutil.rmtree(staging, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def recover(study: optuna.Study) -> list[str]:
    """Finish or remove what killed final evaluations of `study` left under studies/<study>/:
    a committed staging folder is carried through, an uncommitted one (nothing of it was
    published) removed. Folders of a live process are its own business. Returns a line for
    each, to say."""
    said = []
    for staging in sorted((STUDIES_DIR / study.study_name).glob(f"{STAGING}*")):
        pid = staging.name.removeprefix(STAGING).split("-", 1)[0]
        if not staging.is_dir() or (pid.isdigit() and alive(int(pid))):
            continue
        if (staging / MANIFEST).exists():
            complete(study, staging)
            said.append(f"finished publishing an interrupted final evaluation ({staging.name})")
        else:
            shutil.rmtree(staging, ignore_errors=True)
            said.append(
                f"removed {staging}, left by a final evaluation stopped before it published"
            )
    return said


def summary_attr(result: EvalResult) -> dict[str, object]:
    """What the study's `final_eval` user attribute records of a result."""
    summaries = {
        name: {"test_mean": s.test.mean, "test_std": s.test.std, "rounds": s.test.n}
        for name, s in result.summary.items()
    }
    gains = {
        name: None if g is None else {"mean": g.mean, "low": g.low, "high": g.high}
        for name, g in (
            ("gain_over_default", result.gain),
            ("one_net_gain_over_default", result.one_net_gain),
            ("ensemble_gain", result.ensemble_gain),
        )
    }
    found = {
        "trial": result.trial,
        "seed": result.seed,
        "ensemble": result.config.ensemble,
        "model": result.model.path,
    }
    return summaries | found | gains
