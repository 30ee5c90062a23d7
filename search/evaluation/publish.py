"""Where a final evaluation's result goes: the study's folder under studies/ and the study
itself. Everything read back from the folder (a staging folder, its manifest, the lock) is
checked as if a neighbour had changed it: no name in it steers a write outside the folder."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna_dashboard import save_note

from models import save_model
from search.errors import StorageLost, UsageError, full_disk
from search.evaluation.html import html_page
from search.evaluation.result import EvalResult
from search.evaluation.rounds import KeptModel
from search.evaluation.text import note
from search.paths import ARTIFACT_DIR, MODEL_FILE
from search.storage import (
    SET_ASIDE,
    STORAGE_ERRORS,
    error_detail,
    kind_of,
    open_side_file,
    read_side_file,
    replace_file,
    set_aside,
)


def check_publishable(study_folder: Path) -> None:
    """Before any training: the folders the results go to can be written, or made where they
    are missing (a file is created and removed in each, or in the nearest folder that exists),
    so that a long evaluation never ends unable to publish. Nothing is left behind."""
    for folder in (study_folder, ARTIFACT_DIR):
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
        "precision": result.precision,  # trained in; the weights are fp32 either way
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
MAX_MANIFEST = 1 << 22  # the note and the attribute: kilobytes; a bigger file is not ours
STAGING = ".publishing-"
PUBLICATION_LOCK = ".publication.lock"
MIMETYPES = {MODEL_FILE: "application/octet-stream", "final_eval.json": "application/json",
             "final_eval.html": "text/html"}  # fmt: skip
MANIFEST_KEYS = {"files": list, "user_attr": dict, "note": str, "attached": list}


class NotOurs(Exception):
    """A staging folder whose manifest this project did not write: it is set aside."""


@contextlib.contextmanager
def publication_lock(folder: Path, *, wait: bool) -> Iterator[bool]:
    """Held by a final evaluation while it publishes into `folder`: an flock, which the kernel
    drops when its holder dies, so whoever takes it knows that no publisher of the folder is
    alive (whatever its pid, in whatever container). Yields False where `wait` is off and a
    live publisher holds it."""
    fd = open_side_file(folder / PUBLICATION_LOCK)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def publish(
    study: optuna.Study, result: EvalResult, kept: KeptModel, folder: Path
) -> tuple[Path, Path]:
    """The model file, the JSON and the HTML in `folder` (the study's, search.storage's
    study_folder), with the summary as the study's `final_eval` user attribute and as its
    note, and the files attached to the study as artifacts; returns the JSON's and the HTML's
    paths.

    Everything is staged first in a folder beside the files; writing its manifest is the
    commit point. A run killed before it changed nothing a reader sees, and the next final
    evaluation removes its staging; one killed after it is finished by the next (recover).
    A full disk before the commit removes the staging and publishes nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    model_path = Path(result.model.path)
    json_path, html_path = folder / "final_eval.json", folder / "final_eval.html"
    manifest = {
        "files": [model_path.name, json_path.name, html_path.name],
        "user_attr": summary_attr(result),
        "note": note(result, html_path=html_path, json_path=json_path),
        "attached": [],
    }
    with publication_lock(folder, wait=True):
        try:
            staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=folder))
        except OSError as e:
            raise not_published(e) from None
        try:
            write_model(result, kept, staging / model_path.name)
            replace_file(staging / json_path.name, json.dumps(result.to_json(), indent=1).encode())
            replace_file(staging / html_path.name, html_page(result).encode())
            replace_file(staging / MANIFEST, json.dumps(manifest).encode())  # the commit point
        except OSError as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise not_published(e) from None
        complete(study, staging, manifest)
    return json_path, html_path


def not_published(error: OSError) -> Exception:
    """A write before the commit point failed: nothing was published. A full disk is one line;
    any other error is a bug and keeps its traceback."""
    if not full_disk(error):
        return error
    return StorageLost(
        f"{full_disk(error, resumes=False)}; nothing was published (the report above is not "
        "saved): free some space and run search.final_eval again"
    )


