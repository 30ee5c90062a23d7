"""Where a final evaluation's result goes: studies/STUDY/ and the study itself."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna_dashboard import save_note

from search.render import note
from search.report import render
from search.result import EvalResult
from search.storage import STUDIES_DIR
from search.summary import ARTIFACT_DIR


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def publish(study: optuna.Study, result: EvalResult) -> tuple[Path, Path]:
    """The JSON and HTML under studies/<study>/, attached to the study as artifacts, with the
    summary as the study's `final_eval` user attribute and as its note; returns both paths."""
    out = STUDIES_DIR / result.study
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "final_eval.json", out / "final_eval.html"
    write_atomically(json_path, json.dumps(result.to_json(), indent=1))
    write_atomically(html_path, render(result))
    ARTIFACT_DIR.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(ARTIFACT_DIR))
    for path, mimetype in ((json_path, "application/json"), (html_path, "text/html")):
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
        )
    }
    found = {"trial": result.trial, "seed": result.seed, "ensemble": result.config.ensemble}
    study.set_user_attr("final_eval", summaries | found | gains)
    save_note(study, note(result, html_path=html_path, json_path=json_path))
    return json_path, html_path
