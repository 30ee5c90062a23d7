"""Where a final evaluation's result goes: studies/STUDY/ and the study itself."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna_dashboard import save_note

from models import save_model
from search.evaluation.html import html_page
from search.evaluation.result import EvalResult
from search.evaluation.rounds import KeptModel
from search.evaluation.text import note
from search.paths import ARTIFACT_DIR, STUDIES_DIR


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_model(result: EvalResult, kept: KeptModel) -> None:
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
        Path(result.model.path),
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
    json_path, html_path = out / "final_eval.json", out / "final_eval.html"
    write_model(result, kept)
    write_atomically(json_path, json.dumps(result.to_json(), indent=1))
    write_atomically(html_path, html_page(result))
    ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(ARTIFACT_DIR))
    for path, mimetype in (
        (Path(result.model.path), "application/octet-stream"),
        (json_path, "application/json"),
        (html_path, "text/html"),
    ):
        upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=study, mimetype=mimetype
        )
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
