"""Where a final evaluation's result goes: studies/STUDY/ and the study itself."""

from __future__ import annotations

import json
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


def publish(study: optuna.Study, result: EvalResult, kept: KeptModel) -> tuple[Path, Path]:
    """The model file, the JSON and the HTML under studies/<study>/, attached to the study as
    artifacts, with the summary as the study's `final_eval` user attribute and as its note;
    returns the JSON's and the HTML's paths."""
    out = STUDIES_DIR / result.study
    out.mkdir(parents=True, exist_ok=True)
    model_path = Path(result.model.path)
    json_path, html_path = out / "final_eval.json", out / "final_eval.html"
    ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(ARTIFACT_DIR))
    # Staged beside their places, attached from there, and moved into place only when all are
    # attached: a failure on the way leaves the earlier result's files as they were.
    staging = Path(tempfile.mkdtemp(prefix=".publishing-", dir=out))
    try:
        write_model(result, kept, staging / model_path.name)
        write_atomically(staging / json_path.name, json.dumps(result.to_json(), indent=1))
        write_atomically(staging / html_path.name, html_page(result))
        for path, mimetype in (
            (model_path, "application/octet-stream"),
            (json_path, "application/json"),
            (html_path, "text/html"),
        ):
            upload_artifact(
                artifact_store=store,
                file_path=str(staging / path.name),
                study_or_trial=study,
                mimetype=mimetype,
            )
        for path in (model_path, json_path, html_path):
            (staging / path.name).replace(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
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
    study.set_user_attr("final_eval", summaries | found | gains)
    save_note(study, note(result, html_path=html_path, json_path=json_path))
    return json_path, html_path