def complete(study: optuna.Study, staging: Path, manifest: dict[str, Any]) -> None:
    """Carry a committed staging folder through: its files into place, the study's attribute
    and note, the files attached (each recorded in the manifest once attached, so a resumed
    run attaches the rest; a kill between an upload and its record attaches that file twice);
    then the folder goes. A full disk or a lost storage midway leaves it committed, for the
    next final evaluation to finish."""
    out = staging.parent
    try:
        for name in manifest["files"]:
            if os.path.lexists(staging / name):
                clear_for(out / name)
                os.replace(staging / name, out / name)
        study.set_user_attr("final_eval", manifest["user_attr"])
        save_note(study, manifest["note"])
        ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
        store = FileSystemArtifactStore(str(ARTIFACT_DIR))
        for name in manifest["files"]:
            if name in manifest["attached"]:
                continue
            placed = os.lstat(out / name).st_mode
            if not stat.S_ISREG(placed):
                raise UsageError(
                    f"{out / name} was replaced by {kind_of(placed)} while it was published; "
                    "remove it and run search.final_eval again"
                )
            upload_artifact(
                artifact_store=store,
                file_path=str(out / name),
                study_or_trial=study,
                mimetype=MIMETYPES[name],
            )
            manifest["attached"].append(name)
            replace_file(staging / MANIFEST, json.dumps(manifest).encode())
    except (OSError, *STORAGE_ERRORS) as e:
        cause = full_disk(e, resumes=False) if isinstance(e, OSError) else error_detail(e)
        if isinstance(e, OSError) and not cause:
            raise
        raise StorageLost(
            f"publishing stopped midway ({cause}); it is committed in {staging}, and the next "
            "search.final_eval of this study finishes it"
        ) from None
    shutil.rmtree(staging, ignore_errors=True)


def clear_for(target: Path) -> None:
    """A file about to be put at `target` replaces a file; anything else there is set aside."""
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(target).st_mode
        if not stat.S_ISREG(mode):
            print(set_aside(target, f"{kind_of(mode)} where a file is published"), file=sys.stderr)


def read_manifest(staging: Path) -> dict[str, Any] | None:
    """The manifest of a staging folder, checked whole before anything is done with it: None
    where there is none (the folder was never committed). Every file it names is one of the
    three a publication writes, in the staging folder or already moved beside it, as regular
    files; anything else raises NotOurs, saying why."""
    path = staging / MANIFEST
    if not os.path.lexists(path):
        return None
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotOurs(f"its manifest is {kind_of(mode)}")
    if os.lstat(path).st_size > MAX_MANIFEST:
        raise NotOurs(f"its manifest is larger than {MAX_MANIFEST >> 20} MB")
    text = read_side_file(path, limit=MAX_MANIFEST)
    try:
        manifest = json.loads(text or "")
    except ValueError:
        raise NotOurs("its manifest is not JSON") from None
    if not isinstance(manifest, dict) or set(manifest) != set(MANIFEST_KEYS):
        raise NotOurs(f"its manifest does not hold {', '.join(MANIFEST_KEYS)}")
    for key, kind in MANIFEST_KEYS.items():
        if not isinstance(manifest[key], kind):
            raise NotOurs(f"its manifest's {key} is not a {kind.__name__}")
    files, attached = manifest["files"], manifest["attached"]
    if not (
        all(isinstance(n, str) for n in files + attached)
        and set(files) <= set(MIMETYPES)
        and len(set(files)) == len(files)
        and set(attached) <= set(files)
    ):
        raise NotOurs(f"its manifest names files other than {', '.join(MIMETYPES)}")
    for name in files:
        for where in (staging / name, staging.parent / name):
            if os.path.lexists(where):
                if not stat.S_ISREG(os.lstat(where).st_mode):
                    raise NotOurs(f"{where.name} in {where.parent} is not a regular file")
                break
        else:
            raise NotOurs(f"its manifest names {name}, which is nowhere")
    return manifest


def recover(study: optuna.Study, folder: Path) -> list[str]:
    """Finish or remove what killed final evaluations left in the study's folder: a committed
    staging folder is carried through, an uncommitted one (nothing of it was published)
    removed, anything else of a staging folder's name set aside. Only when no publisher of the
    folder is alive (the publication lock is free). Returns a line for each, to say."""
    if not folder.is_dir():
        return []
    said = []
    with publication_lock(folder, wait=False) as free:
        if not free:
            return [f"a final evaluation is publishing in {folder} now: its staging is left to it"]
        for staging in sorted(folder.iterdir()):
            if not staging.name.startswith(STAGING) or SET_ASIDE in staging.name:
                continue
            mode = os.lstat(staging).st_mode
            if not stat.S_ISDIR(mode):
                said.append(set_aside(staging, f"{kind_of(mode)} named as a staging folder"))
                continue
            try:
                manifest = read_manifest(staging)
            except NotOurs as e:
                said.append(set_aside(staging, f"a staging folder not written here ({e})"))
                continue
            if manifest is None:
                shutil.rmtree(staging, ignore_errors=True)
                said.append(
                    f"removed {staging}, left by a final evaluation stopped before it published"
                )
            else:
                complete(study, staging, manifest)
                said.append(f"finished publishing an interrupted final evaluation ({staging.name})")
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
        "precision": result.precision,
    }
    return summaries | found | gains
