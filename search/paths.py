"""Where a study's files live, relative to the folder a command runs in."""

from __future__ import annotations

from pathlib import Path

DEFAULT_STUDY = "digit-pairs"  # the study a command works on without --study
STUDIES_DIR = Path("studies")
ARTIFACT_DIR = STUDIES_DIR / "artifacts"  # optuna-dashboard's artifact store
MODEL_FILE = "model.safetensors"


def model_path(study: str) -> Path:
    """The model file that search.final_eval saves for `study`."""
    return STUDIES_DIR / study / MODEL_FILE
